package desktop

import (
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/waylandtest"
)

// testPattern: red left half, blue right half, a green square at 100,100.
func testPattern(sq int) func(x, y int) uint32 {
	return func(x, y int) uint32 {
		if x >= sq && x < sq+64 && y >= 100 && y < 164 {
			return 0x00ff00
		}
		if x < 320 {
			return 0xff0000
		}
		return 0x0000ff
	}
}

// pixelAt reads a BGRX frame as 0xRRGGBB.
func pixelAt(f *frame, x, y int) uint32 {
	o := y*f.stride + x*4
	return uint32(f.pix[o+2])<<16 | uint32(f.pix[o+1])<<8 | uint32(f.pix[o])
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

func startSwayWindow(t *testing.T) (*waylandtest.Sway, *waylandtest.Window) {
	sw := waylandtest.StartSway(t, 640, 480)
	win, err := waylandtest.OpenWindow(sw.Socket)
	if err != nil {
		t.Fatalf("test window: %v", err)
	}
	t.Cleanup(win.Close)
	if w, h := win.Size(); w != 640 || h != 480 {
		t.Fatalf("window configured %dx%d, want the whole 640x480 output", w, h)
	}
	if err := win.Paint(testPattern(100)); err != nil {
		t.Fatal(err)
	}
	return sw, win
}

func TestWaylandCaptureAndDamage(t *testing.T) {
	sw, win := startSwayWindow(t)
	scr, name, err := openWayland(Options{WaylandDisplay: sw.Socket}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer scr.close()
	if name != sw.Socket {
		t.Errorf("screen name %q, want %q", name, sw.Socket)
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
	if !waitFor(3*time.Second, func() bool { why = check(testPattern(100)); return why == "" }) {
		if f, err := scr.capture(0, 0, 640, 480); err == nil {
			dumpPNG(t, f)
		}
		t.Fatalf("captured frame does not show the painted pattern: %s", why)
	}
	// Static screen: no damage once drained.
	waitFor(time.Second, func() bool { _, _, w, _, known := scr.damage(); return known && w == 0 })
	time.Sleep(300 * time.Millisecond)
	if x, y, w, h, known := scr.damage(); !known || w != 0 {
		t.Fatalf("static screen reports damage %d,%d %dx%d known=%v", x, y, w, h, known)
	}
	// Move the square, damaging only the band it moved in: the damage box
	// covers the change, not the screen.
	if err := win.PaintDamage(testPattern(400), 100, 100, 364, 64); err != nil {
		t.Fatal(err)
	}
	var box rect
	waitFor(3*time.Second, func() bool {
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
	if box.w == 0 || box.x > 100 || box.y > 100 || box.x+box.w < 464 || box.y+box.h < 164 {
		t.Fatalf("damage %+v does not cover the moved square", box)
	}
	if box.w*box.h > 640*480/2 {
		t.Fatalf("damage %+v: far more than the 364x64 band that changed", box)
	}
	t.Logf("damage box after moving the square: %+v", box)
}

func TestWaylandInput(t *testing.T) {
	sw, win := startSwayWindow(t)
	scr, _, err := openWayland(Options{WaylandDisplay: sw.Socket}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer scr.close()
	if err := scr.mouseMove(200, 150); err != nil {
		t.Fatal(err)
	}
	if !waitFor(3*time.Second, func() bool {
		_, mo, _, _ := win.Snapshot()
		return len(mo) > 0 && mo[len(mo)-1] == [2]float64{200, 150}
	}) {
		_, mo, _, _ := win.Snapshot()
		t.Fatalf("pointer motions at the client %v, want last at 200,150", mo)
	}
	scr.mouseButton(1, true)
	scr.mouseButton(1, false)
	scr.mouseButton(3, true)
	scr.mouseButton(3, false)
	if !waitFor(3*time.Second, func() bool { _, _, b, _ := win.Snapshot(); return len(b) == 4 }) {
		_, _, b, _ := win.Snapshot()
		t.Fatalf("buttons at the client %v, want 4", b)
	}
	_, _, b, _ := win.Snapshot()
	if b[0] != [2]uint32{0x110, 1} || b[1] != [2]uint32{0x110, 0} || b[2] != [2]uint32{0x111, 1} || b[3] != [2]uint32{0x111, 0} {
		t.Fatalf("buttons %v, want left press/release then right", b)
	}

	// Wheel up then down: Wayland counts down as positive.
	scr.wheel(120)
	scr.wheel(-120)
	if !waitFor(3*time.Second, func() bool { return len(win.Scrolls()) >= 2 }) {
		t.Fatalf("scroll at the client %v, want 2 events", win.Scrolls())
	}
	if sc := win.Scrolls(); sc[0] >= 0 || sc[1] <= 0 {
		t.Fatalf("scroll values %v, want up (<0) then down (>0)", sc)
	}

	// Shift+A, then b, then the UNICODE character é.
	for _, k := range []struct {
		vk   byte
		down bool
	}{{0x10, true}, {'A', true}, {'A', false}, {0x10, false}, {'B', true}, {'B', false}} {
		if err := scr.key(k.vk, k.down, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := scr.unicode('é', true); err != nil {
		t.Fatal(err)
	}
	var keys []waylandtest.KeyEvent
	var km string
	if !waitFor(3*time.Second, func() bool { keys, _, _, km = win.Snapshot(); return len(keys) >= 8 }) {
		t.Fatalf("keys at the client %+v, want 8", keys)
	}
	// Resolve the delivered keycodes through the keymap the compositor
	// forwarded to the client (the last one: é made us upload a new one).
	sym := func(code uint32) string {
		m := regexp.MustCompile(fmt.Sprintf(`key <K%d>\s*\{\s*\[([^\]]*)\]`, code+8)).FindStringSubmatch(km)
		if m == nil {
			return "?"
		}
		return strings.Join(strings.Fields(strings.ReplaceAll(m[1], ",", " ")), ",")
	}
	want := []struct {
		sym   string
		down  bool
		shift bool
	}{
		{"Shift_L", true, false}, {"a,A", true, true}, {"a,A", false, true},
		{"Shift_L", false, true}, {"b,B", true, false}, {"b,B", false, false},
		{"eacute", true, false}, {"eacute", false, false},
	}
	for i, w := range want {
		k := keys[i]
		if sym(k.Code) != w.sym || k.Down != w.down || (k.Mods&modShift != 0) != w.shift {
			t.Errorf("key %d: code %d (%s) down=%v mods=%#x; want %s down=%v shift=%v", i, k.Code, sym(k.Code), k.Down, k.Mods, w.sym, w.down, w.shift)
		}
	}
}

// dumpPNG saves a failing capture for a look.
func dumpPNG(t *testing.T, f *frame) {
	img := image.NewRGBA(image.Rect(0, 0, f.w, f.h))
	for y := 0; y < f.h; y++ {
		for x := 0; x < f.w; x++ {
			o := y*f.stride + x*4
			img.Pix[(y*f.w+x)*4], img.Pix[(y*f.w+x)*4+1], img.Pix[(y*f.w+x)*4+2], img.Pix[(y*f.w+x)*4+3] = f.pix[o+2], f.pix[o+1], f.pix[o], 255
		}
	}
	p := filepath.Join(os.TempDir(), t.Name()+".png")
	if fh, err := os.Create(p); err == nil {
		png.Encode(fh, img)
		fh.Close()
		t.Logf("capture saved to %s", p)
	}
}

// TestAvailableWayland: the Wayland half of Available reports a desktop
// for a compositor that offers screencopy, and not for a socket that is no
// compositor (the X half is the X tests'; other X servers on the machine
// would make Available itself true anyway).
func TestAvailableWayland(t *testing.T) {
	old := runUserRoot
	runUserRoot = t.TempDir()
	oldUID := consoleUID
	consoleUID = func() string { return "" }
	t.Cleanup(func() { runUserRoot, consoleUID = old, oldUID })
	t.Setenv("WAYLAND_DISPLAY", "")
	if waylandAvailable() {
		t.Fatal("Wayland available with no compositor at all")
	}
	sw := waylandtest.StartSway(t, 320, 240)
	t.Setenv("WAYLAND_DISPLAY", sw.Socket)
	if !waylandAvailable() {
		t.Fatal("not available with a sway compositor in WAYLAND_DISPLAY")
	}
	t.Setenv("WAYLAND_DISPLAY", filepath.Join(t.TempDir(), "nothing"))
	if waylandAvailable() {
		t.Fatal("available for a WAYLAND_DISPLAY with no compositor")
	}
}
