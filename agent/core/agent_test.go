package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/internal/tlsmitm"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/reconnect"
)

// recordingHost is a ScriptHost that records what the agent asks of it.
type recordingHost struct {
	mu        sync.Mutex
	started   []string
	delivered [][]byte
	running   string
}

func (h *recordingHost) Start(name string, src []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = append(h.started, string(src))
	h.running = name
	return nil
}
func (h *recordingHost) Deliver(msg []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.delivered = append(h.delivered, msg)
}
func (h *recordingHost) Stop() { h.mu.Lock(); h.running = ""; h.mu.Unlock() }
func (h *recordingHost) Running() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.running
}
func (h *recordingHost) snapshot() (started []string, delivered int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.started...), len(h.delivered)
}

var (
	serverKeyOnce sync.Once
	serverKey     *rsa.PrivateKey
	serverCert    []byte
	testIdentity  *Identity
)

func testKeys(t *testing.T) (*rsa.PrivateKey, []byte, *Identity) {
	serverKeyOnce.Do(func() {
		var err error
		serverKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "MeshCentralAgentServer-test"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		serverCert, _ = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &serverKey.PublicKey, serverKey)
		testIdentity, err = NewIdentity(2048)
		if err != nil {
			panic(err)
		}
	})
	return serverKey, serverCert, testIdentity
}

// fakeServer is a MeshCentral-like agent.ashx built on the handshake
// package's server role. After authentication it sends the binary
// commands in post, in order, and reports what the agent sent back.
type fakeServer struct {
	t        *testing.T
	srv      *httptest.Server
	key      *rsa.PrivateKey
	cert     []byte
	mode     string // "", "garbage", "stall", "command-before-auth"
	post     [][]byte
	mu       sync.Mutex
	results  []handshake.ServerResult
	received [][]byte
	conns    int
	// serve, if set, takes over each authenticated connection (n counts
	// connections from 1) instead of sending post and recording.
	serve func(ws *websocket.Conn, n int)
}

func newFakeServer(t *testing.T, mode string, post ...[]byte) *fakeServer {
	key, cert, _ := testKeys(t)
	fs := &fakeServer{t: t, key: key, cert: cert, mode: mode, post: post}
	fs.srv = httptest.NewUnstartedServer(http.HandlerFunc(fs.handle))
	fs.srv.StartTLS()
	t.Cleanup(fs.srv.Close)
	return fs
}

func (fs *fakeServer) tlsHash() [handshake.HashLen]byte {
	return handshake.CertHash(fs.srv.Certificate().Raw)
}

func (fs *fakeServer) handle(w http.ResponseWriter, r *http.Request) {
	if fs.mode == "busy" { // server-lite under a reconnect storm
		w.Header().Set("Retry-After", "2")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	fs.mu.Lock()
	fs.conns++
	fs.mu.Unlock()
	switch fs.mode {
	case "garbage":
		ws.WriteMessage(websocket.BinaryMessage, []byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3})
		ws.ReadMessage()
		return
	case "stall":
		for { // read and never answer
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
		}
	case "command-before-auth":
		// An impostor that skips authentication and goes straight to
		// management: push a core and a console command.
		core := []byte("\x00\x00\x00\x00evil()")
		h := sha512.Sum384(core)
		ws.WriteMessage(websocket.BinaryMessage, handshake.EncodeRequest(handshake.CmdCoreModule, 0, append(h[:], core...)))
		ws.WriteMessage(websocket.BinaryMessage, []byte(`{"action":"msg","type":"console","value":"eval"}`))
		ws.WriteMessage(websocket.BinaryMessage, handshake.EncodeConfirm())
		ws.ReadMessage()
		return
	}
	accept := fs.tlsHash()
	hs, err := handshake.NewServer(handshake.ServerConfig{Key: fs.key, CertDER: fs.cert,
		AcceptHash: func(h [handshake.HashLen]byte) bool { return h == accept }})
	if err != nil {
		fs.t.Error(err)
		return
	}
	for !hs.Authenticated() {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		out, err := hs.Handle(msg)
		if err != nil {
			return // hold-or-drop: this fake drops
		}
		for _, m := range out {
			ws.WriteMessage(websocket.BinaryMessage, m)
		}
	}
	fs.mu.Lock()
	fs.results = append(fs.results, hs.Result())
	fs.mu.Unlock()
	ws.WriteMessage(websocket.BinaryMessage, handshake.EncodeConfirm())
	if fs.serve != nil {
		fs.mu.Lock()
		n := fs.conns
		fs.mu.Unlock()
		fs.serve(ws, n)
		return
	}
	for _, m := range fs.post {
		ws.WriteMessage(websocket.BinaryMessage, m)
	}
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return
		}
		fs.mu.Lock()
		fs.received = append(fs.received, msg)
		fs.mu.Unlock()
	}
}

func (fs *fakeServer) msh(serverID []byte) *MSH {
	u := strings.Replace(fs.srv.URL, "https://", "wss://", 1) + "/agent.ashx"
	m, err := ParseMSH([]byte(fmt.Sprintf("MeshServer=%s\nServerID=%X\nMeshID=0x%s\nMeshName=test\n",
		u, serverID, strings.Repeat("AB", 48))))
	if err != nil {
		fs.t.Fatal(err)
	}
	return m
}

func (fs *fakeServer) snapshot() (results []handshake.ServerResult, received [][]byte, conns int) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]handshake.ServerResult(nil), fs.results...), append([][]byte(nil), fs.received...), fs.conns
}

type agentRun struct {
	events chan Event
	cancel context.CancelFunc
	done   chan struct{}
	host   *recordingHost
	agent  *Agent
}

func startAgent(t *testing.T, settings *MSH, dir string, mutate func(*Config)) *agentRun {
	_, _, id := testKeys(t)
	r := &agentRun{events: make(chan Event, 100), done: make(chan struct{}), host: &recordingHost{}}
	cfg := Config{
		Settings: settings, Identity: id, DataDir: dir, Host: r.host,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
		DefaultCore:      []byte("default core"),
		HandshakeTimeout: 500 * time.Millisecond, BackoffMin: 50 * time.Millisecond, BackoffMax: 400 * time.Millisecond, BackoffSpread: 50 * time.Millisecond,
		OnEvent: func(e Event) {
			select {
			case r.events <- e:
			default:
			}
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.agent = a
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { a.Run(ctx); close(r.done) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *agentRun) wait(t *testing.T, kind EventKind) Event {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-r.events:
			if e.Kind == kind {
				return e
			}
		case <-timeout:
			t.Fatalf("no %v event", kind)
		}
	}
}

func corePush(script string) (payload []byte, hash [handshake.HashLen]byte) {
	core := append([]byte{0, 0, 0, 0}, script...)
	hash = sha512.Sum384(core)
	return handshake.EncodeRequest(handshake.CmdCoreModule, 0, append(hash[:], core...)), hash
}

func TestFullThenSkipPathAndCoreLifecycle(t *testing.T) {
	push, pushHash := corePush("pushed()")
	badPush := append([]byte(nil), push...)
	badPush[len(badPush)-1] ^= 1
	fs := newFakeServer(t, "",
		handshake.EncodeRequest(handshake.CmdAgentHash, 0, nil),
		handshake.EncodeRequest(handshake.CmdCoreModuleHash, 0, nil),
		badPush, // refused: hash does not match content
		push,
		handshake.EncodeRequest(handshake.CmdCoreModuleHash, 0, nil),
	)
	key, _, _ := testKeys(t)
	sid := handshake.NodeID(&key.PublicKey)
	dir := t.TempDir()
	r := startAgent(t, fs.msh(sid[:]), dir, nil)
	if e := r.wait(t, EventAuthenticated); e.Skip {
		t.Fatal("first connection took the skip path")
	}
	deadline := time.Now().Add(5 * time.Second)
	var rec [][]byte
	for time.Now().Before(deadline) {
		if _, rec, _ = fs.snapshot(); len(rec) >= 5 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := []struct {
		cmd  uint16
		data []byte
	}{
		{handshake.CmdAgentTag, nil},
		{handshake.CmdAgentHash, zeroHash[:]},
		{handshake.CmdCoreModuleHash, zeroHash[:]}, // no stored core: "custom"
		{handshake.CmdCoreModuleHash, zeroHash[:]}, // bad push refused, still nothing stored
		{handshake.CmdCoreModuleHash, pushHash[:]},
	}
	if len(rec) < len(want) {
		t.Fatalf("agent sent %d messages, want %d", len(rec), len(want))
	}
	for i, w := range want {
		cmd, _ := handshake.Command(rec[i])
		var data []byte
		if cmd != handshake.CmdAgentTag {
			_, _, data, _ = handshake.DecodeRequest(rec[i])
		}
		if cmd != w.cmd || !bytes.Equal(data, w.data) {
			t.Errorf("message %d: cmd %d data %x, want cmd %d data %x", i, cmd, data, w.cmd, w.data)
		}
	}
	if started, _ := r.host.snapshot(); len(started) != 1 || started[0] != "pushed()" {
		t.Fatalf("host started %q, want only the verified push", started)
	}
	res, _, _ := fs.snapshot()
	if res[0].NodeID != testIdentity.NodeID || res[0].Info.AgentID != DefaultAgentID() ||
		res[0].Info.Capabilities&(handshake.CapConsole|handshake.CapJavaScript) != 0x18 {
		t.Errorf("server saw %+v", res[0].Info)
	}

	// A restart takes the skip path and reports the stored core's hash.
	r.cancel()
	<-r.done
	fs2post := handshake.EncodeRequest(handshake.CmdCoreModuleHash, 0, nil)
	fs.post = [][]byte{fs2post}
	r2 := startAgent(t, fs.msh(sid[:]), dir, nil)
	if e := r2.wait(t, EventAuthenticated); !e.Skip {
		t.Fatal("restart did not take the skip path")
	}
}

func TestCoreOKStartsDefaultCoreAndClearStops(t *testing.T) {
	fs := newFakeServer(t, "",
		handshake.EncodeRequest(handshake.CmdCoreOK, 0, nil),
		[]byte(`{"action":"sysinfo"}`),
		handshake.EncodeRequest(handshake.CmdCoreModule, 0, nil), // clear
	)
	key, _, _ := testKeys(t)
	sid := handshake.NodeID(&key.PublicKey)
	r := startAgent(t, fs.msh(sid[:]), t.TempDir(), nil)
	r.wait(t, EventCoreStarted)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if _, n := r.host.snapshot(); n == 1 && r.host.Running() == "" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	started, delivered := r.host.snapshot()
	if len(started) != 1 || started[0] != "default core" || delivered != 1 || r.host.Running() != "" {
		t.Fatalf("started %q, delivered %d, running %q", started, delivered, r.host.Running())
	}
}

// Each of these servers must never authenticate the agent, and nothing it
// sends may reach the script host or the core store.
func TestAgentNeverTrustsAFailingServer(t *testing.T) {
	_, _, _ = testKeys(t)
	other, _ := rsa.GenerateKey(rand.Reader, 1024)
	wrongID := handshake.NodeID(&other.PublicKey)
	tests := []struct {
		name     string
		mode     string
		serverID func(fs *fakeServer) []byte
	}{
		{"agent certificate does not match ServerID", "", func(*fakeServer) []byte { return wrongID[:] }},
		{"garbage", "garbage", nil},
		{"stalls mid-handshake", "stall", nil},
		{"management commands before authentication", "command-before-auth", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			push, _ := corePush("evil()")
			fs := newFakeServer(t, tc.mode, push, []byte(`{"action":"msg","type":"console","value":"eval"}`))
			key, _, _ := testKeys(t)
			sid := handshake.NodeID(&key.PublicKey)
			id := sid[:]
			if tc.serverID != nil {
				id = tc.serverID(fs)
			}
			dir := t.TempDir()
			r := startAgent(t, fs.msh(id), dir, nil)
			var delays []time.Duration
			for len(delays) < 4 {
				select {
				case e := <-r.events:
					switch e.Kind {
					case EventAuthenticated:
						t.Fatal("agent authenticated a failing server")
					case EventDisconnected:
						if e.Err == nil {
							t.Fatal("disconnect without a reason")
						}
						delays = append(delays, e.Delay)
					}
				case <-time.After(15 * time.Second):
					t.Fatalf("agent stopped retrying after %d attempts", len(delays))
				}
			}
			if delays[3] <= delays[0] {
				t.Errorf("no backoff: delays %v", delays)
			}
			if started, delivered := r.host.snapshot(); len(started) > 0 || delivered > 0 {
				t.Fatalf("host got started=%q delivered=%d", started, delivered)
			}
			if _, _, ok := r.agent.state.core(); ok {
				t.Fatal("a core was stored")
			}
			if r.agent.state.trusted(fs.msh(id).Get(MSHMeshServer)) != nil {
				t.Fatal("the server's certificate was trusted")
			}
		})
	}
}

// A TLS proxy on loopback that presents its own certificate and forwards
// the WebSocket bytes to the real server: the server refuses the agent's
// hash and the agent never authenticates.
func TestTLSManInTheMiddleIsRefused(t *testing.T) {
	fs := newFakeServer(t, "")
	key, _, _ := testKeys(t)
	sid := handshake.NodeID(&key.PublicKey)
	proxy := tlsmitm.Start(t, strings.TrimPrefix(fs.srv.URL, "https://"))
	m := fs.msh(sid[:])
	m.Set(MSHMeshServer, "wss://"+proxy+"/agent.ashx")
	r := startAgent(t, m, t.TempDir(), nil)
	for i := 0; i < 2; i++ {
		select {
		case e := <-r.events:
			if e.Kind == EventAuthenticated {
				t.Fatal("authenticated through a MITM")
			}
			if e.Kind == EventDisconnected {
				i++
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no disconnect")
		}
	}
	if res, _, conns := fs.snapshot(); len(res) != 0 || conns == 0 {
		t.Fatalf("server results %d, connections %d", len(res), conns)
	}
}

// A server that refuses the upgrade busy with a Retry-After gets the agent
// back within [Retry-After, 2 Retry-After), not on the agent's own (here
// 50-400 ms) schedule.
func TestRetryAfterIsHonoured(t *testing.T) {
	fs := newFakeServer(t, "busy")
	key, _, _ := testKeys(t)
	sid := handshake.NodeID(&key.PublicKey)
	r := startAgent(t, fs.msh(sid[:]), t.TempDir(), nil)
	expectRetryAfter2s(t, r, func(err error) {
		if got := reconnect.RetryAfter(err); got != 2*time.Second {
			t.Fatalf("error %v carries Retry-After %v", err, got)
		}
	})
}

// expectRetryAfter2s waits for two refused attempts, checks each one's
// error with check, and checks that the agent came back within
// [Retry-After, 2 Retry-After) for a Retry-After of 2 s.
func expectRetryAfter2s(t *testing.T, r *agentRun, check func(error)) {
	t.Helper()
	for n := 0; n < 2; {
		select {
		case e := <-r.events:
			if e.Kind != EventDisconnected {
				continue
			}
			n++
			check(e.Err)
			if e.Delay < 2*time.Second || e.Delay >= 4*time.Second {
				t.Fatalf("retry in %v after Retry-After: 2", e.Delay)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no refused attempt")
		}
	}
}

// A server that refuses before TLS (server-lite under a reconnect storm: a
// plain 503 with Retry-After in answer to the ClientHello) gets the agent
// back within [Retry-After, 2 Retry-After) too, not on the failure backoff.
func TestRetryAfterBeforeTLSIsHonoured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write(reconnect.PlainRefusal(2))
			c.(*net.TCPConn).CloseWrite()
			go func() {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				io.Copy(io.Discard, c)
				c.Close()
			}()
		}
	}()
	key, _, _ := testKeys(t)
	sid := handshake.NodeID(&key.PublicKey)
	m, err := ParseMSH([]byte(fmt.Sprintf("MeshServer=wss://%s/agent.ashx\nServerID=%X\nMeshID=0x%s\nMeshName=test\n",
		ln.Addr(), sid[:], strings.Repeat("AB", 48))))
	if err != nil {
		t.Fatal(err)
	}
	r := startAgent(t, m, t.TempDir(), func(c *Config) { c.BackoffMax = time.Second })
	expectRetryAfter2s(t, r, func(err error) {
		var ref *reconnect.ErrRefused
		if !errors.As(err, &ref) || !ref.BeforeTLS || reconnect.RetryAfter(err) != 2*time.Second {
			t.Fatalf("error %v: want a refusal before TLS with Retry-After 2 s", err)
		}
	})
}

// A server whose port refuses connections (restarting, down) costs nothing
// to retry: the agent's window stops at BackoffRefusedMax instead of
// doubling towards BackoffMax, so it is back soon after the server listens.
func TestRefusedConnectionsHoldTheBackoff(t *testing.T) {
	fs := newFakeServer(t, "")
	key, _, _ := testKeys(t)
	sid := handshake.NodeID(&key.PublicKey)
	settings := fs.msh(sid[:])
	fs.srv.Close() // nothing listens on its port now
	const refusedMax = 200 * time.Millisecond
	r := startAgent(t, settings, t.TempDir(), func(c *Config) {
		c.BackoffMax, c.BackoffRefusedMax = time.Minute, refusedMax
	})
	// Doubling from 50 ms would pass 200 ms at the fourth failure.
	for n := 0; n < 8; {
		select {
		case e := <-r.events:
			if e.Kind != EventDisconnected {
				continue
			}
			n++
			if !errors.Is(e.Err, syscall.ECONNREFUSED) && runtime.GOOS != "windows" {
				t.Skipf("attempt %d: %v is not connection refused (something took the port?)", n, e.Err)
			}
			if e.Delay > refusedMax {
				t.Fatalf("attempt %d: retry in %v while refused (cap %v)", n, e.Delay, refusedMax)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no refused attempt")
		}
	}
}

func TestCapabilities(t *testing.T) {
	m, _ := ParseMSH([]byte("AgentCapabilities=0x00000100"))
	a := &Agent{cfg: Config{Settings: m, Temporary: true}}
	if got := a.Capabilities(); got != 0x138 {
		t.Fatalf("caps %#x", got)
	}
}

// MeshCentral asks for the core hash once per connection; a second request
// is a console push of its default, recovery or tiny core. The zero hash
// keeps our core, and the server's agent error log gets one line saying so.
func TestCorePushKeptIsInErrorLog(t *testing.T) {
	ask := handshake.EncodeRequest(handshake.CmdCoreModuleHash, 0, nil)
	fs := newFakeServer(t, "", ask, ask)
	key, _, _ := testKeys(t)
	sid := handshake.NodeID(&key.PublicKey)
	r := startAgent(t, fs.msh(sid[:]), t.TempDir(), nil)
	r.wait(t, EventAuthenticated)
	count := func() (hashes int, logs []string) {
		_, rec, _ := fs.snapshot()
		for _, m := range rec {
			if len(m) > 0 && m[0] == '{' {
				var e struct {
					Action string `json:"action"`
					Log    []struct {
						T int64  `json:"t"`
						M string `json:"m"`
					} `json:"log"`
				}
				if json.Unmarshal(m, &e) == nil && e.Action == "errorlog" && len(e.Log) == 1 && e.Log[0].T > 0 {
					logs = append(logs, e.Log[0].M)
				}
				continue
			}
			if cmd, _ := handshake.Command(m); cmd == handshake.CmdCoreModuleHash {
				hashes++
			}
		}
		return hashes, logs
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if h, l := count(); h == 2 && len(l) > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	h, logs := count()
	if h != 2 || len(logs) != 1 || !strings.Contains(logs[0], "zero core hash by design") {
		t.Fatalf("%d hash replies, errorlog lines %q; want 2 and exactly one about the kept core", h, logs)
	}
}
