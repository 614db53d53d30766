//go:build unix

package app

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/proto/reconnect"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/store"
)

// cAgentPath finds MeshCentral's C agent for this machine: the one
// MESHCENTRAL_AGENT names, else the one in the meshcentral package the
// interop harness installs (as CI does).
func cAgentPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MESHCENTRAL_AGENT"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("MESHCENTRAL_AGENT: %v", err)
		}
		return p
	}
	return mctest.CAgentPath(t)
}

type cAgent struct {
	dir string
	cmd *exec.Cmd
}

// startCAgent copies the C agent into dir as "meshagent" with the .msh
// beside it and runs `./meshagent run` there. Stopped by PID in cleanup.
func startCAgent(t *testing.T, bin, dir string, msh []byte) *cAgent {
	t.Helper()
	exe := filepath.Join(dir, "meshagent")
	if _, err := os.Stat(exe); err != nil {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(exe+".msh", msh, 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(dir, "agent.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("./meshagent", "run")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &cAgent{dir: dir, cmd: cmd}
	t.Cleanup(func() { a.stop(); logf.Close() })
	return a
}

func (a *cAgent) stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	// The agent may fork helpers into its own process group: signal the
	// group we created for it, by its id.
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	a.cmd = nil
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startApp(t *testing.T, dataDir, listen string) *App {
	t.Helper()
	var a *App
	var err error
	for i := 0; i < 50; i++ { // the previous instance's port may linger briefly
		a, err = New(Config{DataDir: dataDir, Listen: listen, Logger: testLogger(t), AgentKeyBits: 3072})
		if err == nil || !strings.Contains(err.Error(), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	return a
}

// waitEvent waits for the first event matching ok.
func waitEvent(t *testing.T, ch <-chan agentconn.Event, d time.Duration, what string, ok func(agentconn.Event) bool) agentconn.Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-ch:
			if ok(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func subscribe(a *App) <-chan agentconn.Event {
	ch := make(chan agentconn.Event, 256)
	a.Agents.Subscribe(func(e agentconn.Event) {
		e.Data = append(json.RawMessage(nil), e.Data...)
		select {
		case ch <- e:
		default:
		}
	})
	return ch
}

// TestInteropCAgent runs the real C MeshAgent against server-lite:
// full-path authentication, core push, the core's coreinfo and a JSON
// round trip through the registry API, then the skip path after an agent
// restart, then again after a server restart (cached core, no push).
func TestInteropCAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test")
	}
	bin := cAgentPath(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	agentDir := t.TempDir()
	listen := freePort(t)

	a := startApp(t, dataDir, listen)
	defer func() { a.Close() }()
	ch := subscribe(a)
	msh, err := os.ReadFile(a.MshPath)
	if err != nil {
		t.Fatal(err)
	}
	ag := startCAgent(t, bin, agentDir, msh)

	// 1. Full path, then the pushed core reports in.
	conn := waitEvent(t, ch, 30*time.Second, "connect", func(e agentconn.Event) bool { return e.Kind == agentconn.Connected })
	if conn.Agent.Skip {
		t.Fatal("first connection took the skip path")
	}
	if conn.Agent.AgentID != 6 || conn.Agent.Caps&0x18 != 0x18 {
		t.Fatalf("agent info %+v", conn.Agent)
	}
	node := conn.NodeID
	ci := waitEvent(t, ch, 30*time.Second, "coreinfo", func(e agentconn.Event) bool { return e.Kind == agentconn.Message && e.Action == "coreinfo" })
	if !strings.Contains(string(ci.Data), "server-lite tiny core") {
		t.Fatalf("coreinfo %s", ci.Data)
	}
	// The agent reports the new hash (11) right after starting the core.
	var info agentconn.AgentInfo
	var ok bool
	for i := 0; i < 100; i++ {
		if info, ok = a.Agents.Agent(node); ok && info.CoreHash != "" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !ok || info.CoreHash != a.Agents.DefaultCoreHash() || info.Flavor != "js-core" {
		t.Fatalf("after push: %+v (default %s)", info, a.Agents.DefaultCoreHash())
	}

	// 2. JSON to the agent, its reply back through Subscribe.
	if err := a.Agents.SendJSON(node, map[string]any{"action": "echo", "value": "hello from server-lite", "sessionid": "s1"}); err != nil {
		t.Fatal(err)
	}
	echo := waitEvent(t, ch, 10*time.Second, "echo", func(e agentconn.Event) bool { return e.Action == "echo" })
	var em struct{ Value, Sessionid string }
	json.Unmarshal(echo.Data, &em)
	if em.Value != "hello from server-lite" || em.Sessionid != "s1" {
		t.Fatalf("echo %s", echo.Data)
	}
	a.Store.Flush()
	d, err := a.Store.Device(node)
	if err != nil || d.GroupID != a.DefaultGroup.ID || d.CoreName != "server-lite tiny core v1" || d.AgentID != 6 {
		t.Fatalf("device %+v %v", d, err)
	}

	// 3. Agent restart: skip path, cached core accepted with 16, no push.
	ag.stop()
	waitEvent(t, ch, 10*time.Second, "disconnect", func(e agentconn.Event) bool { return e.Kind == agentconn.Disconnected })
	ag = startCAgent(t, bin, agentDir, msh)
	conn = waitEvent(t, ch, 30*time.Second, "reconnect", func(e agentconn.Event) bool { return e.Kind == agentconn.Connected })
	if !conn.Agent.Skip || conn.NodeID != node {
		t.Fatalf("reconnect %+v", conn.Agent)
	}
	waitEvent(t, ch, 30*time.Second, "coreinfo after reconnect", func(e agentconn.Event) bool { return e.Action == "coreinfo" })

	// 4. Server restart with the same data directory: same identity, the
	// agent comes back by itself on the skip path.
	a.Close()
	a = startApp(t, dataDir, listen)
	ch = subscribe(a)
	conn = waitEvent(t, ch, 60*time.Second, "reconnect after server restart", func(e agentconn.Event) bool { return e.Kind == agentconn.Connected })
	if !conn.Agent.Skip || conn.NodeID != node {
		t.Fatalf("after server restart %+v", conn.Agent)
	}
	waitEvent(t, ch, 30*time.Second, "coreinfo after server restart", func(e agentconn.Event) bool { return e.Action == "coreinfo" })

	// 5. Admin push of another script to this device; it is pinned.
	// Padded past 64 KiB: the C agent drops fragmented messages that big
	// (control.md §3.2), so it running this proves the push is one frame.
	custom := []byte("require('MeshAgent').SendCommand({action:'coreinfo', value:'custom core', caps:0});\n/*" +
		strings.Repeat("padding ", 300<<10/8) + "*/\n")
	if err := a.Agents.PushCore(node, custom, "user//admin"); err != nil {
		t.Fatal(err)
	}
	ci = waitEvent(t, ch, 30*time.Second, "custom coreinfo", func(e agentconn.Event) bool {
		return e.Action == "coreinfo" && strings.Contains(string(e.Data), "custom core")
	})
	a.Store.Flush()
	ev, _ := a.Store.Events(store.EventFilter{NodeID: node})
	kinds := map[string]int{}
	for _, e := range ev {
		kinds[e.Kind]++
	}
	if kinds[store.EvConnect] < 3 || kinds[store.EvDisconnect] < 2 || kinds[store.EvCorePush] < 2 {
		t.Fatalf("event log %v", kinds)
	}
}

// refusingFront listens on loopback and passes connections through to
// target, except during the first refuseFor, when it refuses each: before
// TLS as agentconn.Listener does under a storm (a plain 503 with
// Retry-After 1 instead of the ServerHello), or, with afterTLS (web
// certificate given), as the 503 gate in agentconn's ServeHTTP does (TLS,
// then 503 to the upgrade). It returns its address and the times
// connections arrived.
func refusingFront(t *testing.T, target string, refuseFor time.Duration, afterTLS *tls.Certificate) (string, func() []time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	start := time.Now()
	var mu sync.Mutex
	var arrivals []time.Duration
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			at := time.Since(start)
			mu.Lock()
			arrivals = append(arrivals, at)
			mu.Unlock()
			if at < refuseFor && afterTLS != nil {
				go func() {
					defer c.Close()
					tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*afterTLS}})
					tc.SetDeadline(time.Now().Add(5 * time.Second))
					if _, err := http.ReadRequest(bufio.NewReader(tc)); err != nil {
						return
					}
					io.WriteString(tc, "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
					tc.Close()
				}()
				continue
			}
			if at < refuseFor {
				c.Write(reconnect.PlainRefusal(1))
				c.(*net.TCPConn).CloseWrite()
				go func() {
					c.SetReadDeadline(time.Now().Add(2 * time.Second))
					io.Copy(io.Discard, c)
					c.Close()
				}()
				continue
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
			go func() { io.Copy(c, up); c.Close(); up.Close() }()
		}
	}()
	return ln.Addr().String(), func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(arrivals)
	}
}

// TestInteropCAgentRefused: MeshCentral's C agent, refused before TLS
// (server-lite's answer under a reconnect storm, which the C agent reads
// as a failed TLS handshake) keeps retrying and comes back once
// connections are let through, as it does after the 503 to the upgrade.
// The attempt times are logged to compare its schedule in both cases.
func TestInteropCAgentRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("interop test")
	}
	bin := cAgentPath(t)
	for _, afterTLS := range []bool{false, true} {
		name := "before TLS"
		if afterTLS {
			name = "503 after TLS"
		}
		t.Run(name, func(t *testing.T) {
			a := startApp(t, filepath.Join(t.TempDir(), "data"), freePort(t))
			defer a.Close()
			ch := subscribe(a)
			const refuseFor = 15 * time.Second
			var cert *tls.Certificate
			if afterTLS {
				cert = &a.Certs.Web
			}
			front, arrivals := refusingFront(t, a.Addr(), refuseFor, cert)
			msh, err := os.ReadFile(a.MshPath)
			if err != nil {
				t.Fatal(err)
			}
			msh = []byte(strings.Replace(string(msh), a.AgentURL(), "wss://"+front+"/agent.ashx", 1))
			if !strings.Contains(string(msh), front) {
				t.Fatalf("no MeshServer line to point at the front in\n%s", msh)
			}
			startCAgent(t, bin, t.TempDir(), msh)
			waitEvent(t, ch, refuseFor+120*time.Second, "connect after the refusals", func(e agentconn.Event) bool { return e.Kind == agentconn.Connected })
			got := arrivals()
			t.Logf("the C agent's attempts (since the front started): %v", got)
			refused := 0
			for _, at := range got {
				if at < refuseFor {
					refused++
				}
			}
			if refused < 2 {
				t.Fatalf("%d attempts refused; want the C agent to have retried after a refusal (attempts %v)", refused, got)
			}
		})
	}
}
