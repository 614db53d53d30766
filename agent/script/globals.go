package script

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/meshgo/meshagent/agent/script/gojajson"
)

// install defines the globals every core gets: console, timers, require,
// and the native JSON fast paths.
func (v *vm) install() {
	rt := v.rt
	g := rt.GlobalObject()
	gojajson.Install(v.rt)

	con := rt.NewObject()
	logAt := func(level slog.Level) func(goja.FunctionCall) goja.Value {
		return func(c goja.FunctionCall) goja.Value {
			parts := make([]string, len(c.Arguments))
			for i, a := range c.Arguments {
				parts[i] = v.display(a)
			}
			text := strings.Join(parts, " ")
			v.h.log.Log(nil, level, "script console", "script", v.name, "text", text)
			if v.consoleTo != "" {
				v.sendConsole(v.consoleTo, text)
			}
			return goja.Undefined()
		}
	}
	con.Set("log", logAt(slog.LevelInfo))
	con.Set("info", logAt(slog.LevelInfo))
	con.Set("warn", logAt(slog.LevelWarn))
	con.Set("error", logAt(slog.LevelError))
	con.Set("debug", logAt(slog.LevelDebug))
	g.Set("console", con)

	g.Set("setTimeout", func(c goja.FunctionCall) goja.Value { return v.addTimer(c, false) })
	g.Set("setInterval", func(c goja.FunctionCall) goja.Value { return v.addTimer(c, true) })
	clear := func(c goja.FunctionCall) goja.Value {
		id := c.Argument(0).ToInteger()
		if t, ok := v.timers[id]; ok {
			t.stop()
			delete(v.timers, id)
		}
		return goja.Undefined()
	}
	g.Set("clearTimeout", clear)
	g.Set("clearInterval", clear)
	g.Set("setImmediate", func(c goja.FunctionCall) goja.Value {
		fn, ok := goja.AssertFunction(c.Argument(0))
		if !ok {
			panic(rt.NewTypeError("setImmediate: callback is not a function"))
		}
		args := append([]goja.Value(nil), c.Arguments[min(1, len(c.Arguments)):]...)
		v.immediates = append(v.immediates, func() { v.safeCall(fn, goja.Undefined(), args...) })
		return goja.Undefined()
	})
	g.Set("queueMicrotask", func(c goja.FunctionCall) goja.Value {
		fn, ok := goja.AssertFunction(c.Argument(0))
		if !ok {
			panic(rt.NewTypeError("queueMicrotask: callback is not a function"))
		}
		// Resolved-promise jobs are goja's microtask queue.
		p, resolve, _ := rt.NewPromise()
		then, _ := goja.AssertFunction(rt.ToValue(p).ToObject(rt).Get("then"))
		_, _ = then(rt.ToValue(p), rt.ToValue(func(goja.FunctionCall) goja.Value { v.safeCall(fn, goja.Undefined()); return goja.Undefined() }))
		_ = resolve(nil)
		return goja.Undefined()
	})
	g.Set("require", func(c goja.FunctionCall) goja.Value {
		name := c.Argument(0).String()
		if m, ok := v.modules[name]; ok {
			return m
		}
		mk, ok := nativeModules[name]
		if !ok {
			panic(rt.NewGoError(fmt.Errorf("module %q not found", name)))
		}
		m := mk(v)
		v.modules[name] = m
		return m
	})
}

// display renders a console.log argument: strings as is, the rest as JSON
// (falling back to String() for cycles and functions).
func (v *vm) display(a goja.Value) string {
	if goja.IsString(a) || goja.IsUndefined(a) || goja.IsNull(a) {
		return a.String()
	}
	if o, ok := a.(*goja.Object); ok {
		if _, isFn := goja.AssertFunction(o); !isFn {
			if b, err := gojajson.Stringify(v.rt, a, nil); err == nil {
				return string(b)
			}
		}
	}
	return a.String()
}

func (v *vm) sendConsole(sessionid, text string) {
	b := gojajson.AppendObject(nil, "action", "msg", "type", "console", "value", text, "sessionid", sessionid)
	_ = v.h.cfg.Send(b)
}

// addTimer implements setTimeout/setInterval. The Go timer only posts a job;
// the callback itself runs on the loop.
func (v *vm) addTimer(c goja.FunctionCall, repeat bool) goja.Value {
	fn, ok := goja.AssertFunction(c.Argument(0))
	if !ok {
		panic(v.rt.NewTypeError("timer callback is not a function"))
	}
	ms := c.Argument(1).ToFloat()
	if !(ms >= 1) { // also catches NaN
		ms = 1
	}
	d := time.Duration(ms * float64(time.Millisecond))
	var args []goja.Value
	if len(c.Arguments) > 2 {
		args = append(args, c.Arguments[2:]...)
	}
	return v.rt.ToValue(v.newTimer(c.Argument(0), fn, args, d, d, repeat, nil))
}

// newTimer registers a timer calling fn (the JS value fnVal, for its name)
// after first, then every d when repeat; gate as in jsTimer. It returns
// the id clearTimeout/clearInterval take.
func (v *vm) newTimer(fnVal goja.Value, fn goja.Callable, args []goja.Value, first, d time.Duration, repeat bool, gate func() bool) int64 {
	v.nextTimer++
	id := v.nextTimer
	jt := &jsTimer{fn: fn, args: args, interval: d, repeat: repeat, due: time.Now().Add(first), gate: gate}
	if o, ok := fnVal.(*goja.Object); ok {
		if n := o.Get("name"); n != nil && goja.IsString(n) {
			jt.name = n.String()
		}
	}
	jt.mu.Lock() // tick may run before jt.t is set otherwise (d of 1 ms)
	jt.t = time.AfterFunc(first, func() { jt.tick(v, id) })
	jt.mu.Unlock()
	v.timers[id] = jt
	return id
}

func (v *vm) fire(id int64) {
	jt, ok := v.timers[id]
	if !ok {
		return // cleared after it was queued
	}
	if jt.repeat {
		jt.mu.Lock()
		jt.t.Reset(jt.interval)
		jt.due = time.Now().Add(jt.interval)
		jt.mu.Unlock()
	} else {
		delete(v.timers, id)
	}
	v.safeCall(jt.fn, goja.Undefined(), jt.args...)
}

// promise creates a JS promise settled later from a native goroutine via
// the returned function, which marshals settlement onto the loop. The
// produce callback turns the Go result into a JS value on the loop.
func (v *vm) promise() (*goja.Promise, func(produce func() (any, error))) {
	p, resolve, reject := v.rt.NewPromise()
	v.pending.Add(1)
	return p, func(produce func() (any, error)) {
		v.post(func() {
			v.pending.Add(-1)
			val, err := produce()
			if err != nil {
				_ = reject(v.rt.NewGoError(err))
				return
			}
			_ = resolve(val)
		})
	}
}

// async runs work on a new goroutine and returns a promise of its result.
// toJS converts the result on the loop (nil = rt.ToValue).
func (v *vm) async(work func() (any, error)) goja.Value {
	p, settle := v.promise()
	go func() {
		res, err := work()
		settle(func() (any, error) {
			if err != nil {
				return nil, err
			}
			return toJS(v.rt, res), nil
		})
	}()
	return v.rt.ToValue(p)
}
