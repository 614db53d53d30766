//go:build linux

package cli

import (
	"context"
	"fmt"
	"image"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/waylandtest"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/sessionclient"
)

// waylandPattern is what the test client paints: a blue background, an
// amber and a green panel, and a red square whose x moves.
func waylandPattern(sq int) func(x, y int) uint32 {
	return func(x, y int) uint32 {
		switch {
		case x >= sq && x < sq+64 && y >= 200 && y < 264:
			return 0xe02020
		case x >= 40 && x < 340 && y >= 40 && y < 240:
			return 0xf0c020
		case x >= 600 && x < 1000 && y >= 300 && y < 650:
			return 0x30b040
		}
		return 0x2050a0
	}
}

func patternImage(w, h int, pix func(x, y int) uint32) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := pix(x, y)
			o := img.PixOffset(x, y)
			img.Pix[o], img.Pix[o+1], img.Pix[o+2], img.Pix[o+3] = byte(v>>16), byte(v>>8), byte(v), 255
		}
	}
	return img
}

// TestDesktopWaylandThroughServerLite shows a headless sway (wlroots)
// desktop through server-lite with our agent binary running as root and
// finding the compositor from WAYLAND_DISPLAY: the viewer rebuilds frames
// that match what a Wayland client painted, gets only the tiles of a
// changed area, and its mouse and keys reach that client through the
// virtual pointer and keyboard.
func TestDesktopWaylandThroughServerLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts sway and a real agent")
	}
	const w, h = 1024, 768
	sw := waylandtest.StartSway(t, w, h)
	win, err := waylandtest.OpenWindow(sw.Socket)
	if err != nil {
		t.Fatal(err)
	}
	defer win.Close()
	if ww, hh := win.Size(); ww != w || hh != h {
		t.Fatalf("test window %dx%d, want the whole %dx%d output", ww, hh, w, h)
	}
	if err := win.Paint(waylandPattern(100)); err != nil {
		t.Fatal(err)
	}
	e := newLiveEnv(t, liveOptions{env: []string{"WAYLAND_DISPLAY=" + sw.Socket, "DISPLAY="}})
	// The core's coreinfo announces the desktop (the web UI's Desktop tab).
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
		// The compositor draws its cursor into the output: a cursor-sized
		// patch may differ, well under the 0.5% allowed.
		mean, bad, err := compareImages(img, patternImage(w, h, waylandPattern(100)), -100, -100)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("first full Wayland frame %dx%d in %v: %d tiles, %d KiB; mean error %.2f, %.3f%% pixels off by >48",
			st.Width, st.Height, time.Since(start).Round(time.Millisecond), st.Tiles, st.Bytes>>10, mean, 100*bad)
		if mean > 4 || bad > 0.005 {
			t.Fatalf("frame differs from the painted pattern: mean %.2f, %.3f%% off", mean, 100*bad)
		}
	})

	t.Run("changed tiles only", func(t *testing.T) {
		seq := d.State().Tiles
		// The square moves from x 100 to 132 and only that band is damaged:
		// on the 32-pixel grid the change spans x 96..224, y 192..288.
		if err := win.PaintDamage(waylandPattern(132), 100, 200, 96, 64); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 15*time.Second)
		defer wcancel()
		if _, err := d.Wait(wctx, func(sessionclient.State) bool {
			img := d.Image()
			return near(img, 190, 230, 0xe02020) && near(img, 110, 230, 0xf0c020) // amber panel under where the square was
		}); err != nil {
			img := d.Image()
			t.Fatalf("change not shown: %v; pixels %v %v", err, img.RGBAAt(190, 230), img.RGBAAt(110, 230))
		}
		time.Sleep(500 * time.Millisecond) // any straggling tiles
		changed := image.Rect(96, 192, 224, 288)
		tiles := d.TilesSince(seq)
		for _, tl := range tiles {
			if !tl.Rect.In(changed) {
				t.Errorf("tile %v outside the changed area %v", tl.Rect, changed)
			}
		}
		t.Logf("a 96x64 Wayland change sent %d tile(s)", len(tiles))
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
		if err := d.Key(ctx, 'A'); err != nil {
			t.Fatal(err)
		}
		if err := d.Send(ctx, sessionclient.UnicodeCmd('z', true), sessionclient.UnicodeCmd('z', false)); err != nil {
			t.Fatal(err)
		}
		var keys []waylandtest.KeyEvent
		var km string
		waitFor(t, "4 key events", func() bool { keys, _, _, km = win.Snapshot(); return len(keys) >= 4 })
		sym := func(code uint32) string {
			m := regexp.MustCompile(fmt.Sprintf(`key <K%d>\s*\{\s*\[([^\]]*)\]`, code+8)).FindStringSubmatch(km)
			if m == nil {
				return "?"
			}
			return strings.Join(strings.Fields(strings.ReplaceAll(m[1], ",", " ")), ",")
		}
		for i, want := range []string{"a,A", "a,A", "z", "z"} {
			if got := sym(keys[i].Code); got != want || keys[i].Down != (i%2 == 0) {
				t.Errorf("key %d arrived as %q down=%v, want %q down=%v", i, got, keys[i].Down, want, i%2 == 0)
			}
		}
	})
}
