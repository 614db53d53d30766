package memtrim

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// Govern keeps the Go runtime's memory between floor and ceiling bytes
// while letting GOGC's ratio decide above the floor. It is for a process
// that runs with a high GOGC (the agent's 400, for goja) but mostly holds a
// small live heap: GOGC alone then lets the heap grow to at least
// 4 MiB × GOGC/100 (16 MiB at 400) before the first collection, and during
// a file transfer that headroom, refilled with garbage, was most of the
// agent's peak RSS. After every collection Govern sets the soft memory
// limit to what GOGC would allow for the live heap plus the runtime's own
// memory, clamped to [floor, ceiling]: a small heap is collected early, a
// large one (a desktop session's frames) keeps GOGC's pacing, so the limit
// never makes the collector run more often than GOGC would for the heap it
// holds, up to the ceiling (the fixed soft limit the agent had before).
// Stop ends it and leaves the last limit in place.
func Govern(floor, ceiling int64) *Governor {
	g := &Governor{floor: floor, ceiling: ceiling}
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	g.baseGOGC = -1
	if s[0].Value.Kind() == metrics.KindUint64 {
		g.baseGOGC = int64(s[0].Value.Uint64())
	}
	g.curGOGC = g.baseGOGC
	debug.SetMemoryLimit(ceiling) // until the first collection measures
	g.arm()
	return g
}

// Governor is a running Govern policy.
type Governor struct {
	floor, ceiling int64
	stopped        atomic.Bool
	lean           atomic.Pointer[func() bool]
	samples        []metrics.Sample
	// baseGOGC is the GOGC in force when Govern started; curGOGC is what
	// adjust last set (only adjust, on the finalizer goroutine, uses them).
	baseGOGC, curGOGC int64
}

// Stop ends the policy; the last limit stays in place.
func (g *Governor) Stop() { g.stopped.Store(true) }

// LeanWhen makes the policy set GOGC=leanPercent for a small heap whenever
// lean reports true, and put the starting GOGC and the governed limit back
// when it reports false. The high GOGC only pays while the script runtime is
// busy (goja's allocation-heavy turns); the rest of the time, a file
// transfer's garbage in GOGC=400's headroom was 3-4 MB of the agent's peak
// RSS (interop BenchmarkSessions, download RssAnon 11.3-11.9 MB, 7.9 MB
// lean at GOGC=100, for 0.1-0.2 s more agent CPU per 50 MiB). While lean there is no
// soft limit below the ceiling: a limit near the live heap leaves no room
// for the runtime's free and fragmented pages, and the collector then ran
// every few milliseconds (10x the CPU per transfer, measured). lean is
// called once per collection, from the finalizer goroutine; it must be
// cheap and safe for concurrent use. A large live heap (a desktop
// session) keeps the starting GOGC either way.
func (g *Governor) LeanWhen(lean func() bool) { g.lean.Store(&lean) }

// sentinel is collected once per GC cycle; its finalizer re-arms itself.
// It holds a pointer so the tiny allocator never batches it with others.
type sentinel struct{ g *Governor }

func (g *Governor) arm() {
	s := &sentinel{g: g}
	runtime.SetFinalizer(s, func(s *sentinel) {
		if s.g.stopped.Load() {
			return
		}
		s.g.adjust()
		s.g.arm()
	})
}

var governorMetrics = []string{
	"/gc/heap/live:bytes",
	"/gc/gogc:percent",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/released:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/unused:bytes",
	"/memory/classes/heap/free:bytes",
}

func (g *Governor) adjust() {
	if g.samples == nil {
		g.samples = make([]metrics.Sample, len(governorMetrics))
		for i, n := range governorMetrics {
			g.samples[i].Name = n
		}
	}
	metrics.Read(g.samples)
	v := make([]int64, len(g.samples))
	for i, s := range g.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return // a runtime without these metrics: keep the ceiling
		}
		v[i] = int64(s.Value.Uint64())
	}
	live, gogc := v[0], v[1]
	nonHeap := v[2] - v[3] - v[4] - v[5] - v[6]
	lean := false
	if f := g.lean.Load(); f != nil {
		lean = (*f)()
	}
	if want := leanGOGC(g.baseGOGC, live, lean); want != g.curGOGC && g.curGOGC == gogc {
		// (g.curGOGC != gogc: someone else changed GOGC; leave it alone.)
		debug.SetGCPercent(int(want))
		g.curGOGC, gogc = want, want
	}
	if g.curGOGC != g.baseGOGC {
		// Lean: leanPercent paces the heap by itself (see LeanWhen).
		debug.SetMemoryLimit(g.ceiling)
		return
	}
	debug.SetMemoryLimit(governedLimit(live, nonHeap, gogc, g.floor, g.ceiling))
}

// governedLimit is the soft limit for a live heap and the runtime's other
// memory (stacks, metadata) under GOGC: what GOGC's goal would need,
// clamped to [floor, ceiling]. GOGC=off (negative) means the ceiling.
func governedLimit(live, nonHeap, gogc, floor, ceiling int64) int64 {
	if gogc < 0 {
		return ceiling
	}
	return min(max(nonHeap+live+live*gogc/100, floor), ceiling)
}

// leanGOGC is the GOGC for a live heap: leanPercent while lean and the
// heap is below leanMaxLive, when the starting GOGC is higher; the
// starting GOGC otherwise.
func leanGOGC(base, live int64, lean bool) int64 {
	if lean && base > leanPercent && live < leanMaxLive {
		return leanPercent
	}
	return base
}

// leanPercent is the GOGC of lean pacing. 50 rather than 100 halves the
// heap's minimum goal (4 MiB × GOGC/100) for the small heap an agent holds
// while the script runtime is quiet: peak RssAnon during a 50 MiB download
// through the relay 6.5-6.8 MB against 7.5-8.1 at 100, for agent CPU per
// 50 MiB within the runs' noise (0.25-0.37 s against 0.19-0.35 s; interop
// BenchmarkSessions, release build, two runs each, machine loaded); 25 kept
// RssAnon at 6.6-6.8 MB, no lower. A download makes about 2 MB of garbage
// per 50 MiB since block acks skip the request parser.
const leanPercent = 50

// leanMaxLive is the largest live heap LeanWhen paces at leanPercent.
const leanMaxLive = 4 << 20
