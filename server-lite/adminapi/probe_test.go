package adminapi_test

// The security probe's attacks (issue 20), replayed from outside: a whole
// in-process server-lite (app + Attach, the same wiring main uses), real
// control.ashx and meshrelay.ashx sockets, and simulated agents enrolled
// through agent.ashx with a group id taken from the group's .msh.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/reconnect"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/store"
)

// probeEnv is a running server-lite with the admin API attached.
type probeEnv struct {
	t     *testing.T
	app   *app.App
	api   *adminapi.Server
	url   string // wss://127.0.0.1:port
	admin string
	pass  string
	logs  *probeLogs
}

// newProbeEnv starts server-lite; tune may change the admin API's Config
// before it is used (login limits), nil keeps Attach's defaults.
func newProbeEnv(t *testing.T, lim *adminapi.LoginLimits) *probeEnv {
	t.Helper()
	return newProbeEnvAgents(t, agentconn.Config{}, lim)
}

// newProbeEnvAgents is newProbeEnv with agent.ashx settings.
func newProbeEnvAgents(t *testing.T, agents agentconn.Config, lim *adminapi.LoginLimits) *probeEnv {
	t.Helper()
	logs := &probeLogs{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	a, err := app.New(app.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AgentKeyBits: 2048, Agent: agents,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	api, first := a.API, a.FirstAdmin
	api.SetLoginFailDelay(0)
	a.Accounts.SetHashCost(bcrypt.MinCost)
	if lim != nil {
		api.SetLoginLimits(*lim)
	}
	a.Start()
	t.Cleanup(func() { a.Close() })
	return &probeEnv{t: t, app: a, api: api, url: "wss://" + a.Addr(), admin: first.Name, pass: first.Password, logs: logs}
}

// ctl is one control.ashx session driven by responseid.
type ctl struct {
	t    testing.TB
	ws   *websocket.Conn
	mu   sync.Mutex
	wait map[string]chan map[string]any
	seq  atomic.Int64
	done chan struct{}
	// closeMsg is the in-band close reason, if the server sent one.
	closeMsg atomic.Value
}

func dialWS(url string, h http.Header) (*websocket.Conn, error) {
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial(url, h)
	return ws, err
}

// meshAuth is the x-meshauth header for user/pass.
func meshAuth(user, pass string) http.Header {
	h := http.Header{}
	h.Set("X-Meshauth", b64(user)+","+b64(pass))
	return h
}

// login opens control.ashx as user/pass with x-meshauth and waits for
// serverinfo; it fails the test on a refusal.
func (e *probeEnv) login(user, pass string) *ctl {
	e.t.Helper()
	c, msg := e.tryLogin("", meshAuth(user, pass))
	if c == nil {
		e.t.Fatalf("login %s refused: %s", user, msg)
	}
	return c
}

// tryLogin opens control.ashx; it returns nil and the close msg when refused.
func (e *probeEnv) tryLogin(query string, h http.Header) (*ctl, string) {
	u := e.url + "/control.ashx"
	if query != "" {
		u += "?" + query
	}
	ws, err := dialWS(u, h)
	if err != nil {
		return nil, err.Error()
	}
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, err.Error()
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["action"] == "close" {
		ws.Close()
		return nil, fmt.Sprint(m["msg"])
	}
	ws.SetReadDeadline(time.Time{})
	c := &ctl{t: e.t, ws: ws, wait: map[string]chan map[string]any{}, done: make(chan struct{})}
	go c.read()
	e.t.Cleanup(func() { ws.Close() })
	return c, ""
}

func (c *ctl) read() {
	defer close(c.done)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) != nil {
			continue
		}
		if m["action"] == "close" {
			c.closeMsg.Store(fmt.Sprint(m["msg"]))
		}
		id, _ := m["responseid"].(string)
		c.mu.Lock()
		ch := c.wait[id]
		delete(c.wait, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// do sends a request and waits for its reply.
func (c *ctl) do(m map[string]any) map[string]any {
	c.t.Helper()
	r, err := c.try(m, 60*time.Second)
	if err != nil {
		c.t.Fatalf("%v: %v", m["action"], err)
	}
	return r
}

// try is do returning an error instead of failing (closed session, timeout).
func (c *ctl) try(m map[string]any, timeout time.Duration) (map[string]any, error) {
	id := fmt.Sprintf("r%d", c.seq.Add(1))
	m["responseid"] = id
	ch := make(chan map[string]any, 1)
	c.mu.Lock()
	c.wait[id] = ch
	c.mu.Unlock()
	b, _ := json.Marshal(m)
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	select {
	case r := <-ch:
		return r, nil
	case <-c.done:
		return nil, fmt.Errorf("session closed")
	case <-time.After(timeout):
		return nil, fmt.Errorf("no reply in %v", timeout)
	}
}

// closed reports whether the server ended the session within d.
func (c *ctl) closed(d time.Duration) bool {
	select {
	case <-c.done:
		return true
	case <-time.After(d):
		return false
	}
}

// enroll connects a simulated agent to group meshID (read from the group's
// .msh, as anyone can) and returns its node id and connection.
func (e *probeEnv) enroll(meshID, host string, ann *simagent.Announce) (string, *simagent.Conn) {
	e.t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := simagent.NewIdentity(key)
	if err != nil {
		e.t.Fatal(err)
	}
	g, err := e.app.Store.Group(meshID)
	if err != nil {
		e.t.Fatal(err)
	}
	mid, err := g.MeshIDBytes()
	if err != nil {
		e.t.Fatal(err)
	}
	var m [handshake.HashLen]byte
	copy(m[:], mid)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var conn *simagent.Conn
	for {
		conn, err = simagent.Connect(ctx, simagent.Options{URL: e.app.AgentURL(), ServerID: e.app.Certs.ServerID, MeshID: m,
			Identity: id, Hostname: host, Announce: ann, Timeout: 60 * time.Second})
		// A busy server (a flood filling the pending handshakes) says when
		// to come back; a real agent does (proto/reconnect).
		ra := reconnect.RetryAfter(err)
		if ra == 0 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(ra):
		}
	}
	if err != nil {
		e.t.Fatalf("enroll %s: %v", host, err)
	}
	e.t.Cleanup(func() { conn.WS.Close() })
	var nodeID string
	deadline := time.Now().Add(20 * time.Second)
	for nodeID == "" && time.Now().Before(deadline) {
		for _, ai := range e.app.Agents.Agents() {
			if ai.Hostname == host {
				nodeID = ai.NodeID
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if nodeID == "" {
		e.t.Fatalf("agent %s not registered", host)
	}
	for {
		if d, err := e.app.Store.Device(nodeID); err == nil && d.GroupID == meshID {
			break
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("device %s not stored", host)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nodeID, conn
}

// drain reads an agent's socket until it closes, answering nothing.
func drain(ws *websocket.Conn, got chan<- map[string]any) {
	for {
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var m map[string]any
		if handshake.IsJSON(b) && json.Unmarshal(b, &m) == nil && got != nil {
			select {
			case got <- m:
			default:
			}
		}
	}
}

// adduser creates an account through control.ashx.
func (c *ctl) adduser(name, pass string) {
	c.t.Helper()
	if r := c.do(map[string]any{"action": "adduser", "username": name, "pass": pass}); r["result"] != "ok" {
		c.t.Fatalf("adduser %s: %v", name, r)
	}
}

// createmesh creates a group and returns its id.
func (c *ctl) createmesh(name string) string {
	c.t.Helper()
	r := c.do(map[string]any{"action": "createmesh", "meshname": name, "meshtype": store.MeshTypeAgent})
	id, _ := r["meshid"].(string)
	if r["result"] != "ok" || id == "" {
		c.t.Fatalf("createmesh: %v", r)
	}
	return id
}

// probeLogs collects the server's log, printed when a test fails.
type probeLogs struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *probeLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *probeLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// readMsg reads one JSON message.
func readMsg(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}
