package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/core"
	"github.com/meshgo/meshagent/proto/session"
)

// The tracker lists a session exactly while its handler runs, with what
// the session info says, and every real protocol handler is wrapped.
func TestTunnelTracker(t *testing.T) {
	tr := newTunnelTracker()
	release := make(chan struct{})
	started := make(chan struct{}, 2)
	errDone := errors.New("handler done")
	hs := tr.wrapAll(map[int]core.SessionHandler{
		session.ProtoTerminal: func(ctx context.Context, ch session.Channel, info session.Info) error {
			started <- struct{}{}
			<-release
			return errDone
		},
		session.ProtoFiles: func(ctx context.Context, ch session.Channel, info session.Info) error {
			started <- struct{}{}
			<-release
			return nil
		},
	})
	if l := tr.list(); len(l) != 0 {
		t.Fatalf("list before any session: %v", l)
	}
	before := time.Now()
	done := make(chan error, 2)
	run := func(p int, info session.Info) {
		a, _ := session.Pipe(1)
		go func() { done <- hs[p](context.Background(), a, info) }()
		<-started
	}
	run(session.ProtoTerminal, session.Info{Protocol: session.ProtoTerminal, UserID: "user//admin", Username: "admin", RemoteIP: "10.0.0.5"})
	run(session.ProtoFiles, session.Info{Protocol: session.ProtoFiles, UserID: "user//bob"})

	l := tr.list()
	if len(l) != 2 {
		t.Fatalf("list with two sessions: %v", l)
	}
	a, b := l[0], l[1]
	if a.ID >= b.ID || a.Protocol != 1 || a.Kind != "terminal" || a.UserID != "user//admin" || a.Username != "admin" || a.RemoteAddr != "10.0.0.5" ||
		b.Protocol != 5 || b.Kind != "files" || b.UserID != "user//bob" {
		t.Errorf("list %+v", l)
	}
	if a.Started.Before(before) || a.Started.After(time.Now()) {
		t.Errorf("start time %v not during the test", a.Started)
	}

	close(release)
	gotErr := []error{<-done, <-done}
	if !errors.Is(gotErr[0], errDone) && !errors.Is(gotErr[1], errDone) {
		t.Errorf("handler error not passed through: %v", gotErr)
	}
	if l := tr.list(); len(l) != 0 {
		t.Errorf("list after the sessions ended: %v", l)
	}

	// The agent's real handler table is wrapped entry for entry.
	agentHandlers := sessionHandlers(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if w := tr.wrapAll(agentHandlers); len(w) != len(agentHandlers) {
		t.Errorf("wrapped %d handlers of %d", len(w), len(agentHandlers))
	}
	for _, p := range []int{1, 2, 5, 6, 8, 9, 10} {
		if protocolName(p) == "other" {
			t.Errorf("protocol %d has no name", p)
		}
	}
}
