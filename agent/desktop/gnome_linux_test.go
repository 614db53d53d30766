package desktop

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/waylandtest"
)

// startMutterWindow runs headless mutter with a fullscreen test client
// painted with testPattern(100) scaled to w x h.
func startMutterWindow(t *testing.T, w, h int) (*waylandtest.Mutter, *waylandtest.Window) {
	m := waylandtest.StartMutter(t, w, h)
	win, err := waylandtest.OpenFullscreenWindow(m.Socket)
	if err != nil {
		t.Fatalf("test window: %v", err)
	}
	t.Cleanup(win.Close)
	if ww, hh := win.Size(); ww != w || hh != h {
		t.Fatalf("window configured %dx%d, want the whole %dx%d monitor", ww, hh, w, h)
	}
	if err := win.Paint(testPattern(100)); err != nil {
		t.Fatal(err)
	}
	return m, win
}

// TestGNOMEDiscover: the mutter session is found from its process, with
// its user, session bus and runtime dir.
func TestGNOMEDiscover(t *testing.T) {
	m := waylandtest.StartMutter(t, 640, 480)
	var found *gnomeTarget
	for _, g := range discoverGNOME(Options{}) {
		if g.pid == m.Pid {
			found = &g
		}
	}
	if found == nil {
		t.Fatalf("mutter pid %d not among %+v", m.Pid, discoverGNOME(Options{}))
	}
	if found.uid != m.UID || found.bus != m.Bus || found.runtime != m.Runtime {
		t.Fatalf("found %+v, want uid %d bus %s runtime %s", *found, m.UID, m.Bus, m.Runtime)
	}
	if !gnomeAvailable() {
		t.Fatal("gnomeAvailable false with Mutter's services on the session bus")
	}
}

// TestGNOMECaptureInput: as root with no hint, openScreen's Wayland half
// finds the mutter session, shows what the client painted, reports only
// the changed area, and its pointer, buttons, wheel and keys reach the
// client.
func TestGNOMECaptureInput(t *testing.T) {
	_, win := startMutterWindow(t, 640, 480)
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("DISPLAY", "")
	scr, name, err := openAnyWayland(Options{}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer scr.close()
	if !strings.HasPrefix(name, "gnome:") {
		t.Fatalf("screen %q, want the GNOME session", name)
	}
	mons, err := scr.monitors()
	if err != nil || len(mons) != 1 || mons[0].W != 640 || mons[0].H != 480 {
		t.Fatalf("monitors %+v, %v; want one 640x480", mons, err)
	}
	check := func(want func(x, y int) uint32) string {
		f, err := scr.capture(0, 0, 640, 480)
		if err != nil {
			return err.Error()
		}
		for _, p := range [][2]int{{10, 10}, {319, 479}, {320, 0}, {639, 479}, {130, 130}, {163, 163}, {200, 130}, {164, 140}} {
			if got, w := pixelAt(f, p[0], p[1]), want(p[0], p[1]); got != w {
				return fmt.Sprintf("pixel %v = %06x, want %06x", p, got, w)
			}
		}
		return ""
	}
	var why string
	if !waitFor(10*time.Second, func() bool { why = check(testPattern(100)); return why == "" }) {
		if f, err := scr.capture(0, 0, 640, 480); err == nil {
			dumpPNG(t, f)
		}
		t.Fatalf("captured frame does not show the painted pattern: %s", why)
	}
	// Static: no frames, no damage.
	scr.damage()
	gs := scr.(*gnomeScreen)
	n0 := gs.nFrames.Load()
	time.Sleep(time.Second)
	if x, y, w, h, known := scr.damage(); !known || w != 0 {
		t.Fatalf("static screen reports damage %d,%d %dx%d known=%v", x, y, w, h, known)
	}
	t.Logf("frames on a static screen in 1s: %d", gs.nFrames.Load()-n0)

	if err := win.PaintDamage(testPattern(400), 100, 100, 364, 64); err != nil {
		t.Fatal(err)
	}
	var box rect
	waitFor(10*time.Second, func() bool {
		x, y, w, h, known := scr.damage()
		if known {
			box = union(box, rect{x, y, w, h})
		}
		return check(testPattern(400)) == ""
	})
	if why := check(testPattern(400)); why != "" {
		t.Fatalf("after repaint: %s", why)
	}
	x, y, w, h, _ := scr.damage()
	box = union(box, rect{x, y, w, h})
	if box.w == 0 || box.x > 100 || box.y > 100 || box.x+box.w < 464 || box.y+box.h < 164 || box.w*box.h > 640*480/2 {
		t.Fatalf("damage %+v, want the moved square's band", box)
	}
	t.Logf("damage box after moving the square: %+v", box)

	// Input.
	if err := scr.mouseMove(200, 150); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool {
		_, mo, _, _ := win.Snapshot()
		return len(mo) > 0 && mo[len(mo)-1] == [2]float64{200, 150}
	}) {
		_, mo, _, _ := win.Snapshot()
		t.Fatalf("pointer motions at the client %v, want last at 200,150", mo)
	}
	for _, b := range []struct {
		n    int
		down bool
	}{{1, true}, {1, false}, {3, true}, {3, false}} {
		if err := scr.mouseButton(b.n, b.down); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(5*time.Second, func() bool { _, _, b, _ := win.Snapshot(); return len(b) >= 4 }) {
		_, _, b, _ := win.Snapshot()
		t.Fatalf("buttons at the client %v, want 4", b)
	}
	_, _, b, _ := win.Snapshot()
	if b[0] != [2]uint32{0x110, 1} || b[1] != [2]uint32{0x110, 0} || b[2] != [2]uint32{0x111, 1} || b[3] != [2]uint32{0x111, 0} {
		t.Fatalf("buttons %v, want left press/release then right", b)
	}
	if err := scr.wheel(-120); err != nil {
		t.Fatal(err)
	}
	if !waitFor(5*time.Second, func() bool { return len(win.Scrolls()) >= 1 }) {
		t.Fatal("no scroll at the client")
	}
	if sc := win.Scrolls(); sc[0] <= 0 {
		t.Fatalf("scroll %v, want down (>0)", sc)
	}
	// Shift+A, b, then UNICODE 'z': evdev codes KEY_LEFTSHIFT 42, KEY_A 30,
	// KEY_B 48, KEY_Z 44 in Mutter's default (us) keymap.
	// Headless mutter has no keyboard: the seat gains one, and the client
	// its wl_keyboard, only with our first key, which the client so misses.
	// Tap Shift until the client has its keyboard.
	if !waitFor(10*time.Second, func() bool {
		scr.key(0x10, true, false)
		scr.key(0x10, false, false)
		time.Sleep(200 * time.Millisecond)
		return win.HasKeyboard()
	}) {
		t.Fatal("the client never got a keyboard")
	}
	time.Sleep(200 * time.Millisecond)
	keys0, _, _, _ := win.Snapshot()
	// Shift+A, b, then UNICODE 'z': evdev codes KEY_LEFTSHIFT 42, KEY_A 30,
	// KEY_B 48, KEY_Z 44 in Mutter's default (us) keymap.
	for _, k := range []struct {
		vk   byte
		down bool
	}{{0x10, true}, {'A', true}, {'A', false}, {0x10, false}, {'B', true}, {'B', false}} {
		if err := scr.key(k.vk, k.down, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := scr.unicode('z', true); err != nil {
		t.Fatal(err)
	}
	var keys []waylandtest.KeyEvent
	if !waitFor(5*time.Second, func() bool { keys, _, _, _ = win.Snapshot(); keys = keys[len(keys0):]; return len(keys) >= 8 }) {
		t.Fatalf("keys at the client %+v, want 8", keys)
	}
	want := []struct {
		code  uint32
		down  bool
		shift bool
	}{{42, true, false}, {30, true, true}, {30, false, true}, {42, false, true}, {48, true, false}, {48, false, false}, {44, true, false}, {44, false, false}}
	for i, w := range want {
		k := keys[i]
		if k.Code != w.code || k.Down != w.down || (k.Mods&modShift != 0) != w.shift {
			t.Errorf("key %d: code %d down=%v mods=%#x; want %d down=%v shift=%v", i, k.Code, k.Down, k.Mods, w.code, w.down, w.shift)
		}
	}
}

// BenchmarkChangedBox: the per-frame cost of finding what changed in a
// 1920x1080 GNOME frame when a 200x200 region did (the PipeWire route
// through gst-launch carries no damage).
func BenchmarkChangedBox(b *testing.B) {
	const w, h = 1920, 1080
	a, c := make([]byte, w*h*4), make([]byte, w*h*4)
	for y := 440; y < 640; y++ {
		for x := 850; x < 1050; x++ {
			c[(y*w+x)*4] = 1
		}
	}
	b.SetBytes(w * h * 4)
	for b.Loop() {
		if r, ok := changedBox(a, c, w*4, w, h); !ok || r != (rect{850, 440, 200, 200}) {
			b.Fatalf("box %+v", r)
		}
	}
}

func TestChangedBox(t *testing.T) {
	const w, h = 8, 4
	for _, tc := range []struct {
		px   [][2]int
		want rect
		ok   bool
	}{
		{nil, rect{}, false},
		{[][2]int{{0, 0}}, rect{0, 0, 1, 1}, true},
		{[][2]int{{7, 3}}, rect{7, 3, 1, 1}, true},
		{[][2]int{{2, 1}, {5, 2}}, rect{2, 1, 4, 2}, true},
		{[][2]int{{6, 0}, {1, 3}}, rect{1, 0, 6, 4}, true},
	} {
		a, b := make([]byte, w*h*4), make([]byte, w*h*4)
		for _, p := range tc.px {
			b[(p[1]*w+p[0])*4+2] = 9
		}
		if r, ok := changedBox(a, b, w*4, w, h); r != tc.want || ok != tc.ok {
			t.Errorf("%v: got %+v %v, want %+v %v", tc.px, r, ok, tc.want, tc.ok)
		}
	}
}
