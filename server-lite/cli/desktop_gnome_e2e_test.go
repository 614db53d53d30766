//go:build linux

package cli

import (
	"context"
	"image"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/waylandtest"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/sessionclient"
)

// TestDesktopGNOMEThroughServerLite shows a headless GNOME compositor
// (mutter, with PipeWire and WirePlumber on its own session bus, as an
// unprivileged user) through server-lite. Our agent binary runs as root
// and is told nothing: it finds the session from mutter's process, joins
// the user's session bus, starts a Mutter RemoteDesktop + ScreenCast
// session and reads the PipeWire stream. The viewer rebuilds frames that
// match what a Wayland client painted, gets only the tiles of a changed
// area, and its mouse and keys reach that client through RemoteDesktop's
// Notify* calls.
func TestDesktopGNOMEThroughServerLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mutter, pipewire and a real agent")
	}
	const w, h = 1024, 768
	m := waylandtest.StartMutter(t, w, h)
	win, err := waylandtest.OpenFullscreenWindow(m.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer win.Close()
	if ww, hh := win.Size(); ww != w || hh != h {
		t.Fatalf("test window %dx%d, want the whole %dx%d monitor", ww, hh, w, h)
	}
	if err := win.Paint(waylandPattern(100)); err != nil {
		t.Fatal(err)
	}
	e := newLiveEnv(t, liveOptions{env: []string{"WAYLAND_DISPLAY=", "DISPLAY=", "XDG_RUNTIME_DIR=", "DBUS_SESSION_BUS_ADDRESS="}})
	waitFor(t, "desktop capability in the agent's coreinfo", func() bool {
		e.app.Store.Flush()
		d, err := e.app.Store.Device(e.nodeID)
		return err == nil && d.Caps&handshake.CapDesktop != 0
	})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := openDesktop(t, ctx, e)

	t.Run("frame", func(t *testing.T) {
		start := time.Now()
		img, err := d.Frame(ctx, -1)
		if err != nil {
			t.Fatal(err)
		}
		st := d.State()
		mean, bad, err := compareImages(img, patternImage(w, h, waylandPattern(100)), -100, -100)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("first full GNOME frame %dx%d in %v: %d tiles, %d KiB; mean error %.2f, %.3f%% pixels off by >48",
			st.Width, st.Height, time.Since(start).Round(time.Millisecond), st.Tiles, st.Bytes>>10, mean, 100*bad)
		if mean > 4 || bad > 0.005 {
			t.Fatalf("frame differs from the painted pattern: mean %.2f, %.3f%% off", mean, 100*bad)
		}
	})

	t.Run("changed tiles only", func(t *testing.T) {
		seq := d.State().Tiles
		if err := win.PaintDamage(waylandPattern(132), 100, 200, 96, 64); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		defer wcancel()
		if _, err := d.Wait(wctx, func(sessionclient.State) bool {
			img := d.Image()
			return near(img, 190, 230, 0xe02020) && near(img, 110, 230, 0xf0c020)
		}); err != nil {
			img := d.Image()
			t.Fatalf("change not shown: %v; pixels %v %v", err, img.RGBAAt(190, 230), img.RGBAAt(110, 230))
		}
		time.Sleep(500 * time.Millisecond)
		changed := image.Rect(96, 192, 224, 288)
		tiles := d.TilesSince(seq)
		for _, tl := range tiles {
			if !tl.Rect.In(changed) {
				t.Errorf("tile %v outside the changed area %v", tl.Rect, changed)
			}
		}
		t.Logf("a 96x64 GNOME change sent %d tile(s)", len(tiles))
		if mean, bad, _ := compareImages(d.Image(), patternImage(w, h, waylandPattern(132)), -100, -100); mean > 4 || bad > 0.005 {
			t.Fatalf("after the change the frame differs: mean %.2f, %.3f%% off", mean, 100*bad)
		}
	})

	t.Run("input", func(t *testing.T) {
		if err := d.Mouse(ctx, sessionclient.MouseMove, 123, 45); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "pointer at 123,45 in the client", func() bool {
			_, mo, _, _ := win.Snapshot()
			return len(mo) > 0 && mo[len(mo)-1] == [2]float64{123, 45}
		})
		if err := d.Send(ctx, sessionclient.MouseCmd(sessionclient.MouseLeftDown, 550, 130), sessionclient.MouseCmd(sessionclient.MouseLeftUp, 550, 130)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "left click at 550,130", func() bool {
			_, mo, b, _ := win.Snapshot()
			return len(b) >= 2 && b[0] == [2]uint32{0x110, 1} && b[1] == [2]uint32{0x110, 0} && mo[len(mo)-1] == [2]float64{550, 130}
		})
		// Headless mutter has no keyboard until our first key creates the
		// virtual one; the client binds it only then and misses that key.
		waitFor(t, "the client's keyboard", func() bool {
			d.Key(ctx, 0x10)
			time.Sleep(300 * time.Millisecond)
			return win.HasKeyboard()
		})
		time.Sleep(300 * time.Millisecond)
		keys0, _, _, _ := win.Snapshot()
		if err := d.Key(ctx, 'A'); err != nil {
			t.Fatal(err)
		}
		if err := d.Send(ctx, sessionclient.UnicodeCmd('z', true), sessionclient.UnicodeCmd('z', false)); err != nil {
			t.Fatal(err)
		}
		var keys []waylandtest.KeyEvent
		waitFor(t, "4 key events", func() bool { keys, _, _, _ = win.Snapshot(); keys = keys[len(keys0):]; return len(keys) >= 4 })
		// evdev KEY_A 30, KEY_Z 44 in Mutter's default us keymap.
		for i, want := range []uint32{30, 30, 44, 44} {
			if keys[i].Code != want || keys[i].Down != (i%2 == 0) {
				t.Errorf("key %d arrived as code %d down=%v, want %d down=%v", i, keys[i].Code, keys[i].Down, want, i%2 == 0)
			}
		}
	})
}
