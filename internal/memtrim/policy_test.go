package memtrim

import (
	"math"
	"runtime"
	"runtime/debug"
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
	stop := Govern(floor, ceil)
	defer stop()
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
	stop()
	runtime.GC()
	debug.SetMemoryLimit(math.MaxInt64)
	runtime.GC()
	time.Sleep(10 * time.Millisecond)
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 {
		t.Errorf("limit changed to %d after stop", l)
	}
}
