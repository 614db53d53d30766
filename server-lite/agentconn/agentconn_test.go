package agentconn_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/servertest"
	"github.com/meshgo/meshagent/server-lite/store"
)

type env struct {
	t      *testing.T
	srv    *agentconn.Server
	st     *store.Store
	set    *certs.Set
	url    string
	meshID [48]byte
	logs   serverLog
}

var (
	keyOnce sync.Once
	keys    []*rsa.PrivateKey
)

// testKey returns one of a few cached 2048-bit keys (the server accepts any
// RSA size; 3072 is only slower to generate).
func testKey(t *testing.T, i int) *rsa.PrivateKey {
	keyOnce.Do(func() {
		for j := 0; j < 3; j++ {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			keys = append(keys, k)
		}
	})
	return keys[i]
}

// newEnv starts the whole server (servertest) with agent.ashx tuned by
// cfg; the tests talk to agent.ashx and look at its registry and store.
func newEnv(t *testing.T, cfg agentconn.Config) *env {
	t.Helper()
	srv := servertest.Start(t, servertest.Options{Configure: func(c *app.Config) { c.Agent = cfg }})
	return &env{t: t, srv: srv.Agents, st: srv.Store, set: srv.Certs, url: srv.AgentURL(), meshID: srv.MeshID(), logs: serverLog{srv}}
}

// serverLog shows the server's log so far (tests check logged reasons).
type serverLog struct{ s *servertest.Server }

func (l serverLog) String() string { return l.s.Logs() }

func (e *env) identity(i int) simagent.Identity {
	id, err := simagent.NewIdentity(testKey(e.t, i))
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *env) connect(id simagent.Identity, trusted []byte) *simagent.Conn {
	e.t.Helper()
	c, err := simagent.Connect(context.Background(), simagent.Options{URL: e.url, ServerID: e.set.ServerID, MeshID: e.meshID, Identity: id, Trusted: trusted})
	if err != nil {
		e.t.Fatalf("connect: %v\nserver log:\n%s", err, e.logs)
	}
	e.t.Cleanup(func() { c.WS.Close() })
	return c
}

func nodeID(id simagent.Identity) string {
	n := handshake.NodeID(&id.Key.PublicKey)
	return "node//" + handshake.EncodeID(n[:])
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if ok() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestFullThenSkipPath(t *testing.T) {
	e := newEnv(t, agentconn.Config{})
	id := e.identity(0)
	c := e.connect(id, nil)
	if c.Skip || len(c.Trust) != 48 {
		t.Fatalf("first connection: skip=%v trust=%d", c.Skip, len(c.Trust))
	}
	waitFor(t, "registry", func() bool { _, ok := e.srv.Agent(nodeID(id)); return ok })
	c.WS.Close()
	waitFor(t, "unregister", func() bool { _, ok := e.srv.Agent(nodeID(id)); return !ok })

	c2 := e.connect(id, c.Trust)
	if !c2.Skip {
		t.Fatal("second connection did not take the skip path")
	}
	waitFor(t, "registry", func() bool { a, ok := e.srv.Agent(nodeID(id)); return ok && a.Skip && a.Flavor == "local-core" })
	e.st.Flush()
	d, err := e.st.Device(nodeID(id))
	if err != nil || d.RName != "simagent" || d.AgentID != 6 || d.CoreHash != strings.Repeat("0", 96) {
		t.Fatalf("device %+v %v", d, err)
	}
}

func TestDuplicateAgentClosesOldSocket(t *testing.T) {
	e := newEnv(t, agentconn.Config{})
	id := e.identity(0)
	old := e.connect(id, nil)
	e.connect(id, old.Trust)
	old.WS.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := old.WS.ReadMessage(); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatal("old connection was not closed")
			}
			break
		}
	}
	if n := len(e.srv.Agents()); n != 1 {
		t.Fatalf("%d agents registered", n)
	}
	// The old connection's goroutine logs as it winds down, which may be
	// just after its socket closed.
	waitFor(t, "duplicate logged", func() bool { return strings.Contains(e.logs.String(), "replaced by a newer connection") })
}

func TestJSONBothWays(t *testing.T) {
	e := newEnv(t, agentconn.Config{})
	got := make(chan agentconn.Event, 10)
	e.srv.Subscribe(func(ev agentconn.Event) {
		if ev.Kind == agentconn.Message {
			ev.Data = append([]byte(nil), ev.Data...)
			got <- ev
		}
	})
	id := e.identity(0)
	c := e.connect(id, nil)
	if err := e.srv.SendJSON(nodeID(id), map[string]string{"action": "msg", "type": "console", "value": "help"}); err != nil {
		t.Fatal(err)
	}
	c.WS.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, m, err := c.WS.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(m, []byte(`"value":"help"`)) {
			break
		}
	}
	c.WS.WriteMessage(websocket.TextMessage, []byte(`{"action":"msg","type":"console","value":"reply","sessionid":"s"}`))
	select {
	case ev := <-got:
		if ev.Action != "msg" || ev.NodeID != nodeID(id) || !strings.Contains(string(ev.Data), "reply") {
			t.Fatalf("event %+v", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	if err := e.srv.SendJSON("node//nobody", map[string]string{"action": "x"}); err == nil {
		t.Fatal("send to unknown node succeeded")
	}
}

// TestMessagesInOrderThenDisconnect floods the server with more messages
// than its read loop queues (maxQueued) while the subscriber is slow: every
// message must arrive, in order, before the disconnect event; a ping
// sent in the middle must be answered.
func TestMessagesInOrderThenDisconnect(t *testing.T) {
	e := newEnv(t, agentconn.Config{})
	var mu sync.Mutex
	var seq []int
	disconnectedAfter := -1
	e.srv.Subscribe(func(ev agentconn.Event) {
		switch ev.Kind {
		case agentconn.Message:
			if ev.Action != "seq" {
				return
			}
			var m struct{ N int }
			json.Unmarshal(ev.Data, &m)
			time.Sleep(time.Millisecond) // a slow subscriber fills the queue
			mu.Lock()
			seq = append(seq, m.N)
			mu.Unlock()
		case agentconn.Disconnected:
			mu.Lock()
			disconnectedAfter = len(seq)
			mu.Unlock()
		}
	})
	id := e.identity(0)
	c := e.connect(id, nil)
	pong := make(chan string, 1)
	c.WS.SetPongHandler(func(s string) error { pong <- s; return nil })
	go func() { // the client's reader runs the pong handler
		for {
			if _, _, err := c.WS.ReadMessage(); err != nil {
				return
			}
		}
	}()
	const n = 300
	for i := 0; i < n; i++ {
		if i == n/2 {
			if err := c.WS.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.WS.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"action":"seq","n":%d}`, i))); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case p := <-pong:
		if p != "p1" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no pong")
	}
	c.WS.Close()
	waitFor(t, "disconnect", func() bool { mu.Lock(); defer mu.Unlock(); return disconnectedAfter >= 0 })
	mu.Lock()
	defer mu.Unlock()
	if disconnectedAfter != n || len(seq) != n {
		t.Fatalf("disconnect after %d of %d messages (%d seen)", disconnectedAfter, n, len(seq))
	}
	for i, v := range seq {
		if v != i {
			t.Fatalf("message %d is %d: out of order", i, v)
		}
	}
}

// TestSysInfoHashSentBack checks the server's sysinfo request carries the
// hash of the stored sysinfo, so an unchanged agent need not send it again
// on each reconnect.
func TestSysInfoHashSentBack(t *testing.T) {
	e := newEnv(t, agentconn.Config{})
	id := e.identity(0)
	// sysinfoRequest reads until the server's sysinfo request.
	sysinfoRequest := func(c *simagent.Conn) map[string]any {
		t.Helper()
		c.WS.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, m, err := c.WS.ReadMessage()
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			var req map[string]any
			if json.Unmarshal(m, &req) == nil && req["action"] == "sysinfo" {
				return req
			}
		}
	}
	c := e.connect(id, nil)
	if req := sysinfoRequest(c); req["hash"] != nil {
		t.Fatalf("first request %v: no sysinfo is stored yet", req)
	}
	netinfo := `{"action":"netinfo","netif2":{"lo":[{"address":"127.0.0.1","family":"IPv4"}]}}`
	c.WS.WriteMessage(websocket.TextMessage, []byte(`{"action":"sysinfo","data":{"hardware":{"identifiers":{"cpu_name":"x"}},"hash":"h1"}}`))
	c.WS.WriteMessage(websocket.TextMessage, []byte(netinfo))
	waitFor(t, "sysinfo stored", func() bool {
		e.st.Flush()
		d, err := e.st.Device(nodeID(id))
		return err == nil && d.SysInfoHash == "h1" && len(d.NetInfo) > 0
	})
	c.WS.Close()
	waitFor(t, "unregister", func() bool { _, ok := e.srv.Agent(nodeID(id)); return !ok })

	c2 := e.connect(id, c.Trust)
	if req := sysinfoRequest(c2); req["hash"] != "h1" {
		t.Fatalf("request after reconnect %v, want hash h1", req)
	}
}

// TestCoreInfoKeepsAdminRename: a coreinfo without "name" must not undo a
// rename made while the agent was connected; one with "name" renames.
func TestCoreInfoKeepsAdminRename(t *testing.T) {
	e := newEnv(t, agentconn.Config{})
	id := e.identity(0)
	c := e.connect(id, nil)
	e.st.Flush()
	if _, err := e.st.UpdateDevice(nodeID(id), func(d *store.Device, _ bool) error { d.Name = "renamed by admin"; return nil }); err != nil {
		t.Fatal(err)
	}
	steps := []struct{ msg, want string }{
		{`{"action":"coreinfo","value":"v","caps":14,"osdesc":"Linux"}`, "renamed by admin"},
		{`{"action":"coreinfo","value":"v","caps":14,"osdesc":"Linux","name":"from agent"}`, "from agent"},
	}
	for _, st := range steps {
		c.WS.WriteMessage(websocket.TextMessage, []byte(st.msg))
		waitFor(t, "coreinfo stored", func() bool {
			e.st.Flush()
			d, err := e.st.Device(nodeID(id))
			return err == nil && d.OSDesc == "Linux" && d.Name == st.want
		})
	}
}

func TestCorePushWhenHashDiffers(t *testing.T) {
	e := newEnv(t, agentconn.Config{DefaultCore: []byte("var x = 1;")})
	id := e.identity(0)
	ws, h, err := simagent.Dial(context.Background(), e.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ag, _ := handshake.NewAgent(handshake.AgentConfig{Key: id.Key, CertDER: id.CertDER, ServerID: e.set.ServerID, TLSCertHash: h,
		Info: handshake.AuthInfo{InfoVersion: 1, AgentID: 6, PlatformType: 1, MeshID: e.meshID, Capabilities: 0x118, Hostname: "c"}})
	send := func(ms [][]byte) {
		for _, m := range ms {
			ws.WriteMessage(websocket.BinaryMessage, m)
		}
	}
	send(ag.Start())
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sawCore, sawOK bool
	for !sawOK {
		_, m, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v (core=%v)\n%s", err, sawCore, e.logs)
		}
		if !ag.Done() {
			out, err := ag.Handle(m)
			if err != nil {
				t.Fatal(err)
			}
			send(out)
			continue
		}
		if handshake.IsJSON(m) {
			continue
		}
		cmd, _, p, _ := handshake.DecodeRequest(m)
		switch cmd {
		case handshake.CmdCoreModuleHash:
			send([][]byte{handshake.EncodeRequest(11, 0, nil)}) // no core
		case handshake.CmdCoreModule:
			payload := p[48:]
			sum := sha512.Sum384(payload)
			if !bytes.Equal(sum[:], p[:48]) || !bytes.Equal(payload, append(make([]byte, 4), "var x = 1;"...)) {
				t.Fatalf("core push: hash %x payload %q", p[:48], payload)
			}
			sawCore = true
			send([][]byte{handshake.EncodeRequest(11, 0, sum[:])})
		case handshake.CmdCoreOK:
			sawOK = true
		}
	}
	if !sawCore {
		t.Fatal("no core pushed")
	}
}

// TestBadClientsAreDisconnected feeds misbehaving clients to the server: each
// must be disconnected with a logged reason while a good agent still gets in.
func TestBadClientsAreDisconnected(t *testing.T) {
	e := newEnv(t, agentconn.Config{HandshakeTimeout: 1500 * time.Millisecond})
	victim := e.identity(0)
	thief := e.identity(1)
	cases := []struct {
		name   string
		run    func(ws *websocket.Conn, h [48]byte)
		reason string
	}{
		{"malformed auth request", func(ws *websocket.Conn, h [48]byte) {
			ws.WriteMessage(websocket.BinaryMessage, []byte{0, 1, 1, 2, 3})
		}, "wrong message length"},
		{"post-auth command before auth", func(ws *websocket.Conn, h [48]byte) {
			ws.WriteMessage(websocket.BinaryMessage, []byte{0, 10, 0, 0})
		}, "before authentication"},
		{"garbage JSON", func(ws *websocket.Conn, h [48]byte) {
			ws.WriteMessage(websocket.TextMessage, []byte(`{"action":`))
		}, "pre-auth JSON"},
		{"oversized frame", func(ws *websocket.Conn, h [48]byte) {
			ws.WriteMessage(websocket.BinaryMessage, make([]byte, 200<<10))
		}, "frame over the size limit"},
		{"wrong TLS hash", func(ws *websocket.Conn, h [48]byte) {
			ws.WriteMessage(websocket.BinaryMessage, handshake.AuthRequest{}.Marshal())
		}, "certificate hash mismatch"},
		{"stolen certificate without its key", func(ws *websocket.Conn, h [48]byte) {
			ag, _ := handshake.NewAgent(handshake.AgentConfig{Key: thief.Key, CertDER: victim.CertDER, ServerID: e.set.ServerID, TLSCertHash: h,
				Info: handshake.AuthInfo{InfoVersion: 1, AgentID: 6, MeshID: e.meshID, Capabilities: 0x18}})
			for _, m := range ag.Start() {
				ws.WriteMessage(websocket.BinaryMessage, m)
			}
			for {
				_, m, err := ws.ReadMessage()
				if err != nil {
					return
				}
				out, err := ag.Handle(m)
				if err != nil {
					return
				}
				for _, o := range out {
					ws.WriteMessage(websocket.BinaryMessage, o)
				}
			}
		}, "bad signature"},
		{"unknown device group", func(ws *websocket.Conn, h [48]byte) {
			ag, _ := handshake.NewAgent(handshake.AgentConfig{Key: thief.Key, CertDER: e.identity(1).CertDER, ServerID: e.set.ServerID, TLSCertHash: h,
				Info: handshake.AuthInfo{InfoVersion: 1, AgentID: 6, MeshID: [48]byte{1, 2, 3}, Capabilities: 0x18}})
			for _, m := range ag.Start() {
				ws.WriteMessage(websocket.BinaryMessage, m)
			}
			for {
				_, m, err := ws.ReadMessage()
				if err != nil {
					return
				}
				out, _ := ag.Handle(m)
				for _, o := range out {
					ws.WriteMessage(websocket.BinaryMessage, o)
				}
			}
		}, "unknown device group"},
		{"stall", func(ws *websocket.Conn, h [48]byte) {}, "reason=timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws, h, err := simagent.Dial(context.Background(), e.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.Close()
			start := time.Now()
			tc.run(ws, h)
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
						t.Fatal("server did not disconnect")
					}
					break
				}
			}
			waitFor(t, "logged reason "+tc.reason, func() bool { return strings.Contains(e.logs.String(), tc.reason) })
			if tc.name != "stall" && time.Since(start) > time.Second {
				t.Errorf("disconnect took %v", time.Since(start))
			}
			// The server keeps serving others.
			good := e.connect(e.identity(2), nil)
			good.WS.Close()
		})
	}
	e.st.Flush()
	if _, err := e.st.Device(nodeID(victim)); err == nil {
		t.Fatal("stolen certificate registered the victim's device")
	}
	if n := len(e.srv.Agents()); n > 1 {
		t.Fatalf("%d agents registered", n)
	}
	_ = json.Valid
}

// TestShutdownRecordsEveryDisconnect shuts agent.ashx down with agents
// connected (its closers work in parallel) and reads the store afterwards:
// every device's LastSeen is from the shutdown, and each has a disconnect
// event with the shutdown's reason after its connect event.
func TestShutdownRecordsEveryDisconnect(t *testing.T) {
	e := newEnv(t, agentconn.Config{})
	var ids []simagent.Identity
	for i := range 3 {
		id := e.identity(i)
		e.connect(id, nil)
		waitFor(t, "registry", func() bool { _, ok := e.srv.Agent(nodeID(id)); return ok })
		ids = append(ids, id)
	}
	e.st.Flush()
	before := time.Now().UTC()
	e.srv.Shutdown()
	if n := len(e.srv.Agents()); n != 0 {
		t.Fatalf("%d agents still listed after Shutdown", n)
	}
	e.st.Flush()
	for _, id := range ids {
		d, err := e.st.Device(nodeID(id))
		if err != nil {
			t.Fatal(err)
		}
		if d.LastSeen.Before(before) || d.LastSeen.Before(d.LastConnect) {
			t.Errorf("%s: LastSeen %v, want from the shutdown (began %v, connected %v)", d.ID, d.LastSeen, before, d.LastConnect)
		}
		ev, err := e.st.Events(store.EventFilter{NodeID: d.ID})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, x := range ev {
			kinds = append(kinds, x.Kind+":"+x.Msg)
		}
		if len(ev) != 2 || ev[0].Kind != store.EvConnect || ev[1].Kind != store.EvDisconnect || ev[1].Msg != "server shutting down" {
			t.Errorf("%s: events %q, want a connect then the shutdown's disconnect", d.ID, kinds)
		}
	}
}
