//go:build linux

package xvfbtest

import (
	"os"
	"strconv"
	"testing"

	"github.com/jezek/xgb/xproto"
)

func TestStartDialStop(t *testing.T) {
	d := Start(t, Options{Width: 320, Height: 200, NoReset: true, Ready: DialReady})
	if d.Name != ":"+strconv.Itoa(d.Number) || d.PID == 0 {
		t.Fatalf("display %+v", d)
	}
	if env := d.Env(); len(env) != 2 || env[0] != "DISPLAY="+d.Name || env[1] != "XAUTHORITY="+d.AuthFile {
		t.Fatalf("Env() = %v", env)
	}
	c, err := d.Dial()
	if err != nil {
		t.Fatal(err)
	}
	scr := xproto.Setup(c).DefaultScreen(c)
	if scr.WidthInPixels != 320 || scr.HeightInPixels != 200 {
		t.Errorf("screen %dx%d, want 320x200", scr.WidthInPixels, scr.HeightInPixels)
	}
	c.Close()
	d.Stop()
	d.Stop() // twice is fine
	if _, err := os.Stat("/proc/" + strconv.Itoa(d.PID)); err == nil {
		t.Errorf("Xvfb %d still running after Stop", d.PID)
	}
}

func TestStartSocketOnly(t *testing.T) {
	d := Start(t, Options{Width: 640, Height: 480, AuthName: "xauth", First: 240, Spread: 100, Limit: 500})
	if _, err := os.Stat(d.AuthFile); err != nil {
		t.Fatal(err)
	}
	c, err := d.Dial()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}
