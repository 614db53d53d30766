package desktop

import (
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
// movePointerAndCheck moves the pointer through the capture route's input
// and waits until the Wayland test client saw its last motion at x,y:
// the route's absolute coordinates land where the viewer meant.
func movePointerAndCheck(t *testing.T, scr interface{ mouseMove(x, y int) error }, win *waylandtest.Window, x, y int) {
	t.Helper()
	if err := scr.mouseMove(x, y); err != nil {
		t.Fatal(err)
	}
	want := [2]float64{float64(x), float64(y)}
	if !waitFor(10*time.Second, func() bool {
		_, mo, _, _ := win.Snapshot()
		return len(mo) > 0 && mo[len(mo)-1] == want
	}) {
		_, mo, _, _ := win.Snapshot()
		t.Fatalf("pointer motions at the client %v, want last at %d,%d", mo, x, y)
	}
}

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

// waylandCase is one compositor family the Wayland desktop tests run on:
// the same capture, damage and input checks, with what differs between
// them here.
type waylandCase struct {
	name string
	// open starts the compositor with one 640x480 output, a test window
	// covering it painted with testPattern(100), and our screen on it,
	// found the way the agent finds it.
	open func(t *testing.T) (screen, *waylandtest.Window)
	// keyboard readies the client's keyboard before keys are checked.
	keyboard func(t *testing.T, scr screen, win *waylandtest.Window)
	// uni is the character typed through UNICODE and uniSym its keysyms
	// as sym names them.
	uni    rune
	uniSym string
	// sym names the keysyms of a delivered evdev code ("a,A").
	sym func(code uint32, keymap string) string
}

var waylandCases = []waylandCase{
	{
		name: "sway",
		open: func(t *testing.T) (screen, *waylandtest.Window) {
			sw := waylandtest.StartSway(t, 640, 480)
			win := paintedWindow(t, waylandtest.OpenWindow, sw.Socket, 640, 480)
			scr, name, err := openWayland(Options{WaylandDisplay: sw.Socket}, slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { scr.close() })
			if name != sw.Socket {
				t.Errorf("screen name %q, want %q", name, sw.Socket)
			}
			return scr, win
		},
		keyboard: func(*testing.T, screen, *waylandtest.Window) {},
		// Not in the keymap: we upload a new one holding it.
		uni: 'é', uniSym: "eacute",
		// Through the keymap the compositor forwarded to the client (the
		// last one: é made us upload a new one).
		sym: func(code uint32, km string) string {
			m := regexp.MustCompile(fmt.Sprintf(`key <K%d>\s*\{\s*\[([^\]]*)\]`, code+8)).FindStringSubmatch(km)
			if m == nil {
				return "?"
			}
			return strings.Join(strings.Fields(strings.ReplaceAll(m[1], ",", " ")), ",")
		},
	},
	{
		name: "mutter",
		open: func(t *testing.T) (screen, *waylandtest.Window) {
			m := waylandtest.StartMutter(t, 640, 480)
			win := paintedWindow(t, waylandtest.OpenFullscreenWindow, m.Socket, 640, 480)
			// As root with no hint: found from mutter's process (only
			// this test's, so a concurrent test's session is not taken).
			t.Setenv("WAYLAND_DISPLAY", "")
			t.Setenv("DISPLAY", "")
			scr, name, err := openAnyWayland(Options{ProcRoot: onlyProc(t, m.Pid)}, slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { scr.close() })
			if !strings.HasPrefix(name, "gnome:") {
				t.Fatalf("screen %q, want the GNOME session", name)
			}
			return scr, win
		},
		// Headless mutter has no keyboard: the seat gains one, and the
		// client its wl_keyboard, only with our first key, which the
		// client so misses. Tap Shift until the client has its keyboard.
		keyboard: func(t *testing.T, scr screen, win *waylandtest.Window) {
			if !waitFor(10*time.Second, func() bool {
				scr.key(0x10, true, false)
				scr.key(0x10, false, false)
				time.Sleep(200 * time.Millisecond)
				return win.HasKeyboard()
			}) {
				t.Fatal("the client never got a keyboard")
			}
			time.Sleep(200 * time.Millisecond)
		},
		// Mutter types only keysyms its keymap has.
		uni: 'z', uniSym: "z,Z",
		// evdev codes of Mutter's default (us) keymap.
		sym: func(code uint32, _ string) string {
			return map[uint32]string{42: "Shift_L", 30: "a,A", 48: "b,B", 44: "z,Z"}[code]
		},
	},
}

// paintedWindow opens a test window on socket that must cover the w x h
// output, painted with testPattern(100).
func paintedWindow(t *testing.T, open func(string) (*waylandtest.Window, error), socket string, w, h int) *waylandtest.Window {
	t.Helper()
	win, err := open(socket)
	if err != nil {
		t.Fatalf("test window: %v", err)
	}
	t.Cleanup(win.Close)
	if ww, hh := win.Size(); ww != w || hh != h {
		t.Fatalf("window configured %dx%d, want the whole %dx%d output", ww, hh, w, h)
	}
	if err := win.Paint(testPattern(100)); err != nil {
		t.Fatal(err)
	}
	return win
}

// onlyProc is a process table holding just pid (a link to its /proc
// entry), for Options.ProcRoot: discovery then finds this test's
// compositor and no other test's running at the same time.
func onlyProc(t *testing.T, pid int) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Symlink(filepath.Join("/proc", strconv.Itoa(pid)), filepath.Join(root, strconv.Itoa(pid))); err != nil {
		t.Fatal(err)
	}
	return root
}

// checkPattern compares sample pixels of the w x h capture at x, y with
// want: "" when they match.
func checkPattern(scr screen, x, y, w, h int, want func(x, y int) uint32) string {
	f, err := scr.capture(x, y, w, h)
	if err != nil {
		return err.Error()
	}
	for _, p := range [][2]int{{10, 10}, {319, h - 1}, {320, 0}, {w - 1, h - 1}, {130, 130}, {163, 163}, {200, 130}, {164, 140}} {
		if got, w := pixelAt(f, p[0], p[1]), want(p[0], p[1]); got != w {
			return fmt.Sprintf("pixel %v = %06x, want %06x", p, got, w)
		}
	}
	return ""
}

// TestWaylandDesktop: on each compositor our screen shows what the client
// painted, a static screen reports no damage, moving the square damages
// only its band, and the pointer, buttons, wheel, keys with Shift and a
// UNICODE character reach the client.
func TestWaylandDesktop(t *testing.T) {
	for _, tc := range waylandCases {
		t.Run(tc.name, func(t *testing.T) {
			scr, win := tc.open(t)
			mons, err := scr.monitors()
			if err != nil || len(mons) != 1 || mons[0].W != 640 || mons[0].H != 480 {
				t.Fatalf("monitors %+v, %v; want one 640x480", mons, err)
			}
			var why string
			if !waitFor(10*time.Second, func() bool { why = checkPattern(scr, 0, 0, 640, 480, testPattern(100)); return why == "" }) {
				if f, err := scr.capture(0, 0, 640, 480); err == nil {
					dumpPNG(t, f)
				}
				t.Fatalf("captured frame does not show the painted pattern: %s", why)
			}
			// Static screen: a half second with no damage once drained (a
			// compositor may repaint the output once after start, as sway
			// did in one run: a screen that keeps changing fails all tries).
			var dx, dy, dw, dh int
			var known bool
			if !waitFor(10*time.Second, func() bool {
				scr.damage()
				time.Sleep(500 * time.Millisecond)
				dx, dy, dw, dh, known = scr.damage()
				return known && dw == 0
			}) {
				t.Fatalf("static screen reports damage %d,%d %dx%d known=%v", dx, dy, dw, dh, known)
			}
			// Move the square, damaging only the band it moved in: the
			// damage box covers the change, not the screen.
			if err := win.PaintDamage(testPattern(400), 100, 100, 364, 64); err != nil {
				t.Fatal(err)
			}
			var box rect
			waitFor(10*time.Second, func() bool {
				x, y, w, h, known := scr.damage()
				if known {
					box = union(box, rect{x, y, w, h})
				}
				return checkPattern(scr, 0, 0, 640, 480, testPattern(400)) == ""
			})
			if why := checkPattern(scr, 0, 0, 640, 480, testPattern(400)); why != "" {
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

			movePointerAndCheck(t, scr, win, 200, 150)
			for _, b := range []struct {
				n    int
				down bool
			}{{1, true}, {1, false}, {3, true}, {3, false}} {
				if err := scr.mouseButton(b.n, b.down); err != nil {
					t.Fatal(err)
				}
			}
			if !waitFor(10*time.Second, func() bool { _, _, b, _ := win.Snapshot(); return len(b) >= 4 }) {
				_, _, b, _ := win.Snapshot()
				t.Fatalf("buttons at the client %v, want 4", b)
			}
			_, _, b, _ := win.Snapshot()
			if len(b) != 4 || b[0] != [2]uint32{0x110, 1} || b[1] != [2]uint32{0x110, 0} || b[2] != [2]uint32{0x111, 1} || b[3] != [2]uint32{0x111, 0} {
				t.Fatalf("buttons %v, want left press/release then right", b)
			}

			// Wheel up then down: Wayland counts down as positive.
			if err := scr.wheel(120); err != nil {
				t.Fatal(err)
			}
			if !waitFor(10*time.Second, func() bool { return len(win.Scrolls()) >= 1 }) {
				t.Fatal("no scroll at the client")
			}
			if err := scr.wheel(-120); err != nil {
				t.Fatal(err)
			}
			if !waitFor(10*time.Second, func() bool { return len(win.Scrolls()) >= 2 }) {
				t.Fatalf("scroll at the client %v, want 2 events", win.Scrolls())
			}
			if sc := win.Scrolls(); sc[0] >= 0 || sc[len(sc)-1] <= 0 {
				t.Fatalf("scroll values %v, want up (<0) then down (>0)", sc)
			}

			tc.keyboard(t, scr, win)
			keys0, _, _, _ := win.Snapshot()
			// Shift+A, then b, then the UNICODE character.
			for _, k := range []struct {
				vk   byte
				down bool
			}{{0x10, true}, {'A', true}, {'A', false}, {0x10, false}, {'B', true}, {'B', false}} {
				if err := scr.key(k.vk, k.down, false); err != nil {
					t.Fatal(err)
				}
			}
			if err := scr.unicode(uint16(tc.uni), true); err != nil {
				t.Fatal(err)
			}
			var keys []waylandtest.KeyEvent
			var km string
			if !waitFor(10*time.Second, func() bool {
				keys, _, _, km = win.Snapshot()
				keys = keys[len(keys0):]
				return len(keys) >= 8
			}) {
				t.Fatalf("keys at the client %+v, want 8", keys)
			}
			want := []struct {
				sym   string
				down  bool
				shift bool
			}{
				{"Shift_L", true, false}, {"a,A", true, true}, {"a,A", false, true},
				{"Shift_L", false, true}, {"b,B", true, false}, {"b,B", false, false},
				{tc.uniSym, true, false}, {tc.uniSym, false, false},
			}
			for i, w := range want {
				k := keys[i]
				if got := tc.sym(k.Code, km); got != w.sym || k.Down != w.down || (k.Mods&modShift != 0) != w.shift {
					t.Errorf("key %d: code %d (%s) down=%v mods=%#x; want %s down=%v shift=%v", i, k.Code, got, k.Down, k.Mods, w.sym, w.down, w.shift)
				}
			}
		})
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
	old, oldProc := runUserRoot, procRoot
	runUserRoot = t.TempDir()
	// No process table either: a GNOME session another test (or package)
	// runs at the same time would make the GNOME half true.
	procRoot = t.TempDir()
	oldUID := consoleUID
	consoleUID = func() string { return "" }
	t.Cleanup(func() { runUserRoot, procRoot, consoleUID = old, oldProc, oldUID })
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
