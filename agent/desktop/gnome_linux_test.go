package desktop

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/waylandtest"
)

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

// TestGNOMEMonitors: with two virtual monitors our screen lists both in
// the stage's layout, shows each one's client, reads only the monitors
// the viewer's region covers, and puts the pointer on the monitor under
// it at the right place.
func TestGNOMEMonitors(t *testing.T) {
	m := waylandtest.StartMutterMonitors(t, [2]int{640, 480}, [2]int{800, 600})
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("DISPLAY", "")
	scr, _, err := openGNOME(Options{ProcRoot: onlyProc(t, m.Pid)}, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer scr.close()
	gs := scr.(*gnomeScreen)
	mons, err := scr.monitors()
	if err != nil || len(mons) != 2 {
		t.Fatalf("monitors %+v, %v; want two", mons, err)
	}
	sizes := map[[2]int]bool{{mons[0].W, mons[0].H}: true, {mons[1].W, mons[1].H}: true}
	if !sizes[[2]int{640, 480}] || !sizes[[2]int{800, 600}] || mons[0].X+mons[0].W != mons[1].X || mons[0].Y != 0 || mons[1].Y != 0 {
		t.Fatalf("monitors %+v, want 640x480 and 800x600 side by side, left to right", mons)
	}
	if mons[0].Primary == mons[1].Primary {
		t.Fatalf("monitors %+v, want exactly one primary", mons)
	}
	t.Logf("monitors %+v", mons)
	// A client on each monitor, each with its own picture.
	pats := []func(x, y int) uint32{testPattern(100), func(x, y int) uint32 {
		if y < 300 {
			return 0xffff00
		}
		return 0x00ffff
	}}
	wins := make([]*waylandtest.Window, 2)
	for i, mo := range mons {
		w, err := waylandtest.OpenFullscreenWindowAt(m.Socket, mo.X, mo.Y)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Close)
		if ww, hh := w.Size(); ww != mo.W || hh != mo.H {
			t.Fatalf("window on monitor %d is %dx%d, want %dx%d", mo.ID, ww, hh, mo.W, mo.H)
		}
		if err := w.Paint(pats[i]); err != nil {
			t.Fatal(err)
		}
		wins[i] = w
	}
	check := func(i int) string {
		mo := mons[i]
		f, err := scr.capture(mo.X, mo.Y, mo.W, mo.H)
		if err != nil {
			return err.Error()
		}
		for _, p := range [][2]int{{10, 10}, {130, 130}, {319, 299}, {320, 310}, {mo.W - 1, mo.H - 1}} {
			if got, w := pixelAt(f, p[0], p[1]), pats[i](p[0], p[1]); got != w {
				return fmt.Sprintf("monitor %d pixel %v = %06x, want %06x", mo.ID, p, got, w)
			}
		}
		return ""
	}
	for i := range mons {
		var why string
		if !waitFor(15*time.Second, func() bool { why = check(i); return why == "" }) {
			t.Fatal(why)
		}
	}
	// The viewer picks monitor 2: monitor 1's stream is no longer read.
	gs.focus(mons[1].X, mons[1].Y, mons[1].W, mons[1].H)
	if gs.mons[0].frames != nil || gs.mons[1].frames == nil {
		t.Fatalf("after focusing monitor 2: reading monitor 1 %v, monitor 2 %v", gs.mons[0].frames != nil, gs.mons[1].frames != nil)
	}
	if why := check(1); why != "" {
		t.Fatal(why)
	}
	// Both again (all displays): the whole stage, monitor 1 read again.
	f, err := scr.capture(0, 0, mons[1].X+mons[1].W, max(mons[0].H, mons[1].H))
	if err != nil {
		t.Fatal(err)
	}
	if got := pixelAt(f, mons[1].X+10, 10); got != pats[1](10, 10) {
		t.Fatalf("whole stage at monitor 2's corner: %06x, want %06x", got, pats[1](10, 10))
	}
	if got := pixelAt(f, 10, 10); got != pats[0](10, 10) {
		t.Fatalf("whole stage at monitor 1's corner: %06x, want %06x", got, pats[0](10, 10))
	}
	// Input on each monitor lands on its client, in its coordinates.
	for i, mo := range mons {
		if err := scr.mouseMove(mo.X+37+i, mo.Y+41+i); err != nil {
			t.Fatal(err)
		}
		want := [2]float64{float64(37 + i), float64(41 + i)}
		if !waitFor(10*time.Second, func() bool {
			_, mv, _, _ := wins[i].Snapshot()
			return len(mv) > 0 && mv[len(mv)-1] == want
		}) {
			_, mv, _, _ := wins[i].Snapshot()
			t.Fatalf("pointer on monitor %d: client saw %v, want last %v", mo.ID, mv, want)
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
