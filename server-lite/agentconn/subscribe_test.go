package agentconn_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/server-lite/agentconn"
)

// TestSlowSubscriberDropsInOrder: a subscriber that stops handling events
// does not stall the agent's read loop; it later gets the events that fit its queue, in order, then the
// next one with the number it missed in Lost, and each burst of drops is
// logged once.
func TestSlowSubscriberDropsInOrder(t *testing.T) {
	const queue, n = 8, 40
	e := newEnv(t, agentconn.Config{SubscriberQueue: queue})
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the server's Shutdown, which drains subscribers
	var mu sync.Mutex
	var slow []agentconn.Event
	e.srv.Subscribe(func(ev agentconn.Event) {
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
	// One more event after the drops carries the count.
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
