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

// waylandE2E is one compositor family TestDesktopWaylandThroughServerLite
// runs on.
type waylandE2E struct {
	name string
	// start runs the compositor with a w x h output and a test window
	// covering it; env is what our agent is started with.
	start func(t *testing.T, w, h int) (win *waylandtest.Window, env []string)
	// keyboard readies the client's keyboard before keys are checked.
	keyboard func(t *testing.T, ctx context.Context, d *sessionclient.Desktop, win *waylandtest.Window)
	// sym names the keysyms of a delivered evdev code ("a,A").
	sym func(code uint32, keymap string) string
}

var waylandE2ECases = []waylandE2E{
	{
		// sway (wlroots), found from WAYLAND_DISPLAY: screencopy, virtual
		// pointer and keyboard.
		name: "sway",
		start: func(t *testing.T, w, h int) (*waylandtest.Window, []string) {
			sw := waylandtest.StartSway(t, w, h)
			win, err := waylandtest.OpenWindow(sw.Socket)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(win.Close)
			return win, []string{"WAYLAND_DISPLAY=" + sw.Socket, "DISPLAY="}
		},
		keyboard: func(*testing.T, context.Context, *sessionclient.Desktop, *waylandtest.Window) {},
		sym: func(code uint32, km string) string {
			m := regexp.MustCompile(fmt.Sprintf(`key <K%d>\s*\{\s*\[([^\]]*)\]`, code+8)).FindStringSubmatch(km)
			if m == nil {
				return "?"
			}
			return strings.Join(strings.Fields(strings.ReplaceAll(m[1], ",", " ")), ",")
		},
	},
	{
		// GNOME (mutter with PipeWire and WirePlumber on its own session
		// bus), with the agent told nothing: it finds the session from
		// mutter's process, joins the user's session bus, starts a Mutter
		// RemoteDesktop + ScreenCast session and reads the PipeWire stream.
		name: "mutter",
		start: func(t *testing.T, w, h int) (*waylandtest.Window, []string) {
			m := waylandtest.StartMutter(t, w, h)
			win, err := waylandtest.OpenFullscreenWindow(m.Socket)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(win.Close)
			return win, []string{"WAYLAND_DISPLAY=", "DISPLAY=", "XDG_RUNTIME_DIR=", "DBUS_SESSION_BUS_ADDRESS="}
		},
		// Headless mutter has no keyboard until our first key creates the
		// virtual one; the client binds it only then and misses that key.
		keyboard: func(t *testing.T, ctx context.Context, d *sessionclient.Desktop, win *waylandtest.Window) {
			waitFor(t, "the client's keyboard", func() bool {
				d.Key(ctx, 0x10)
				time.Sleep(300 * time.Millisecond)
				return win.HasKeyboard()
			})
			time.Sleep(300 * time.Millisecond)
		},
		// evdev codes of Mutter's default us keymap.
		sym: func(code uint32, _ string) string { return map[uint32]string{30: "a,A", 44: "z"}[code] },
	},
}

// TestDesktopWaylandThroughServerLite shows a headless Wayland desktop
// (sway, then GNOME's mutter) through server-lite with our agent binary
// running as root: the viewer rebuilds frames that match what a Wayland
// client painted, gets only the tiles of a changed area, and its mouse and
// keys reach that client.
func TestDesktopWaylandThroughServerLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Wayland compositors and a real agent")
	}
	for _, tc := range waylandE2ECases {
		t.Run(tc.name, func(t *testing.T) { testDesktopWayland(t, tc) })
	}
}

func testDesktopWayland(t *testing.T, tc waylandE2E) {
	const w, h = 1024, 768
	win, env := tc.start(t, w, h)
	if ww, hh := win.Size(); ww != w || hh != h {
		t.Fatalf("test window %dx%d, want the whole %dx%d output", ww, hh, w, h)
	}
	if err := win.Paint(waylandPattern(100)); err != nil {
		t.Fatal(err)
	}
	e := newLiveEnv(t, liveOptions{env: env})
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
		// sway draws its cursor into the output: a cursor-sized patch may
		// differ, well under the 0.5% allowed.
		mean, bad, err := compareImages(img, patternImage(w, h, waylandPattern(100)), -100, -100)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("first full %s frame %dx%d in %v: %d tiles, %d KiB; mean error %.2f, %.3f%% pixels off by >48",
			tc.name, st.Width, st.Height, time.Since(start).Round(time.Millisecond), st.Tiles, st.Bytes>>10, mean, 100*bad)
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
		t.Logf("a 96x64 %s change sent %d tile(s)", tc.name, len(tiles))
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
		tc.keyboard(t, ctx, d, win)
		keys0, _, _, _ := win.Snapshot()
		if err := d.Key(ctx, 'A'); err != nil {
			t.Fatal(err)
		}
		if err := d.Send(ctx, sessionclient.UnicodeCmd('z', true), sessionclient.UnicodeCmd('z', false)); err != nil {
			t.Fatal(err)
		}
		var keys []waylandtest.KeyEvent
		var km string
		waitFor(t, "4 key events", func() bool { keys, _, _, km = win.Snapshot(); keys = keys[len(keys0):]; return len(keys) >= 4 })
		for i, want := range []string{"a,A", "a,A", "z", "z"} {
			if got := tc.sym(keys[i].Code, km); got != want || keys[i].Down != (i%2 == 0) {
				t.Errorf("key %d arrived as %q down=%v, want %q down=%v", i, got, keys[i].Down, want, i%2 == 0)
			}
		}
	})
}

// TestDesktopGNOMEMonitorsThroughServerLite: a GNOME session with two
// monitors through server-lite. The display list has both (and "all");
// screenshot --display shows each monitor's own client and all of them
// the whole stage; a viewer that picks display 2 gets that monitor's size
// and its mouse lands on that monitor's client, at the same coordinates.
func TestDesktopGNOMEMonitorsThroughServerLite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts mutter, pipewire and a real agent")
	}
	m := waylandtest.StartMutterMonitors(t, [2]int{640, 480}, [2]int{800, 600})
	// mutter lays the monitors out side by side, 800x600 or 640x480 first.
	colours := map[int]uint32{640: 0x30b040, 800: 0xe02020}
	wins := map[int]*waylandtest.Window{}
	for _, at := range [][2]int{{0, 0}, {640, 0}, {800, 0}} {
		win, err := waylandtest.OpenFullscreenWindowAt(m.Socket, at[0], at[1])
		if err != nil {
			continue // no monitor there in this layout
		}
		t.Cleanup(win.Close)
		ww, _ := win.Size()
		c := colours[ww]
		if err := win.Paint(func(int, int) uint32 { return c }); err != nil {
			t.Fatal(err)
		}
		wins[ww] = win
	}
	if len(wins) != 2 {
		t.Fatalf("windows on %d monitors, want 2", len(wins))
	}
	e := newLiveEnv(t, liveOptions{env: []string{"WAYLAND_DISPLAY=", "DISPLAY=", "XDG_RUNTIME_DIR=", "DBUS_SESSION_BUS_ADDRESS="}})
	waitFor(t, "desktop capability in the agent's coreinfo", func() bool {
		e.app.Store.Flush()
		d, err := e.app.Store.Device(e.nodeID)
		return err == nil && d.Caps&handshake.CapDesktop != 0
	})
	def := screenshot(t, e)
	if len(def.Displays) != 3 || def.Displays[0] != 0xFFFF {
		t.Fatalf("default screenshot: %dx%d display %d of %v, want all + 2 displays", def.Width, def.Height, def.Display, def.Displays)
	}
	widthOf := map[int]int{}
	for _, id := range def.Displays[1:] {
		s := screenshot(t, e, "--display", fmt.Sprint(id))
		c, ok := colours[s.Width]
		if s.Display != id || !ok || !near(s.img, 10, 10, c) || !near(s.img, s.Width-5, s.Height-5, c) {
			t.Fatalf("--display %d: %dx%d display %d, pixel %v", id, s.Width, s.Height, s.Display, s.img.RGBAAt(10, 10))
		}
		widthOf[id] = s.Width
	}
	if widthOf[1] == widthOf[2] {
		t.Fatalf("both displays %d wide, want the two monitors", widthOf[1])
	}
	all := screenshot(t, e, "--display", "65535")
	left := widthOf[1]
	if all.Width != 1440 || all.Height != 600 || !near(all.img, 10, 10, colours[left]) || !near(all.img, left+10, 10, colours[1440-left]) {
		t.Fatalf("all displays: %dx%d", all.Width, all.Height)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := openDesktop(t, ctx, e)
	img, err := d.Frame(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if img.Bounds().Dx() != widthOf[2] || !near(img, 20, 20, colours[widthOf[2]]) {
		t.Fatalf("display 2 in the viewer: %v, pixel %v", img.Bounds(), img.RGBAAt(20, 20))
	}
	if err := d.Mouse(ctx, sessionclient.MouseMove, 61, 47); err != nil {
		t.Fatal(err)
	}
	win := wins[widthOf[2]]
	waitFor(t, "pointer at 61,47 on display 2's client", func() bool {
		_, mo, _, _ := win.Snapshot()
		return len(mo) > 0 && mo[len(mo)-1] == [2]float64{61, 47}
	})
	t.Logf("displays %v (widths %v): each monitor, all of them, and input on display 2", def.Displays, widthOf)
}
