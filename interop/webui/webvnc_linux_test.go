//go:build linux

package webui

import (
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// webVNCCfg is the webvnc flow of testdata/webui.js.
type webVNCCfg struct {
	Port int      `json:"port"`
	W    int      `json:"w"`
	H    int      `json:"h"`
	RGB  [3]uint8 `json:"rgb"`
}

type webVNCResult struct {
	PortSet   bool   `json:"portSet"`
	LinkShown bool   `json:"linkShown"`
	PopupURL  string `json:"popupURL"`
	Pixel     []int  `json:"pixel"`
	Canvas    *struct {
		W      int    `json:"w"`
		H      int    `json:"h"`
		Centre [3]int `json:"centre"`
	} `json:"canvas"`
	Status     *string `json:"status"`
	Screenshot string  `json:"screenshot"`
}

// startX11VNC serves the display over VNC on a loopback port (no
// password: only the test reaches it) and returns the port.
func startX11VNC(t *testing.T, x *xserver) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("x11vnc", "-display", x.Name, "-auth", x.AuthFile, "-rfbport", strconv.Itoa(port),
		"-localhost", "-nopw", "-forever", "-shared", "-quiet", "-noxdamage")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("x11vnc:\n%s", out.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", l.Addr().String()); err == nil {
			c.Close()
			return port
		}
		if time.Now().After(deadline) {
			t.Fatalf("x11vnc does not listen on %d:\n%s", port, out.String())
		}
	}
}

// TestWebVNC: MeshCentral's device page "Web-VNC" link (its noVNC,
// through a port-forwarding tunnel of our agent to x11vnc on the device's
// loopback) shows the Xvfb screen: the canvas has its size and colour.
func TestWebVNC(t *testing.T) {
	RequireBrowserTools(t, "web UI", "Xvfb", "xauth", "x11vnc", "node", "npm")
	const w, h = 640, 400
	x := startXvfb(t, w, h)
	bg := [3]uint8{30, 160, 90}
	x.paint(t, scene{w: w, h: h, bg: bg})
	port := startX11VNC(t, x)
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-webvnc")
	agent, node := startOurAgent(t, srv, srv.MSH(t, mesh))
	r := runUI(t, srv, node, uiConfig{WebVNC: &webVNCCfg{Port: port, W: w, H: h, RGB: bg}})
	v := r.WebVNC
	if v == nil {
		t.Fatal("the browser did not get to Web-VNC")
	}
	if !v.LinkShown {
		t.Fatalf("the device page shows no Web-VNC link (rfbport set: %v)", v.PortSet)
	}
	t.Logf("noVNC %s: status %v, canvas %+v; screenshot %s", v.PopupURL, v.Status, v.Canvas, v.Screenshot)
	if v.Pixel == nil {
		t.Errorf("noVNC's canvas never became %dx%d with %v at the centre (got %+v)", w, h, bg, v.Canvas)
	}
	if len(agent.lines("port forwarding started")) == 0 {
		t.Error("our agent logged no port forwarding")
	}
}
