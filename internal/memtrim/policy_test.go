package memtrim

import (
	"math"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

func TestGovernedLimit(t *testing.T) {
	const mb = 1 << 20
	for _, tc := range []struct {
		name                             string
		live, nonHeap, gogc, floor, ceil int64
		lean                             bool
		want                             int64
	}{
		{"small heap: the floor, not GOGC's 16 MiB minimum", 1 * mb, 3 * mb, 400, 8 * mb, 32 * mb, false, 8 * mb},
		{"medium heap: GOGC's ratio", 3 * mb, 2 * mb, 400, 8 * mb, 32 * mb, false, 17 * mb},
		{"large heap: the ceiling", 12 * mb, 3 * mb, 400, 8 * mb, 32 * mb, false, 32 * mb},
		{"GOGC=100", 4 * mb, 2 * mb, 100, 8 * mb, 32 * mb, false, 10 * mb},
		{"GOGC=off", 1 * mb, 1 * mb, -1, 8 * mb, 32 * mb, false, 32 * mb},
		{"lean, tiny heap: GOGC=100's 4 MiB minimum, below the floor", 1 * mb, 2 * mb, 400, 8 * mb, 32 * mb, true, 6 * mb},
		{"lean, small heap: twice the live heap", 3 * mb, 2 * mb, 400, 8 * mb, 32 * mb, true, 8 * mb},
		{"lean, large heap: GOGC's ratio as before", 5 * mb, 2 * mb, 400, 8 * mb, 32 * mb, true, 27 * mb},
		{"lean under GOGC=100: nothing changes", 1 * mb, 3 * mb, 100, 8 * mb, 32 * mb, true, 8 * mb},
		{"lean, GOGC=off: the ceiling", 1 * mb, 1 * mb, -1, 8 * mb, 32 * mb, true, 32 * mb},
	} {
		if got := governedLimit(tc.live, tc.nonHeap, tc.gogc, tc.floor, tc.ceil, tc.lean); got != tc.want {
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

// With LeanWhen reporting true, a small heap is paced below the floor (as
// GOGC=100 would pace it); reporting false brings the floor back.
func TestGovernLean(t *testing.T) {
	oldLimit := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(oldLimit)
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	const floor, ceil = 256 << 20, 1 << 30 // far above this test's heap
	g := Govern(floor, ceil)
	defer g.Stop()
	var lean atomic.Bool
	g.LeanWhen(lean.Load)
	waitLimit := func(ok func(int64) bool, what string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			runtime.GC()
			time.Sleep(10 * time.Millisecond) // the finalizer goroutine runs
			l := debug.SetMemoryLimit(-1)
			if ok(l) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("limit %d MiB after collections, want %s", l>>20, what)
			}
		}
	}
	waitLimit(func(l int64) bool { return l == floor }, "the floor")
	lean.Store(true)
	waitLimit(func(l int64) bool { return l < floor }, "below the floor")
	lean.Store(false)
	waitLimit(func(l int64) bool { return l == floor }, "the floor again")
}
