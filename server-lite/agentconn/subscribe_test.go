package agentconn_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/store"
)

// TestSlowSubscriberDropsInOrder: a subscriber that stops handling events
// does not stall the agent's read loop; it later gets the events that fit its queue, in order, then the
// next one with the number it missed in Lost, and each burst of drops is
// logged once.
func TestSlowSubscriberDropsInOrder(t *testing.T) {
	const queue, n = 8, 40
	e := newBareEnv(t, agentconn.Config{SubscriberQueue: queue})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server's Shutdown, which drains subscribers
	var mu sync.Mutex
	var slow []agentconn.Event
	entered := make(chan struct{}, 1)
	e.srv.Subscribe(func(ev agentconn.Event) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		mu.Lock()
		slow = append(slow, ev)
		mu.Unlock()
	})
	id := e.identity(0)
	c := e.connect(id, nil)
	pong := make(chan struct{}, 1)
	c.WS.SetPongHandler(func(string) error { pong <- struct{}{}; return nil })
	go func() { // the client's reader runs the pong handler
		for {
			if _, _, err := c.WS.ReadMessage(); err != nil {
				return
			}
		}
	}()
	seqOf := func(ev agentconn.Event) int {
		var m struct{ N int }
		if ev.Kind != agentconn.Message || ev.Action != "seq" || json.Unmarshal(ev.Data, &m) != nil {
			return -1
		}
		return m.N
	}
	// The subscriber now holds the connect event: its queue is empty.
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no connect event")
	}
	for i := 0; i < n; i++ {
		if err := c.WS.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"action":"seq","n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	// The blocked subscriber does not hold up the agent's read loop (more
	// messages than the inbox holds were sent): a ping is still answered.
	if err := c.WS.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(5*time.Second)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-pong:
	case <-time.After(10 * time.Second):
		t.Fatal("no pong while a subscriber is blocked: the read loop stalled")
	}
	unblock()
	// The slow subscriber handles the connect it held and its full queue;
	// then one more event, queued after the drops, carries the count.
	waitFor(t, "slow subscriber to catch up", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(slow) >= 1+queue
	})
	if err := c.WS.WriteMessage(websocket.TextMessage, []byte(`{"action":"seq","n":1000}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "slow subscriber", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(slow) > 0 && seqOf(slow[len(slow)-1]) == 1000
	})
	mu.Lock()
	defer mu.Unlock()
	last, lost := -1, 0
	for _, ev := range slow {
		lost += ev.Lost
		if s := seqOf(ev); s >= 0 {
			if s <= last {
				t.Fatalf("slow subscriber: %d after %d: out of order", s, last)
			}
			last = s
		}
	}
	if lost == 0 || len(slow)+lost < n+1 {
		t.Fatalf("slow subscriber got %d events and Lost totals %d; want drops counted", len(slow), lost)
	}
	if ev := slow[len(slow)-1]; ev.Lost == 0 {
		t.Fatalf("the event after the drops has Lost 0: %+v", ev)
	}
	// Each burst of drops is logged once.
	bursts := 0
	for _, ev := range slow {
		if ev.Lost > 0 {
			bursts++
		}
	}
	if got := strings.Count(e.logs.String(), "event subscriber fell behind"); got != bursts {
		t.Fatalf("%d drop bursts logged %d times, want once each:\n%s", bursts, got, e.logs.String())
	}
}

// newBareEnv serves agent.ashx alone, without the rest of server-lite:
// the whole server's admin API is a subscriber too and would share the
// tiny queue, mixing its drops into the ones this test counts.
func newBareEnv(t *testing.T, cfg agentconn.Config) *bareEnv {
	t.Helper()
	dir := t.TempDir()
	set, _, err := certs.LoadOrCreate(filepath.Join(dir, "data"), certs.Options{AgentKeyBits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	g, _ := st.CreateGroup("g")
	lb := &logBuf{}
	cfg.Certs, cfg.Store = set, st
	cfg.Logger = slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := agentconn.New(cfg)
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = &tls.Config{Certificates: []tls.Certificate{set.Web}}
	hs.StartTLS()
	t.Cleanup(func() { hs.CloseClientConnections(); hs.Close(); srv.Shutdown(); st.Close() })
	e := &bareEnv{t: t, srv: srv, set: set, url: "wss://" + hs.Listener.Addr().String() + "/agent.ashx", logs: lb}
	id, _ := g.MeshIDBytes()
	copy(e.meshID[:], id)
	return e
}

type bareEnv struct {
	t      *testing.T
	srv    *agentconn.Server
	set    *certs.Set
	url    string
	meshID [48]byte
	logs   *logBuf
}

func (e *bareEnv) identity(i int) simagent.Identity {
	id, err := simagent.NewIdentity(testKey(e.t, i))
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *bareEnv) connect(id simagent.Identity, trusted []byte) *simagent.Conn {
	e.t.Helper()
	c, err := simagent.Connect(context.Background(), simagent.Options{URL: e.url, ServerID: e.set.ServerID, MeshID: e.meshID, Identity: id, Trusted: trusted})
	if err != nil {
		e.t.Fatalf("connect: %v\nserver log:\n%s", err, e.logs)
	}
	e.t.Cleanup(func() { c.WS.Close() })
	return c
}

// logBuf collects log output so tests can check what was logged.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
