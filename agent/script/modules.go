package script

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/meshgo/meshagent/agent/osuser"
	"github.com/meshgo/meshagent/agent/script/gojajson"
	"github.com/meshgo/meshagent/agent/sysinfo"
	"github.com/shirou/gopsutil/v4/process"
)

// nativeModules are created lazily on first require(), so a core that
// never asks for, say, services pays nothing for it (idle memory target).
var nativeModules = map[string]func(*vm) goja.Value{
	"mesh":      modMesh,
	"sysinfo":   modSysinfo,
	"process":   modProcess,
	"services":  modServices,
	"tunnel":    modTunnel,
	"power":     modPower,
	"clipboard": modClipboard,
	"ui":        modUI,
	"fs":        modFS,
	"net":       modNet,
	"sessions":  modSessions,
}

// fn is shorthand for defining a native method.
func fn(o *goja.Object, name string, f func(goja.FunctionCall) goja.Value) { _ = o.Set(name, f) }

func (v *vm) throw(err error) { panic(v.rt.NewGoError(err)) }

func modMesh(v *vm) goja.Value {
	rt := v.rt
	m := rt.NewObject()
	a := v.h.cfg.Agent
	_ = m.Set("version", APIVersion)
	caps := a.Caps
	if caps == 0 {
		caps = 14
	}
	info := map[string]any{"nodeid": a.NodeID, "serverUrl": a.ServerURL, "meshid": a.MeshID,
		"agentId": int64(a.AgentID), "hostname": a.Hostname, "agentVersion": a.Version, "dataDir": a.DataDir,
		"caps": int64(caps), "platform": runtime.GOOS, "arch": runtime.GOARCH, "coreName": v.name,
		"serviceName": a.ServiceName}
	_ = m.Set("info", toJS(rt, info))
	// caps() is the capability bits now (info.caps is those at start).
	fn(m, "caps", func(goja.FunctionCall) goja.Value {
		if a.CapsNow != nil {
			if c := a.CapsNow(); c != 0 {
				return rt.ToValue(int64(c))
			}
		}
		return rt.ToValue(int64(caps))
	})
	settings := map[string]any{}
	for k, s := range a.Settings {
		settings[k] = s
	}
	_ = m.Set("settings", toJS(rt, settings))
	// setSetting(key, value) / deleteSetting(key) change the .msh file,
	// read at the next start.
	setting := func(c goja.FunctionCall, remove bool) goja.Value {
		key, value := c.Argument(0).String(), ""
		if !remove {
			value = c.Argument(1).String()
		}
		if v.h.cfg.SetSetting == nil {
			v.throw(errors.New("this agent's settings cannot be changed from a script"))
		}
		return v.async(func() (any, error) {
			if err := v.h.cfg.SetSetting(key, value, remove); err != nil {
				return nil, err
			}
			return true, nil
		})
	}
	fn(m, "setSetting", func(c goja.FunctionCall) goja.Value { return setting(c, false) })
	fn(m, "deleteSetting", func(c goja.FunctionCall) goja.Value { return setting(c, true) })
	// send(obj|string): obj is serialized natively straight to bytes, never
	// through a JS string. Returns false when not connected.
	fn(m, "send", func(c goja.FunctionCall) goja.Value {
		arg := c.Argument(0)
		var b []byte
		if goja.IsString(arg) {
			b = []byte(arg.String())
		} else {
			var err error
			if b, err = gojajson.Stringify(rt, arg, nil); err != nil {
				v.throw(fmt.Errorf("mesh.send: %w", err))
			}
		}
		return rt.ToValue(v.h.cfg.Send(b) == nil)
	})
	onMsg := func(c goja.FunctionCall) goja.Value {
		f, ok := goja.AssertFunction(c.Argument(len(c.Arguments) - 1))
		if !ok {
			panic(rt.NewTypeError("mesh.on: handler is not a function"))
		}
		v.onMessage = append(v.onMessage, f)
		return goja.Undefined()
	}
	fn(m, "on", func(c goja.FunctionCall) goja.Value {
		if c.Argument(0).String() != "message" {
			panic(rt.NewTypeError("mesh.on: only 'message' events exist"))
		}
		return onMsg(c)
	})
	fn(m, "onMessage", onMsg)
	// consoleTo(sessionid|null): also route console.log to that console
	// session on the server.
	fn(m, "consoleTo", func(c goja.FunctionCall) goja.Value {
		if a := c.Argument(0); goja.IsString(a) {
			v.consoleTo = a.String()
		} else {
			v.consoleTo = ""
		}
		return goja.Undefined()
	})
	fn(m, "log", func(c goja.FunctionCall) goja.Value {
		v.h.log.Info("script", "script", v.name, "text", c.Argument(0).String())
		return goja.Undefined()
	})
	fn(m, "errorlog", func(c goja.FunctionCall) goja.Value {
		v.report(c.Argument(0).String())
		return goja.Undefined()
	})
	fn(m, "memoryUsage", func(goja.FunctionCall) goja.Value {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return toJS(rt, map[string]any{"heapAlloc": float64(ms.HeapAlloc), "sys": float64(ms.Sys), "limit": float64(v.h.cfg.MemoryLimit)})
	})
	// timers() -> [{id, repeat, interval, remaining, name}] for the core's
	// pending setTimeout/setInterval timers, by id; times in ms. It reads
	// the loop's own table (this runs on the loop), so it costs nothing
	// while unused.
	fn(m, "timers", func(goja.FunctionCall) goja.Value {
		now := time.Now()
		ids := make([]int64, 0, len(v.timers))
		for id := range v.timers {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		out := make([]any, 0, len(ids))
		for _, id := range ids {
			jt := v.timers[id]
			jt.mu.Lock() // a gated timer's skipped rounds move due off the loop
			due := jt.due
			jt.mu.Unlock()
			out = append(out, map[string]any{"id": id, "repeat": jt.repeat, "name": jt.name,
				"interval": float64(jt.interval.Milliseconds()), "remaining": float64(max(due.Sub(now), 0).Milliseconds())})
		}
		return toJS(rt, out)
	})
	return m
}

// watchProbes are sysinfo.watch's kinds: each reads host state natively,
// off the loop, and returns it in a form compared for equality.
var watchProbes = map[string]func(v *vm) string{
	"coreinfo": func(v *vm) string {
		ci := sysinfo.GetCoreInfo(context.Background())
		caps := 0
		if f := v.h.cfg.Agent.CapsNow; f != nil {
			caps = f()
		}
		// The whole record, so a field added to CoreInfo (lusers was
		// missed once) counts as a change without touching this probe.
		b, err := jsonBytes(ci)
		if err != nil {
			return "error: " + err.Error()
		}
		return strconv.Itoa(caps) + "\x00" + string(b)
	},
	"netinfo": func(*vm) string {
		ni, err := sysinfo.NetInfo(context.Background())
		if err != nil {
			return "error: " + err.Error()
		}
		b, _ := jsonBytes(ni)
		return string(b)
	},
}

// jsonBytes marshals a Go value for toJS ([]byte is treated as JSON).
func jsonBytes(x any) ([]byte, error) {
	var buf bytes.Buffer
	enc := newJSONEncoder(&buf)
	if err := enc.Encode(x); err != nil {
		return nil, err
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

func modSysinfo(v *vm) goja.Value {
	m := v.rt.NewObject()
	fn(m, "coreInfo", func(goja.FunctionCall) goja.Value {
		return v.async(func() (any, error) { return jsonBytes(sysinfo.GetCoreInfo(context.Background())) })
	})
	fn(m, "netInfo", func(goja.FunctionCall) goja.Value {
		return v.async(func() (any, error) {
			ni, err := sysinfo.NetInfo(context.Background())
			if err != nil {
				return nil, err
			}
			return jsonBytes(ni)
		})
	})
	// watch(kind, ms, cb) is setInterval(cb, ms) for a poll of host state
	// that rarely changes: it reads the state natively, off the loop, right
	// away and then every ms, and calls cb after the first reading and
	// after every reading that differs from the one before. kind
	// "coreinfo" reads what coreInfo() resolves with plus mesh.caps(),
	// "netinfo" what netInfo() resolves with. An idle agent then runs no
	// JS at all between changes: a JS poll every 10 s kept about 2.2 MB of
	// the interpreter's code and tables resident (interop BenchmarkOnline,
	// RssFile). It returns an id for clearInterval; mesh.timers() lists it.
	fn(m, "watch", func(c goja.FunctionCall) goja.Value {
		probe, ok := watchProbes[c.Argument(0).String()]
		if !ok {
			panic(v.rt.NewTypeError("watch: unknown kind %q", c.Argument(0).String()))
		}
		cb, ok := goja.AssertFunction(c.Argument(2))
		if !ok {
			panic(v.rt.NewTypeError("watch: callback is not a function"))
		}
		ms := c.Argument(1).ToFloat()
		if !(ms >= 1) { // also catches NaN
			ms = 1
		}
		// Only the timer's goroutine touches these (one round at a time).
		var last string
		primed := false
		gate := func() bool {
			now := probe(v)
			changed := !primed || now != last
			last, primed = now, true
			return changed
		}
		d := time.Duration(ms * float64(time.Millisecond))
		return v.rt.ToValue(v.newTimer(c.Argument(2), cb, nil, time.Millisecond, d, true, gate))
	})
	// ipLocation(url) asks a public-IP location service (url "" for the
	// default meshcore.js uses) and resolves with its answer.
	fn(m, "ipLocation", func(c goja.FunctionCall) goja.Value {
		u := ""
		if a := c.Argument(0); goja.IsString(a) {
			u = a.String()
		}
		return v.async(func() (any, error) {
			loc, err := sysinfo.IPLocation(context.Background(), u)
			if err != nil {
				return nil, err
			}
			return jsonBytes(loc)
		})
	})
	fn(m, "sysInfo", func(goja.FunctionCall) goja.Value {
		vers := map[string]string{"meshgo": v.h.cfg.Agent.Version, "go": runtime.Version(), "compileTime": buildTime()}
		return v.async(func() (any, error) {
			d, err := sysinfo.SysInfo(context.Background(), vers)
			if err != nil {
				return nil, err
			}
			return jsonBytes(d)
		})
	})
	fn(m, "cpuInfo", func(goja.FunctionCall) goja.Value {
		return v.async(func() (any, error) { return jsonBytes(cpuMemInfo()) })
	})
	return m
}

// maxOutput caps captured command output: a script running `cat /dev/zero`
// must hit this, not the memory watchdog.
const maxOutput = 8 << 20

type capBuf struct {
	bytes.Buffer
	trunc bool
}

func (c *capBuf) Write(p []byte) (int, error) {
	if room := maxOutput - c.Len(); room < len(p) {
		c.trunc = true
		if room > 0 {
			c.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return c.Buffer.Write(p)
}

// runCmd runs one process to completion with a timeout.
func runCmd(file string, args []string, stdin string, timeout time.Duration, dir string) map[string]any {
	return runCmdAs(file, args, stdin, timeout, dir, nil)
}

// runCmdAs is runCmd as another local user (nil: as the agent).
func runCmdAs(file string, args []string, stdin string, timeout time.Duration, dir string, ru *osuser.User) map[string]any {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, file, args...)
	cmd.Dir = dir
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var out, errb capBuf
	cmd.Stdout, cmd.Stderr = &out, &errb
	prepareCmd(cmd)
	var err error
	if ru != nil {
		err = ru.Apply(cmd)
	}
	cmd.WaitDelay = time.Second
	if err == nil {
		err = cmd.Run()
	}
	res := map[string]any{"stdout": out.String(), "stderr": errb.String(), "code": int64(0), "truncated": out.trunc || errb.trunc}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res["code"] = int64(-1)
		res["timedOut"] = true
	case errors.As(err, &ee):
		res["code"] = int64(ee.ExitCode())
	case err != nil:
		res["code"] = int64(-1)
		res["error"] = err.Error()
	}
	return res
}

func optString(o *goja.Object, k string) string {
	if o == nil {
		return ""
	}
	if x := o.Get(k); x != nil && !goja.IsUndefined(x) && !goja.IsNull(x) {
		return x.String()
	}
	return ""
}

func optTimeout(o *goja.Object) time.Duration {
	if o != nil {
		if x := o.Get("timeout"); x != nil && goja.IsNumber(x) && x.ToFloat() > 0 {
			return time.Duration(x.ToFloat() * float64(time.Millisecond))
		}
	}
	return 5 * time.Minute
}

func modProcess(v *vm) goja.Value {
	rt := v.rt
	m := rt.NewObject()
	_ = m.Set("platform", runtime.GOOS)
	_ = m.Set("arch", runtime.GOARCH)
	_ = m.Set("pid", os.Getpid())
	if exe, err := os.Executable(); err == nil {
		_ = m.Set("execPath", exe)
	} else {
		_ = m.Set("execPath", goja.Null())
	}
	// exec(file, args, {timeout, stdin, cwd}) -> Promise<{stdout, stderr, code, timedOut?}>
	fn(m, "exec", func(c goja.FunctionCall) goja.Value {
		file := c.Argument(0).String()
		var args []string
		if a, ok := c.Argument(1).(*goja.Object); ok {
			_ = rt.ExportTo(a, &args)
		}
		opts, _ := c.Argument(2).(*goja.Object)
		stdin, dir, to := optString(opts, "stdin"), optString(opts, "cwd"), optTimeout(opts)
		return v.async(func() (any, error) { return runCmd(file, args, stdin, to, dir), nil })
	})
	// shell(script, {type, timeout, cwd, user}) runs a script through the
	// platform shell: type 'sh' (default on POSIX), 'cmd' (default on
	// Windows) or 'powershell'. The script is fed on stdin, as the C agent
	// does. user (a name or numeric uid) runs it as that local account;
	// it throws, never runs as the agent instead, when that is impossible.
	fn(m, "shell", func(c goja.FunctionCall) goja.Value {
		script := c.Argument(0).String()
		opts, _ := c.Argument(1).(*goja.Object)
		kind, to, dir := optString(opts, "type"), optTimeout(opts), optString(opts, "cwd")
		var ru *osuser.User
		var runAs string
		if opts != nil {
			if x := opts.Get("user"); x != nil && !goja.IsUndefined(x) && !goja.IsNull(x) {
				spec := x.String()
				if goja.IsNumber(x) {
					spec = strconv.FormatInt(x.ToInteger(), 10)
				}
				var err error
				if v.h.cfg.RunAsUser != nil {
					runAs = spec
				} else if ru, err = lookupRunUser(spec); err != nil {
					v.throw(err)
				}
			}
		}
		file, args, stdin, err := shellCommand(kind, script)
		if err != nil {
			v.throw(err)
		}
		if runAs != "" {
			run := v.h.cfg.RunAsUser
			return v.async(func() (any, error) {
				ctx, cancel := context.WithTimeout(context.Background(), to+10*time.Second)
				defer cancel()
				r, err := run(ctx, UserCommand{User: runAs, File: file, Args: args, Stdin: stdin, Dir: dir, Timeout: to})
				if err != nil {
					return nil, fmt.Errorf("run as user: %w", err)
				}
				return map[string]any{"stdout": r.Stdout, "stderr": r.Stderr, "code": int64(r.Code), "truncated": r.Truncated, "timedOut": r.TimedOut}, nil
			})
		}
		return v.async(func() (any, error) { return runCmdAs(file, args, stdin, to, dir, ru), nil })
	})
	// consoleUser() -> Promise<{name, uid}|null>: the logged-in console
	// user runcommands' runAsUser means; rejects where commands cannot
	// run as another user (Windows).
	fn(m, "consoleUser", func(goja.FunctionCall) goja.Value {
		detect := v.h.cfg.ConsoleUser
		if detect == nil {
			detect = consoleUserName
		}
		return v.async(func() (any, error) {
			name, err := detect()
			if err != nil || name == "" {
				return nil, err
			}
			u, err := osuser.Lookup(name)
			if errors.Is(err, osuser.ErrNoSuchUser) {
				return nil, nil // a login record for an account that is gone
			} else if err != nil {
				return nil, err
			}
			uid, _ := strconv.ParseInt(u.UID, 10, 64)
			return map[string]any{"name": u.Name, "uid": uid}, nil
		})
	})
	// list() -> Promise<[{pid, cmd, user, path}]>
	fn(m, "list", func(goja.FunctionCall) goja.Value {
		return v.async(func() (any, error) { return psList() })
	})
	// info(pid) -> Promise<{processName, cmd, processUser, startTime,
	// workingSet, ...}> (psinfo.go).
	fn(m, "info", func(c goja.FunctionCall) goja.Value {
		pid := int32(c.Argument(0).ToInteger())
		return v.async(func() (any, error) { return psInfo(pid) })
	})
	fn(m, "kill", func(c goja.FunctionCall) goja.Value {
		pid := int32(c.Argument(0).ToInteger())
		return v.async(func() (any, error) {
			if pid <= 0 || int(pid) == os.Getpid() {
				return nil, fmt.Errorf("refusing to kill pid %d", pid)
			}
			p, err := process.NewProcess(pid)
			if err != nil {
				return nil, fmt.Errorf("kill %d: %w", pid, err)
			}
			if err := p.Kill(); err != nil {
				return nil, fmt.Errorf("kill %d: %w", pid, err)
			}
			return true, nil
		})
	})
	// hrtime() -> monotonic nanoseconds (a Number), for measuring.
	start := time.Now()
	fn(m, "hrtime", func(goja.FunctionCall) goja.Value { return rt.ToValue(float64(time.Since(start).Nanoseconds())) })
	// cpuUsage() -> {user, system} CPU time of the agent process in µs
	// (includes GC and native goroutines), like Node's process.cpuUsage.
	fn(m, "cpuUsage", func(goja.FunctionCall) goja.Value {
		u, s := cpuUsage()
		return toJS(rt, map[string]any{"user": u, "system": s})
	})
	fn(m, "env", func(c goja.FunctionCall) goja.Value { return rt.ToValue(os.Getenv(c.Argument(0).String())) })
	// fdCount() -> open file descriptors of the agent process (Linux);
	// throws "not supported on <os>" elsewhere.
	fn(m, "fdCount", func(goja.FunctionCall) goja.Value {
		n, err := fdCount()
		if err != nil {
			v.throw(err)
		}
		return rt.ToValue(n)
	})
	return m
}

func psList() ([]byte, error) {
	ps, err := process.Processes()
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	out := make([]map[string]any, 0, len(ps))
	for _, p := range ps {
		name, _ := p.Name()
		e := map[string]any{"pid": p.Pid, "cmd": name}
		if u, err := p.Username(); err == nil {
			e["user"] = u
		}
		if exe, err := p.Exe(); err == nil {
			e["path"] = exe
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["pid"].(int32) < out[j]["pid"].(int32) })
	return jsonBytes(out)
}

func modServices(v *vm) goja.Value {
	m := v.rt.NewObject()
	_ = m.Set("supported", servicesSupported)
	fn(m, "list", func(goja.FunctionCall) goja.Value {
		return v.async(func() (any, error) {
			l, err := listServices()
			if err != nil {
				return nil, err
			}
			return jsonBytes(l)
		})
	})
	fn(m, "control", func(c goja.FunctionCall) goja.Value {
		name, action := c.Argument(0).String(), c.Argument(1).String()
		return v.async(func() (any, error) {
			if err := validServiceName(name); err != nil {
				return nil, err
			}
			return true, controlService(name, action)
		})
	})
	// details(name) -> Promise<{name, displayName, status, startType,
	// failureActions, installedDate, user}> (servicedetail.go).
	fn(m, "details", func(c goja.FunctionCall) goja.Value {
		name := c.Argument(0).String()
		return v.async(func() (any, error) {
			d, err := serviceDetails(name)
			if err != nil {
				return nil, err
			}
			return jsonBytes(d)
		})
	})
	// uninstallSelf() starts the removal of the agent's own service, in a
	// process of its own that outlives this one, and resolves once started.
	fn(m, "uninstallSelf", func(goja.FunctionCall) goja.Value {
		if v.h.cfg.Uninstall == nil {
			v.throw(errors.New("this agent cannot uninstall itself"))
		}
		return v.async(func() (any, error) { return true, v.h.cfg.Uninstall() })
	})
	// restartSelf(name) asks the service manager to restart the agent's own
	// service without waiting for it: the agent is stopped on the way.
	fn(m, "restartSelf", func(c goja.FunctionCall) goja.Value {
		name := c.Argument(0).String()
		return v.async(func() (any, error) {
			if err := validServiceName(name); err != nil {
				return nil, err
			}
			return true, restartSelf(name)
		})
	})
	return m
}

func modTunnel(v *vm) goja.Value {
	m := v.rt.NewObject()
	// open(request): request is the server's msg/tunnel object (or its
	// JSON text); it is passed to the native relay client as JSON bytes.
	fn(m, "open", func(c goja.FunctionCall) goja.Value {
		if v.h.cfg.OpenTunnel == nil {
			v.throw(errors.New("tunnels are not available in this agent"))
		}
		arg := c.Argument(0)
		var b []byte
		if goja.IsString(arg) {
			b = []byte(arg.String())
		} else {
			var err error
			if b, err = gojajson.Stringify(v.rt, arg, nil); err != nil {
				v.throw(fmt.Errorf("tunnel.open: %w", err))
			}
		}
		if err := v.h.cfg.OpenTunnel(b); err != nil {
			v.throw(fmt.Errorf("tunnel.open: %w", err))
		}
		return goja.Undefined()
	})
	// list() -> [{id, protocol, kind, userid, username, remoteaddr,
	// started, age}] for the relay sessions open now (times in ms).
	fn(m, "list", func(goja.FunctionCall) goja.Value {
		if v.h.cfg.Tunnels == nil {
			v.throw(errors.New("tunnel listing is not available in this agent"))
		}
		now := time.Now()
		ts := v.h.cfg.Tunnels()
		out := make([]any, 0, len(ts))
		for _, t := range ts {
			out = append(out, map[string]any{"id": t.ID, "protocol": t.Protocol, "kind": t.Kind,
				"userid": t.UserID, "username": t.Username, "remoteaddr": t.RemoteAddr,
				"started": float64(t.Started.UnixMilli()), "age": float64(max(now.Sub(t.Started), 0).Milliseconds())})
		}
		return toJS(v.rt, out)
	})
	return m
}

func modPower(v *vm) goja.Value {
	m := v.rt.NewObject()
	_ = m.Set("enabled", v.h.cfg.PowerAction != nil)
	fn(m, "action", func(c goja.FunctionCall) goja.Value {
		n := int(c.Argument(0).ToInteger())
		if v.h.cfg.PowerAction == nil {
			v.throw(errors.New("power actions are disabled in this agent"))
		}
		return v.async(func() (any, error) { return true, v.h.cfg.PowerAction(n) })
	})
	return m
}

func modClipboard(v *vm) goja.Value {
	m := v.rt.NewObject()
	fn(m, "get", func(goja.FunctionCall) goja.Value {
		return v.async(func() (any, error) {
			if cb := v.h.cfg.Clipboard; cb != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				return cb.Read(ctx)
			}
			return clipboardGet()
		})
	})
	fn(m, "set", func(c goja.FunctionCall) goja.Value {
		text := c.Argument(0).String()
		return v.async(func() (any, error) {
			if cb := v.h.cfg.Clipboard; cb != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				return true, cb.Write(ctx, text)
			}
			return true, clipboardSet(text)
		})
	})
	return m
}

func modUI(v *vm) goja.Value {
	m := v.rt.NewObject()
	// toast(title, msg) -> Promise<bool>: false when no UI is reachable
	// (service on a headless host); the core then logs instead.
	fn(m, "toast", func(c goja.FunctionCall) goja.Value {
		title, msg := c.Argument(0).String(), c.Argument(1).String()
		return v.async(func() (any, error) { return v.notify("toast", title, msg), nil })
	})
	// openUrl(url) -> Promise: opens an http(s) URL in the logged-in
	// console user's desktop session (openurl_*.go); rejects with the
	// reason when there is none or it cannot be reached.
	fn(m, "openUrl", func(c goja.FunctionCall) goja.Value {
		u := c.Argument(0).String()
		detect := v.h.cfg.ConsoleUser
		if detect == nil {
			detect = consoleUserName
		}
		return v.async(func() (any, error) { return true, openURLAs(u, detect) })
	})
	// toggleBackground() -> Promise<string>: removes the console user's
	// desktop background ("") or puts the removed one back (its URI).
	fn(m, "toggleBackground", func(c goja.FunctionCall) goja.Value {
		detect := v.h.cfg.ConsoleUser
		if detect == nil {
			detect = consoleUserName
		}
		return v.async(func() (any, error) { return toggleBackground(detect) })
	})
	fn(m, "messageBox", func(c goja.FunctionCall) goja.Value {
		title, msg := c.Argument(0).String(), c.Argument(1).String()
		return v.async(func() (any, error) { return v.notify("messagebox", title, msg), nil })
	})
	return m
}

// notify shows a notice through Config.Notify, else the platform's tools.
func (v *vm) notify(kind, title, msg string) bool {
	if f := v.h.cfg.Notify; f != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		return f(ctx, kind, title, msg)
	}
	return notify(title, msg)
}

// modSessions lists the machine's login sessions for the web UI's desktop
// session picker: list() -> Promise<object>, the userSessions reply data
// (osuser.UserSessionsReply: keyed by session id, Active and Connected
// sessions only).
func modSessions(v *vm) goja.Value {
	m := v.rt.NewObject()
	fn(m, "list", func(goja.FunctionCall) goja.Value {
		return v.async(func() (any, error) {
			l, err := osuser.Sessions()
			if err != nil {
				return nil, err
			}
			out := map[string]any{}
			for k, e := range osuser.UserSessionsReply(l) {
				out[k] = e
			}
			return out, nil
		})
	})
	return m
}

// fileEntry is what fs.readdir and fs.stat report about a file.
func fileEntry(fi os.FileInfo) map[string]any {
	return map[string]any{"name": fi.Name(), "dir": fi.IsDir(), "size": fi.Size(), "mtime": fi.ModTime().UnixMilli()}
}

func modFS(v *vm) goja.Value {
	m := v.rt.NewObject()
	// readdir(path) -> Promise<[{name, dir, size, mtime}]>
	fn(m, "readdir", func(c goja.FunctionCall) goja.Value {
		p := c.Argument(0).String()
		return v.async(func() (any, error) {
			ents, err := os.ReadDir(p)
			if err != nil {
				return nil, fmt.Errorf("readdir: %w", err)
			}
			out := make([]map[string]any, 0, len(ents))
			for _, e := range ents {
				if fi, err := e.Info(); err == nil {
					out = append(out, fileEntry(fi))
				} else {
					out = append(out, map[string]any{"name": e.Name(), "dir": e.IsDir()})
				}
			}
			return jsonBytes(out)
		})
	})
	// stat(path) -> Promise<{name, dir, size, mtime}> (follows symlinks).
	fn(m, "stat", func(c goja.FunctionCall) goja.Value {
		p := c.Argument(0).String()
		return v.async(func() (any, error) {
			fi, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("stat: %w", err)
			}
			return fileEntry(fi), nil
		})
	})
	// readText(path, maxBytes) -> Promise<{text, size, truncated}>: the
	// first maxBytes (default 64 KiB, at most 1 MiB) of a regular file as
	// UTF-8 text. Directories, devices and pipes are refused.
	fn(m, "readText", func(c goja.FunctionCall) goja.Value {
		p := c.Argument(0).String()
		n := int64(defaultReadText)
		if a := c.Argument(1); goja.IsNumber(a) && a.ToFloat() >= 1 {
			n = min(int64(a.ToFloat()), maxReadText)
		}
		return v.async(func() (any, error) { return readText(p, n) })
	})
	fn(m, "join", func(c goja.FunctionCall) goja.Value {
		parts := make([]string, len(c.Arguments))
		for i, a := range c.Arguments {
			parts[i] = a.String()
		}
		return v.rt.ToValue(filepath.Join(parts...))
	})
	return m
}

func modNet(v *vm) goja.Value {
	m := v.rt.NewObject()
	// wakeOnLan(macs) -> Promise<number of packets sent>
	fn(m, "wakeOnLan", func(c goja.FunctionCall) goja.Value {
		var macs []string
		_ = v.rt.ExportTo(c.Argument(0), &macs)
		return v.async(func() (any, error) { return wakeOnLAN(macs) })
	})
	return m
}
