package script

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dop251/goja"
	"github.com/meshgo/meshagent/agent/script/gojajson"
)

var (
	errStopped    = errors.New("script stopped")
	errTurnBudget = errors.New("event-loop turn exceeded its time budget")
	errMemory     = errors.New("heap above the script memory limit")
)

// program is a compiled script; compiling once lets restarts skip parsing.
type program struct{ p *goja.Program }

func compile(name string, src []byte) (*program, error) {
	p, err := goja.Compile(name, string(src), false)
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	return &program{p}, nil
}

// vm is one runtime instance and its event loop. All goja calls happen on
// the loop goroutine; other goroutines reach it through post.
type vm struct {
	h     *Host
	gen   uint64
	name  string
	prog  *program
	rt    *goja.Runtime
	inbox chan []byte
	jobs  chan func()
	quit  chan struct{}
	done  chan struct{}

	killOnce   sync.Once
	killReason atomic.Value // error

	// turn bookkeeping for the budget timer (see turn).
	turnMu  sync.Mutex
	turnSeq uint64
	inTurn  bool
	// turnWake starts the memory watchdog's polling (see watchMemory).
	turnWake     chan struct{}
	lastMemCheck atomic.Int64 // unix ns of the last heap read

	timers     map[int64]*jsTimer
	nextTimer  int64
	immediates []func()
	modules    map[string]goja.Value
	onMessage  []goja.Callable
	consoleTo  string // sessionid that receives console.log, "" = none
	pending    atomic.Int64
}

type jsTimer struct {
	t        *time.Timer
	fn       goja.Callable
	args     []goja.Value
	interval time.Duration
	repeat   bool
	due      time.Time // when the Go timer fires next (mesh.timers)
	name     string    // the callback's name, "" when anonymous
	// gate, when set, runs on the timer's goroutine before the callback is
	// queued; false skips this round without entering the runtime (see
	// sysinfo.watch). mu and stopped keep a skipped round from re-arming a
	// timer that was cleared meanwhile.
	gate    func() bool
	mu      sync.Mutex
	stopped bool
}

// stop ends the timer for good (clearTimeout, the runtime's exit).
func (jt *jsTimer) stop() {
	jt.mu.Lock()
	jt.stopped = true
	jt.mu.Unlock()
	jt.t.Stop()
}

// tick is the Go timer's function: it queues the callback unless the
// gate says this round has nothing new, in which case it re-arms itself.
func (jt *jsTimer) tick(v *vm, id int64) {
	if jt.gate != nil && !jt.gate() {
		jt.mu.Lock()
		if !jt.stopped {
			jt.t.Reset(jt.interval)
			jt.due = time.Now().Add(jt.interval)
		}
		jt.mu.Unlock()
		return
	}
	v.post(func() { v.fire(id) })
}

func newVM(h *Host, gen uint64, name string, prog *program) *vm {
	// The runtime is created here, before the loop goroutine starts, so
	// kill (any goroutine) can always reach it for Interrupt.
	rt := goja.New()
	rt.SetMaxCallStackSize(2000)
	return &vm{h: h, gen: gen, name: name, prog: prog, rt: rt,
		inbox: make(chan []byte, inboxSize), jobs: make(chan func(), 256), turnWake: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{}),
		timers: map[int64]*jsTimer{}, modules: map[string]goja.Value{}}
}

// kill ends the vm: it interrupts running JS and stops the loop.
func (v *vm) kill(reason error) {
	v.killOnce.Do(func() {
		v.killReason.Store(reason)
		close(v.quit)
		v.rt.Interrupt(reason)
	})
}

func (v *vm) wait() { <-v.done }

// post runs f on the loop goroutine. It returns false once the vm is gone
// (f will not run). It may block briefly when the loop is saturated, which
// gives native producers back-pressure.
func (v *vm) post(f func()) bool {
	select {
	case v.jobs <- f:
		return true
	case <-v.quit:
		return false
	}
}

// run is the vm goroutine: set up, run the script, then the event loop.
func (v *vm) run() {
	start := time.Now()
	var reason error
	defer func() {
		if r := recover(); r != nil {
			reason = fmt.Errorf("panic in script host: %v", r)
		}
		for _, t := range v.timers {
			t.stop()
		}
		v.timers = nil
		close(v.done)
		v.kill(errStopped) // release anyone blocked in post
		if reason != nil && !errors.Is(reason, errStopped) {
			// The killed runtime may hold most of the heap (memory bomb);
			// give it back to the OS before restarting.
			debug.FreeOSMemory()
		}
		v.h.exited(v, reason, time.Since(start))
	}()
	select {
	case <-v.quit: // killed before the runtime existed
		return
	default:
	}
	stopWatch := v.watchMemory()
	defer stopWatch()
	v.install()
	if err := v.turn(func() error { _, err := v.rt.RunProgram(v.prog.p); return err }); err != nil {
		reason = err
		return
	}
	reason = v.loop()
}

// loop dispatches jobs, messages and immediates until killed.
func (v *vm) loop() error {
	for {
		for len(v.immediates) > 0 {
			f := v.immediates[0]
			v.immediates = v.immediates[1:]
			if err := v.callbackTurn(f); err != nil {
				return err
			}
		}
		select {
		case <-v.quit:
			return v.killReason.Load().(error)
		case f := <-v.jobs:
			if err := v.callbackTurn(f); err != nil {
				return err
			}
		case m := <-v.inbox:
			if err := v.callbackTurn(func() { v.dispatch(m) }); err != nil {
				return err
			}
		}
	}
}

// callbackTurn runs one turn whose JS exceptions are reported but not
// fatal. Only a kill (memory, stop) ends the loop.
func (v *vm) callbackTurn(f func()) error {
	err := v.turn(func() error { f(); return nil })
	if err == nil {
		return nil
	}
	var ie *goja.InterruptedError
	if errors.As(err, &ie) && errors.Is(err, errTurnBudget) {
		v.report(fmt.Sprintf("core %s: %v", v.name, errTurnBudget))
		return nil
	}
	if r, _ := v.killReason.Load().(error); r != nil {
		return r
	}
	v.report(fmt.Sprintf("core %s: %v", v.name, err))
	return nil
}

// turn runs f with the per-turn time budget armed. JS exceptions thrown
// out of f (as panics from goja calls) come back as errors.
func (v *vm) turn(f func() error) (err error) {
	v.turnMu.Lock()
	v.turnSeq++
	seq := v.turnSeq
	v.inTurn = true
	v.turnMu.Unlock()
	v.h.turning.Add(1)
	select {
	case v.turnWake <- struct{}{}:
	default:
	}
	t := time.AfterFunc(v.h.cfg.TurnBudget, func() {
		v.turnMu.Lock()
		defer v.turnMu.Unlock()
		if v.inTurn && v.turnSeq == seq {
			v.rt.Interrupt(errTurnBudget)
		}
	})
	defer func() {
		t.Stop()
		v.turnMu.Lock()
		v.inTurn = false
		v.turnMu.Unlock()
		v.h.lastTurn.Store(time.Now().UnixNano())
		v.h.turning.Add(-1)
		if r := recover(); r != nil {
			if e, ok := r.(error); ok {
				err = e
			} else {
				err = fmt.Errorf("%v", r)
			}
		}
		if err != nil {
			if r, _ := v.killReason.Load().(error); r != nil {
				err = fmt.Errorf("%w (%v)", r, err)
				return
			}
		}
		// A budget interrupt that raced the end of the turn must not leak
		// into the next one.
		v.rt.ClearInterrupt()
		if time.Now().UnixNano()-v.lastMemCheck.Load() > int64(memPoll) && v.overLimit() {
			v.kill(errMemory)
			err = errMemory
		}
	}()
	return f()
}

// report logs a script error and sends it to the server's error log.
func (v *vm) report(text string) {
	v.h.log.Warn("script error", "script", v.name, "err", text)
	v.h.reportError(text)
}

// watchMemory bounds the runtime's heap. goja has no allocation hook, so
// the heap (runtime/metrics, about a microsecond per read) is polled every
// 25 ms, but only while a turn is running: an idle agent must not wake up
// 40 times a second. Growth spread over many short turns is caught by the
// check at the end of a turn (see overLimit in turn).
func (v *vm) watchMemory() func() {
	stop := make(chan struct{})
	go func() {
		tk := time.NewTicker(memPoll)
		tk.Stop()
		for {
			select { // idle: wait for a turn to start
			case <-stop:
				return
			case <-v.quit:
				return
			case <-v.turnWake:
			}
			tk.Reset(memPoll)
		poll:
			for {
				select {
				case <-stop:
					tk.Stop()
					return
				case <-v.quit:
					tk.Stop()
					return
				case <-tk.C:
					if v.overLimit() {
						v.kill(errMemory)
						tk.Stop()
						return
					}
					v.turnMu.Lock()
					busy := v.inTurn
					v.turnMu.Unlock()
					if !busy {
						tk.Stop()
						break poll
					}
				}
			}
		}
	}()
	return func() { close(stop) }
}

const memPoll = 25 * time.Millisecond

// overLimit reports whether the heap exceeds the limit. The cheap reading
// counts objects the collector has not yet freed, so garbage alone (left
// by anything in the process, not only this script) can cross the limit:
// before a script is killed, a collection confirms it is live memory.
func (v *vm) overLimit() bool {
	v.lastMemCheck.Store(time.Now().UnixNano())
	if heapObjects() <= v.h.cfg.MemoryLimit {
		return false
	}
	if h := liveAfterCollection(); h > v.h.cfg.MemoryLimit {
		v.h.log.Error("script memory limit exceeded", "script", v.name, "heap", h, "limit", v.h.cfg.MemoryLimit)
		return true
	}
	return false
}

// heapObjects is the bytes of heap objects, live or not yet swept.
func heapObjects() uint64 {
	return readMetric("/memory/classes/heap/objects:bytes")
}

// liveAfterCollection forces a collection and returns the heap its mark
// found live. It returns once that mark is done, not after runtime.GC's
// sweep: the watchdog checks while the script still runs, and runtime.GC
// sweeps span by span with a yield to the running goroutines after each,
// so with the CPU contended (GOMAXPROCS 1, a loaded machine) a script
// allocating in a tight loop got a time slice per span: the confirmation
// took up to 8.6 s on a loaded 2-CPU machine (1-90 ms for the mark alone)
// while the heap grew to twice the limit before the kill. The mark is the
// same confirmation: it finds what is live, plus what is allocated while
// it marks.
func liveAfterCollection() uint64 {
	// runtime.GC's cycle counts as forced once its mark is done. A forced
	// cycle already under way may end first: its figure can only be lower
	// (older), and the next check, 25 ms on, forces another.
	forced := readMetric("/gc/cycles/forced:gc-cycles")
	done := make(chan struct{})
	go func() { runtime.GC(); close(done) }()
	for readMetric("/gc/cycles/forced:gc-cycles") == forced {
		select {
		case <-done: // the sweep finished before the poll saw the count
		case <-time.After(time.Millisecond):
			continue
		}
		break
	}
	return readMetric("/gc/heap/live:bytes")
}

// readMetric reads one uint64 runtime metric (about a microsecond).
func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// dispatch hands one server message to the script's message handlers.
func (v *vm) dispatch(m []byte) {
	if len(v.onMessage) == 0 {
		return
	}
	val, err := gojajson.Parse(v.rt, m)
	if err != nil {
		v.h.log.Warn("bad JSON from server", "err", err)
		return
	}
	for _, fn := range v.onMessage {
		v.safeCall(fn, goja.Undefined(), val)
	}
}

// safeCall calls a JS callback; its exception is reported and swallowed so
// one faulty handler does not stop the others. Interrupts propagate.
func (v *vm) safeCall(fn goja.Callable, this goja.Value, args ...goja.Value) goja.Value {
	r, err := fn(this, args...)
	if err != nil {
		var ie *goja.InterruptedError
		if errors.As(err, &ie) {
			panic(err)
		}
		v.report(fmt.Sprintf("core %s: uncaught exception: %v", v.name, err))
		return goja.Undefined()
	}
	return r
}

// appendErrorLog builds {"action":"errorlog","log":[{"t":ms,"m":text}]},
// the shape the server accepts (control.md 6.3: last entry has numeric t).
func appendErrorLog(b []byte, text string, now time.Time) []byte {
	type entry struct {
		T int64  `json:"t"`
		M string `json:"m"`
	}
	out, _ := json.Marshal(struct {
		Action string  `json:"action"`
		Log    []entry `json:"log"`
	}{"errorlog", []entry{{now.UnixMilli(), clipText(text, 4000)}}})
	return append(b, out...)
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "")
}
