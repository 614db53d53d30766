package memtrim

import (
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"
)

func TestGovernedLimit(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name                             string
		live, nonHeap, gogc, floor, ceil int64
		want                             int64
	}{
		{"small heap: the floor, not GOGC's 16 MiB minimum", 1 * mb, 3 * mb, 400, 8 * mb, 32 * mb, 8 * mb},
		{"medium heap: GOGC's ratio", 3 * mb, 2 * mb, 400, 8 * mb, 32 * mb, 17 * mb},
		{"large heap: the ceiling", 12 * mb, 3 * mb, 400, 8 * mb, 32 * mb, 32 * mb},
		{"GOGC=100", 4 * mb, 2 * mb, 100, 8 * mb, 32 * mb, 10 * mb},
		{"GOGC=off", 1 * mb, 1 * mb, -1, 8 * mb, 32 * mb, 32 * mb},
	} {
		if got := governedLimit(tc.live, tc.nonHeap, tc.gogc, tc.floor, tc.ceil); got != tc.want {
			t.Errorf("%s: %d MiB, want %d MiB", tc.name, got/mb, tc.want/mb)
		}
	}
}

// After a collection the limit follows the (small) live heap of this test
// process: it lands between floor and ceiling and below the ceiling.
func TestGovernFollowsCollections(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	const floor, ceil = 8 << 20, 1 << 30
	g := Govern(floor, ceil)
	defer g.Stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer goroutine runs
		l := debug.SetMemoryLimit(-1)
		if l >= floor && l < ceil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("limit %d after collections, want in [%d, %d)", l, floor, ceil)
		}
	}
	g.Stop()
	runtime.GC()
	debug.SetMemoryLimit(math.MaxInt64)
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("limit changed to %d after stop", l)
	}
}

func TestLeanGOGC(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name       string
		base, live int64
		lean       bool
		want       int64
	}{
		{"busy: the starting GOGC", 400, 1 * mb, false, 400},
		{"quiet, small heap: leanPercent", 400, 1 * mb, true, leanPercent},
		{"quiet, large heap (desktop frames): the starting GOGC", 400, 12 * mb, true, 400},
		{"started at GOGC=50: never raised", 50, 1 * mb, true, 50},
		{"started at GOGC=40: never raised", 40, 1 * mb, true, 40},
		{"started with GOGC=off: left off", -1, 1 * mb, true, -1},
	} {
		if got := leanGOGC(tc.base, tc.live, tc.lean); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// With LeanWhen reporting true, this test's small heap gets leanPercent;
// reporting false brings the starting GOGC back.
func TestGovernLean(t *testing.T) {
	oldLimit := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(oldLimit)
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	g := Govern(8<<20, 1<<30)
	defer g.Stop()
	var lean atomic.Bool
	g.LeanWhen(lean.Load)
	waitGOGC := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			runtime.GC()
			time.Sleep(10 * time.Millisecond) // the finalizer goroutine runs
			s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
			metrics.Read(s)
			got := int(s[0].Value.Uint64())
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GOGC %d after collections, want %d", got, want)
			}
		}
	}
	waitGOGC(400)
	lean.Store(true)
	waitGOGC(leanPercent)
	if l := debug.SetMemoryLimit(-1); l != 1<<30 {
		t.Errorf("lean: limit %d MiB, want the ceiling", l>>20)
	}
	lean.Store(false)
	waitGOGC(400)
}
