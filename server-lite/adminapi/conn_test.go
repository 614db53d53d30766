package adminapi

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestSendEventShedsAndTells checks that live events beyond half the send
// queue are dropped, replies still fit, and the log says when dropping
// starts and how many were lost once the session keeps up again.
func TestSendEventShedsAndTells(t *testing.T) {
	var logs bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&logs, nil))}
	c := &conn{s: s, userID: "user//admin", ip: "127.0.0.1", out: make(chan []byte, 8), closed: make(chan struct{})}
	for range 10 {
		c.sendEvent(map[string]any{"action": "event"})
	}
	if n := len(c.out); n != 5 {
		t.Fatalf("%d events queued, want 5 (up to just over half of 8)", n)
	}
	c.send(map[string]any{"action": "reply"}) // a reply still fits
	if n := len(c.out); n != 6 {
		t.Fatalf("reply not queued: %d in queue", n)
	}
	if got := strings.Count(logs.String(), "dropping its live events"); got != 1 {
		t.Errorf("%d 'dropping' lines, want 1:\n%s", got, logs.String())
	}
	if strings.Contains(logs.String(), "caught up") {
		t.Errorf("'caught up' logged while still behind:\n%s", logs.String())
	}
	for len(c.out) > 0 {
		<-c.out
	}
	c.sendEvent(map[string]any{"action": "event"})
	if n := len(c.out); n != 1 {
		t.Fatalf("%d queued after catching up, want 1", n)
	}
	if !strings.Contains(logs.String(), "caught up") || !strings.Contains(logs.String(), "dropped=5") {
		t.Errorf("no 'caught up' line with dropped=5:\n%s", logs.String())
	}
	c.sendEvent(map[string]any{"action": "event"})
	if got := strings.Count(logs.String(), "caught up"); got != 1 {
		t.Errorf("%d 'caught up' lines, want 1", got)
	}
}
