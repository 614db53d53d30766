package script

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/winetest"
	"github.com/meshgo/meshagent/scripts"
)

// capture is the fake Send: it records every JSON object the core sends.
type capture struct {
	mu   sync.Mutex
	msgs []map[string]any
	ch   chan struct{}
}

func newCapture() *capture { return &capture{ch: make(chan struct{}, 1024)} }

func (c *capture) send(b []byte) error {
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("core sent invalid JSON %q: %w", b, err)
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
	return nil
}

// wait returns the first message (since index from) matching pred.
func (c *capture) wait(t *testing.T, timeout time.Duration, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		c.mu.Lock()
		for _, m := range c.msgs {
			if pred(m) {
				c.mu.Unlock()
				return m
			}
		}
		c.mu.Unlock()
		select {
		case <-c.ch:
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			c.mu.Lock()
			defer c.mu.Unlock()
			t.Fatalf("no matching message in %v; got %v", timeout, c.msgs)
			return nil
		}
	}
}

func (c *capture) reset() {
	c.mu.Lock()
	c.msgs = nil
	c.mu.Unlock()
}

func isAction(a string) func(map[string]any) bool {
	return func(m map[string]any) bool { return m["action"] == a }
}

func isMsg(typ, sessionid string) func(map[string]any) bool {
	return func(m map[string]any) bool {
		return m["action"] == "msg" && m["type"] == typ && (sessionid == "" || m["sessionid"] == sessionid)
	}
}

func startCore(t *testing.T, cfg Config) (*Host, *capture) {
	t.Helper()
	c := newCapture()
	cfg.Send = c.send
	cfg.Agent = AgentInfo{NodeID: "@node", ServerURL: "wss://127.0.0.1/agent.ashx", AgentID: 6, Version: "test", DataDir: t.TempDir(),
		ServiceName: cfg.Agent.ServiceName, CapsNow: cfg.Agent.CapsNow}
	h := New(cfg)
	t.Cleanup(h.Close)
	if err := h.Start("defaultcore", scripts.DefaultCore); err != nil {
		t.Fatal(err)
	}
	return h, c
}

func deliver(h *Host, m map[string]any) {
	b, _ := json.Marshal(m)
	h.Deliver(b)
}

const admin = float64(0xFFFFFFFF)

func TestDefaultCoreStartup(t *testing.T) {
	h, c := startCore(t, Config{})
	ci := c.wait(t, 10*time.Second, isAction("coreinfo"))
	if v, _ := ci["value"].(string); !strings.HasPrefix(v, "meshgo ") || ci["caps"] != float64(14) || ci["osdesc"] == "" {
		t.Errorf("bad coreinfo %v", ci)
	}
	ni := c.wait(t, 10*time.Second, isAction("netinfo"))
	if _, ok := ni["netif2"].(map[string]any); !ok {
		t.Errorf("bad netinfo %v", ni)
	}
	if h.Running() != "defaultcore" {
		t.Errorf("Running() = %q", h.Running())
	}

	// sysinfo: answered with a hash; not answered when the hash matches.
	deliver(h, map[string]any{"action": "sysinfo"})
	si := c.wait(t, 10*time.Second, isAction("sysinfo"))
	data := si["data"].(map[string]any)
	hash, _ := data["hash"].(string)
	if len(hash) != 96 {
		t.Fatalf("sysinfo hash %q", hash)
	}
	c.reset()
	deliver(h, map[string]any{"action": "sysinfo", "hash": hash})
	deliver(h, map[string]any{"action": "ping"})
	c.wait(t, 5*time.Second, isAction("pong"))
	time.Sleep(300 * time.Millisecond)
	c.mu.Lock()
	for _, m := range c.msgs {
		if m["action"] == "sysinfo" {
			t.Errorf("sysinfo resent although the hash matched")
		}
	}
	c.mu.Unlock()
}

func TestConsoleCommands(t *testing.T) {
	h, c := startCore(t, Config{})
	tests := []struct {
		name, cmd string
		rights    float64
		want      string // substring of the reply; "" = no reply expected
	}{
		{"help", "help", 8 | 16, "Available commands"},
		{"info", "info", 8 | 16, "Node ID: @node"},
		{"unknown", "frobnicate", 8 | 16, `Unknown command "frobnicate"`},
		{"eval admin", `eval "1+2"`, admin, "3"},
		{"eval refused", `eval "1+2"`, 8 | 16, "Access denied"},
		{"ps", "ps", 8 | 16, ", "},
		{"args", `args one --x 5 "two words"`, 8 | 16, `"x":5`},
		{"ls", "ls /", 8 | 16, "(Folder)"},
		{"power disabled", "power 3", 8 | 16, "disabled"},
		{"no console right", "help", 8, ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sid := fmt.Sprintf("user/domain/u/%d", i)
			deliver(h, map[string]any{"action": "msg", "type": "console", "value": tc.cmd, "rights": tc.rights, "sessionid": sid})
			if tc.want == "" {
				time.Sleep(300 * time.Millisecond)
				c.mu.Lock()
				defer c.mu.Unlock()
				for _, m := range c.msgs {
					if m["sessionid"] == sid {
						t.Errorf("unexpected reply %v", m)
					}
				}
				return
			}
			m := c.wait(t, 10*time.Second, isMsg("console", sid))
			if v, _ := m["value"].(string); !strings.Contains(v, tc.want) {
				t.Errorf("reply %q does not contain %q", v, tc.want)
			}
		})
	}
}

func TestRunCommands(t *testing.T) {
	h, c := startCore(t, Config{})
	type test struct {
		name  string
		cmds  string
		reply bool
		want  string
	}
	// MeshCentral's runcommands type 3 is sh, type 1 cmd (Windows).
	shell, tests := 3, []test{
		{"reply", "echo hello-$((6*7))", true, "hello-42"},
		{"multi-line", "x=abc\necho $x; echo err 1>&2", true, "abc\nerr"},
		{"console", "echo to-console", false, "to-console"},
	}
	if runtime.GOOS == "windows" {
		shell, tests = 1, []test{
			{"reply", "echo hello-42", true, "hello-42"},
			{"multi-line", "set x=abc\r\necho %x%\r\necho err 1>&2", true, "abc"},
			{"console", "echo to-console", false, "to-console"},
		}
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if shell == 1 && strings.Contains(tc.cmds, "\n") {
				// Measured: `printf 'echo one\r\necho two\r\n' | wine cmd.exe` prints only "one".
				winetest.SkipUnderWine(t, "wine 8's cmd.exe runs only the first line of a script written to its stdin")
			}
			rid := fmt.Sprintf("r%d", i)
			sid := "sess" + rid
			deliver(h, map[string]any{"action": "runcommands", "type": shell, "cmds": tc.cmds, "runAsUser": 0,
				"reply": tc.reply, "responseid": rid, "sessionid": sid})
			var got string
			if tc.reply {
				m := c.wait(t, 10*time.Second, func(m map[string]any) bool { return isMsg("runcommands", "")(m) && m["responseid"] == rid })
				got, _ = m["result"].(string)
			} else {
				m := c.wait(t, 10*time.Second, isMsg("console", sid))
				got, _ = m["value"].(string)
			}
			if !strings.Contains(got, tc.want) {
				t.Errorf("output %q does not contain %q", got, tc.want)
			}
		})
	}
}

// The agent serves msg/tunnel natively, so the default core has no tunnel
// handler; a custom core can still hand a request to the relay client
// through require('tunnel').open, as scripts/README.md shows.
func TestTunnelDispatch(t *testing.T) {
	got := make(chan []byte, 1)
	h := New(Config{Send: newCapture().send, OpenTunnel: func(b []byte) error { got <- b; return nil }})
	t.Cleanup(h.Close)
	src := `require('mesh').on('message', function (m) { if (m.action === 'msg' && m.type === 'tunnel') { require('tunnel').open(m); } });`
	if err := h.Start("custom", []byte(src)); err != nil {
		t.Fatal(err)
	}
	deliver(h, map[string]any{"action": "msg", "type": "tunnel", "value": "*/meshrelay.ashx?p=1&id=x", "rights": admin, "sessionid": "s"})
	select {
	case b := <-got:
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil || m["value"] != "*/meshrelay.ashx?p=1&id=x" {
			t.Errorf("tunnel request %s (%v)", b, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OpenTunnel not called")
	}
}

// A core loop that never yields is interrupted and the host keeps
// answering messages afterwards.
func TestInfiniteLoopInterrupted(t *testing.T) {
	h, c := startCore(t, Config{TurnBudget: 300 * time.Millisecond})
	c.wait(t, 10*time.Second, isAction("coreinfo"))
	deliver(h, map[string]any{"action": "msg", "type": "console", "value": `eval "for(;;){}"`, "rights": admin, "sessionid": "loop"})
	c.wait(t, 10*time.Second, func(m map[string]any) bool {
		return m["action"] == "errorlog" && strings.Contains(fmt.Sprint(m["log"]), "time budget")
	})
	deliver(h, map[string]any{"action": "ping"})
	c.wait(t, 5*time.Second, isAction("pong"))
	if h.Running() != "defaultcore" {
		t.Errorf("core not running after interrupt")
	}
}

// bombLimit is the memory tests' limit: 64 MiB is far above the test
// process's own live heap (under 1 MiB between tests) and small enough to
// reach quickly: a bomb's cost is the kernel's page faults for fresh heap
// (97% of its CPU in memmove into new pages), which at 300 MiB took over
// 20 s on a loaded CI machine. The memory tests' turn budget is far beyond
// their deadline, so only the memory check can end the bomb's turn.
const bombLimit = 64 << 20

func TestScriptContainment(t *testing.T) {
	tests := []struct {
		name     string
		src      string
		cfg      Config
		wantErr  string
		restarts bool
	}{
		{"exception in callback", `require('mesh').on('message', function(m){ throw new Error('boom ' + m.action) });`,
			Config{}, "boom x", false},
		{"top-level exception", `require('mesh').send({action:'started'}); throw new Error('bad core');`,
			Config{RestartDelay: 50 * time.Millisecond}, "bad core", true},
		{"memory bomb", `require('mesh').send({action:'started'}); setTimeout(function(){ var a=[], s='x'.repeat(65536); for(;;){ a.push(s + a.length); } }, 10);`,
			Config{MemoryLimit: bombLimit, TurnBudget: 10 * time.Minute, RestartDelay: 50 * time.Millisecond}, "memory limit", true},
		{"memory growth over short turns", `require('mesh').send({action:'started'}); var a=[], s='x'.repeat(65536); setInterval(function(){ for (var i=0;i<20;i++) a.push(s + a.length); }, 1);`,
			Config{MemoryLimit: bombLimit, RestartDelay: 50 * time.Millisecond}, "memory limit", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapture()
			tc.cfg.Send = c.send
			h := New(tc.cfg)
			defer h.Close()
			if err := h.Start(tc.name, []byte(tc.src)); err != nil {
				t.Fatal(err)
			}
			h.Deliver([]byte(`{"action":"x"}`))
			c.wait(t, 60*time.Second, func(m map[string]any) bool {
				return m["action"] == "errorlog" && strings.Contains(fmt.Sprint(m["log"]), tc.wantErr)
			})
			if tc.restarts {
				c.reset()
				c.wait(t, 60*time.Second, isAction("started"))
			}
		})
	}
}

func TestDeliverWithoutRuntime(t *testing.T) {
	h := New(Config{})
	h.Deliver([]byte(`{"action":"ping"}`)) // dropped, must not block or panic
	if h.Running() != "" {
		t.Errorf("Running() = %q", h.Running())
	}
	if err := h.Start("bad", []byte("function(")); err == nil {
		t.Errorf("syntax error accepted")
	}
	h.Close()
	if err := h.Start("x", []byte("1")); err == nil {
		t.Errorf("Start after Close accepted")
	}
}

// Quiet is false while a turn runs and for a second after, true once the
// core has been idle that long.
func TestQuiet(t *testing.T) {
	h, c := startCore(t, Config{})
	c.wait(t, 10*time.Second, isAction("coreinfo"))
	waitQuiet := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for h.Quiet() != want {
			if time.Now().After(deadline) {
				t.Fatalf("Quiet() stayed %v", !want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitQuiet(true)
	deliver(h, map[string]any{"action": "msg", "type": "console", "rights": admin, "sessionid": "busy",
		"value": `eval "var t0 = Date.now(); while (Date.now() - t0 < 1500) {}"`})
	waitQuiet(false)
	waitQuiet(true)
}

// A core written for meshcore.js's API fails at once on every restart; the
// server's agent error log gets one line saying why, not one per restart.
func TestMeshcoreStyleCoreOneErrorLine(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"process global", "var p = process.platform;\n", "written for MeshCentral's meshcore.js API (process)"},
		{"MeshAgent module", "var m = require('MeshAgent');\n", "written for MeshCentral's meshcore.js API (MeshAgent)"},
		{"other error", "throw new Error('boom');\n", "core custom crashed: Error: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCapture()
			h := New(Config{Send: c.send, RestartDelay: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(h.Close)
			if err := h.Start("custom", []byte(tc.src)); err != nil {
				t.Fatal(err)
			}
			c.wait(t, 10*time.Second, isAction("errorlog"))
			time.Sleep(1500 * time.Millisecond) // several restarts (50, 100, 200, 400, 800 ms)
			c.mu.Lock()
			defer c.mu.Unlock()
			var lines []string
			for _, m := range c.msgs {
				if m["action"] == "errorlog" {
					l := m["log"].([]any)[0].(map[string]any)
					lines = append(lines, l["m"].(string))
				}
			}
			if len(lines) != 1 || !strings.Contains(lines[0], tc.want) || strings.Contains(lines[0], "\n") {
				t.Fatalf("errorlog lines %q, want one containing %q", lines, tc.want)
			}
		})
	}
}

// A desktop that appears after the agent started (an X server started
// later) changes the capabilities; the core re-advertises them in a new
// coreinfo without waiting for a reconnect.
func TestCapsRefresh(t *testing.T) {
	var mu sync.Mutex
	caps := 14
	h, c := startCore(t, Config{Agent: AgentInfo{CapsNow: func() int { mu.Lock(); defer mu.Unlock(); return caps }}})
	c.wait(t, 10*time.Second, func(m map[string]any) bool { return m["action"] == "coreinfo" && m["caps"] == float64(14) })
	mu.Lock()
	caps = 15
	mu.Unlock()
	c.wait(t, 30*time.Second, func(m map[string]any) bool { return m["action"] == "coreinfo" && m["caps"] == float64(15) })
	if got := consoleCmd(t, h, c, "caps", "info", admin); !strings.Contains(got, "Capabilities: 15") {
		t.Errorf("console info %q", got)
	}
}

// iplocation: the core asks the location service named by the .msh's
// ipLocationUrl and answers as meshcore.js does; a second request for the
// same network is answered from the cache.
func TestIPLocationAnswer(t *testing.T) {
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		w.Write([]byte(`{"ip":"203.0.113.7","loc":"45.4,-122.9","city":"X"}`))
	}))
	defer srv.Close()
	c := newCapture()
	h := New(Config{Send: c.send, Agent: AgentInfo{NodeID: "@node", DataDir: t.TempDir(), Settings: map[string]string{"ipLocationUrl": srv.URL + "/json"}}})
	t.Cleanup(h.Close)
	if err := h.Start("defaultcore", scripts.DefaultCore); err != nil {
		t.Fatal(err)
	}
	c.wait(t, 10*time.Second, isAction("netinfo"))
	deliver(h, map[string]any{"action": "iplocation"})
	m := c.wait(t, 10*time.Second, isAction("iplocation"))
	v, _ := m["value"].(map[string]any)
	if m["type"] != "publicip" || v["ip"] != "203.0.113.7" || v["loc"] != "45.4,-122.9" {
		t.Fatalf("iplocation answer %v", m)
	}
	deliver(h, map[string]any{"action": "iplocation"})
	deadline := time.Now().Add(10 * time.Second)
	for countAction(c, "iplocation") < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := countAction(c, "iplocation"); n != 2 || asked.Load() != 1 {
		t.Fatalf("%d answers, service asked %d times; want 2 answers from one request", n, asked.Load())
	}
}

func countAction(c *capture, a string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if m["action"] == a {
			n++
		}
	}
	return n
}

// sysinfo.watch reads the state natively every round and enters the
// runtime only after the first reading and when the state changed: rounds
// without a change (counted by the probe's CapsNow calls, not by time)
// call nothing, a change calls the callback once, and clearInterval ends
// the rounds.
func TestSysinfoWatch(t *testing.T) {
	var mu sync.Mutex
	caps, rounds := 14, 0
	capsNow := func() int {
		mu.Lock()
		defer mu.Unlock()
		rounds++
		return caps
	}
	readRounds := func() int { mu.Lock(); defer mu.Unlock(); return rounds }
	c := newCapture()
	h := New(Config{Send: c.send, Agent: AgentInfo{NodeID: "@node", DataDir: t.TempDir(), CapsNow: capsNow}})
	t.Cleanup(h.Close)
	core := `var mesh = require('mesh'), n = 0;
var id = require('sysinfo').watch('coreinfo', 20, function () { n++; mesh.send({action: 'changed', n: n, caps: mesh.caps()}); });
mesh.send({action: 'timers', list: mesh.timers()});
mesh.on('message', function (m) { if (m.action === 'stop') { clearInterval(id); mesh.send({action: 'stopped', timers: mesh.timers().length}); } });`
	if err := h.Start("watchcore", []byte(core)); err != nil {
		t.Fatal(err)
	}
	m := c.wait(t, 10*time.Second, isAction("timers"))
	if l, _ := m["list"].([]any); len(l) != 1 {
		t.Fatalf("mesh.timers() = %v, want the watch", m["list"])
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The first reading calls back once.
	m = c.wait(t, 30*time.Second, isAction("changed"))
	if m["caps"] != float64(14) || m["n"] != float64(1) {
		t.Fatalf("first callback = %v", m)
	}
	waitFor("5 unchanged rounds", func() bool { return readRounds() >= 6 })
	if n := countAction(c, "changed"); n != 1 {
		t.Fatalf("callback ran %d times, want once before any change", n)
	}
	mu.Lock()
	caps = 15
	mu.Unlock()
	m = c.wait(t, 30*time.Second, func(m map[string]any) bool { return m["action"] == "changed" && m["n"] == float64(2) })
	if m["caps"] != float64(15) {
		t.Fatalf("changed = %v", m)
	}
	after := readRounds()
	waitFor("5 more rounds", func() bool { return readRounds() >= after+5 })
	if n := countAction(c, "changed"); n != 2 {
		t.Fatalf("callback ran %d times, want 2 (first reading, one change)", n)
	}
	deliver(h, map[string]any{"action": "stop"})
	if m := c.wait(t, 10*time.Second, isAction("stopped")); m["timers"] != float64(0) {
		t.Fatalf("timers after clearInterval: %v", m)
	}
}
