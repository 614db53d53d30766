package desktop

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/waylandtest"
)

// The GNOME backend's dialogs on an 800x600 monitor: where to click.
const (
	dlgShareX, dlgShareY   = 612, 173 // the dialog's Share button
	dlgShareBG             = 577      // x of a pixel of its background, off the label
	dlgSwitchX, dlgSwitchY = 589, 372 // "Allow remote interaction" (Remote desktop dialog)
	dlgSwitchOn            = 574      // x of a pixel blue once the switch is on
)

// TestPortalGNOME: as root, the agent's portal route (forced, on headless
// mutter with the real xdg-desktop-portal 1.16 and its GNOME backend)
// finds the session, asks the portal, tells the viewer that the user must
// answer (and why: RemoteDesktop version 1 keeps no grant), and once the
// person at the screen allowed remote interaction and shared, shows what a
// client painted, and its pointer, button and key reach that client.
func TestPortalGNOME(t *testing.T) {
	m := waylandtest.StartMutterPortal(t, 800, 600)
	op := m.Operator(t)
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("DISPLAY", "")
	state := t.TempDir()
	notices := make(chan string, 8)
	opts := Options{Portal: true, StateDir: state, notice: func(s string) { notices <- s }}
	type opened struct {
		scr  screen
		name string
		err  error
	}
	got := make(chan opened, 1)
	go func() {
		s, n, err := openAnyWayland(opts, slog.Default())
		got <- opened{s, n, err}
	}()
	select {
	case n := <-notices:
		if !strings.Contains(n, "cannot keep a grant") {
			t.Errorf("viewer notice %q, want it to say the grant cannot be kept (RemoteDesktop v1)", n)
		}
	case r := <-got:
		t.Fatalf("openAnyWayland returned before asking the user: %q %v\n%s", r.name, r.err, m.PortalLogs())
	case <-time.After(60 * time.Second):
		t.Fatalf("no notice that the user must answer\n%s", m.PortalLogs())
	}
	// The person at the screen: the dialog's Share button shows, allow
	// remote interaction, then Share.
	if err := op.WaitPixel(dlgShareBG, dlgShareY, 60*time.Second, waylandtest.Blue); err != nil {
		shot := filepath.Join(os.TempDir(), "portal-dialog.png")
		op.SavePNG(shot)
		t.Fatalf("no Remote desktop dialog (screen in %s): %v\n%s", shot, err, m.PortalLogs())
	}
	if err := waitClick(op, dlgSwitchX, dlgSwitchY, dlgSwitchOn, waylandtest.Blue); err != nil {
		t.Fatal(err)
	}
	if err := op.Click(dlgShareX, dlgShareY); err != nil {
		t.Fatal(err)
	}
	var r opened
	select {
	case r = <-got:
	case <-time.After(60 * time.Second):
		t.Fatalf("no session after Share\n%s", m.PortalLogs())
	}
	if r.err != nil {
		t.Fatalf("%v\n%s", r.err, m.PortalLogs())
	}
	scr := r.scr
	defer scr.close()
	if r.name != fmt.Sprintf("portal:%d", m.Pid) {
		t.Fatalf("screen %q, want portal:%d", r.name, m.Pid)
	}
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("a token was stored though RemoteDesktop version 1 hands none: %v", ents)
	}
	mons, err := scr.monitors()
	if err != nil || len(mons) != 1 || mons[0].W != 800 || mons[0].H != 600 {
		t.Fatalf("monitors %+v, %v; want one 800x600", mons, err)
	}

	win, err := waylandtest.OpenFullscreenWindow(m.Socket)
	if err != nil {
		t.Fatalf("test window: %v", err)
	}
	defer win.Close()
	if err := win.Paint(testPattern(100)); err != nil {
		t.Fatal(err)
	}
	want := testPattern(100)
	var why string
	if !waitFor(15*time.Second, func() bool {
		f, err := scr.capture(0, 0, 800, 600)
		if err != nil {
			why = err.Error()
			return false
		}
		for _, p := range [][2]int{{10, 10}, {399, 599}, {400, 0}, {799, 599}, {130, 130}, {163, 163}, {200, 130}} {
			if g, w := pixelAt(f, p[0], p[1]), want(p[0], p[1]); g != w {
				why = fmt.Sprintf("pixel %v = %06x, want %06x", p, g, w)
				return false
			}
		}
		return true
	}) {
		if f, err := scr.capture(0, 0, 800, 600); err == nil {
			dumpPNG(t, f)
		}
		t.Fatalf("the portal's stream does not show the painted pattern: %s", why)
	}

	movePointerAndCheck(t, scr, win, 200, 150)
	for _, down := range []bool{true, false} {
		if err := scr.mouseButton(1, down); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(10*time.Second, func() bool { _, _, b, _ := win.Snapshot(); return len(b) >= 2 }) {
		t.Fatal("no button at the client")
	}
	if _, _, b, _ := win.Snapshot(); b[0] != [2]uint32{0x110, 1} || b[1] != [2]uint32{0x110, 0} {
		t.Fatalf("buttons %v, want left press and release", b)
	}
	// The seat gains a keyboard with the first key (see TestGNOMECaptureInput).
	if !waitFor(15*time.Second, func() bool {
		scr.key(0x10, true, false)
		scr.key(0x10, false, false)
		time.Sleep(200 * time.Millisecond)
		return win.HasKeyboard()
	}) {
		t.Fatal("the client never got a keyboard")
	}
	keys0, _, _, _ := win.Snapshot()
	for _, down := range []bool{true, false} {
		if err := scr.key('B', down, false); err != nil {
			t.Fatal(err)
		}
	}
	var keys []waylandtest.KeyEvent
	if !waitFor(10*time.Second, func() bool {
		k, _, _, _ := win.Snapshot()
		keys = k[len(keys0):]
		for _, e := range keys {
			if e.Code == 48 && !e.Down {
				return true
			}
		}
		return false
	}) {
		t.Fatalf("keys at the client %+v, want KEY_B (48) down and up", keys)
	}
}

// waitClick clicks x, y until its pixel satisfies want (a switch that
// turned on): a click the dialog was not ready for is repeated, one it
// took is not.
func waitClick(op *waylandtest.Operator, x, y, checkX int, want func(r, g, b uint8) bool) error {
	for i := 0; i < 5; i++ {
		if op.WaitPixel(checkX, y, 0, want) == nil {
			return nil
		}
		if err := op.Click(x, y); err != nil {
			return err
		}
		if op.WaitPixel(checkX, y, 5*time.Second, want) == nil {
			return nil
		}
	}
	r, g, b, _ := op.Pixel(checkX, y)
	return fmt.Errorf("clicking %d,%d did not turn it on: %02x%02x%02x", x, y, r, g, b)
}
