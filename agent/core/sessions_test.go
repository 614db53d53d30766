package core

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// The registry lists a session exactly from open to close, with what the
// session info says, oldest first, and builds the per-user counts the
// server is sent. (The path through a real relay, where the core opens and
// closes around the handler, is TestTunnelThroughRelay.)
func TestSessionRegistry(t *testing.T) {
	a := &Agent{} // not connected: the counts cannot be sent, which is fine here
	var r registry
	if l := r.list(); len(l) != 0 {
		t.Fatalf("list before any session: %v", l)
	}
	open := func(info session.Info) int {
		return r.open(a, sessionOf(info, ""), sessionKind(info.Protocol), nil)
	}
	before := time.Now()
	id1 := open(session.Info{Protocol: session.ProtoTerminal, UserID: "user//admin", Username: "admin", RemoteIP: "10.0.0.5"})
	id2 := open(session.Info{Protocol: session.ProtoFiles, UserID: "user//bob"})
	open(session.Info{Protocol: session.ProtoFileTransfer, UserID: "user//bob"})

	l := r.list()
	if len(l) != 3 {
		t.Fatalf("list with three sessions: %v", l)
	}
	x, y := l[0], l[1]
	if x.ID != id1 || y.ID != id2 || x.ID >= y.ID || x.Protocol != 1 || x.Kind != "terminal" || x.UserID != "user//admin" || x.Username != "admin" || x.RemoteAddr != "10.0.0.5" ||
		y.Protocol != 5 || y.Kind != "files" || y.UserID != "user//bob" {
		t.Errorf("list %+v", l)
	}
	if x.Started.Before(before) || x.Started.After(time.Now()) {
		t.Errorf("start time %v not during the test", x.Started)
	}
	// Protocols 5 and 10 are both "files" for the server's counts.
	var m struct {
		Action, Type string
		Value        map[string]int
	}
	r.mu.Lock()
	json.Unmarshal(r.countsLocked("files"), &m)
	r.mu.Unlock()
	if m.Action != "sessions" || m.Type != "files" || len(m.Value) != 1 || m.Value["user//bob"] != 2 {
		t.Errorf("files counts %+v", m)
	}

	r.close(a, id1)
	r.close(a, id1) // twice: harmless
	if l := r.list(); len(l) != 2 || l[0].ID != id2 {
		t.Errorf("list after closing the terminal: %v", l)
	}
	for _, p := range []int{1, 2, 5, 6, 8, 9, 10} {
		if ProtocolName(p) == "other" {
			t.Errorf("protocol %d has no name", p)
		}
	}
}

// endtunnel ends exactly the named user's sessions of the named kind, and
// only for a full administrator or the user themself, as MeshCentral's
// agent allows.
func TestEndTunnel(t *testing.T) {
	admin := session.RightAdmin
	rc := session.RightRemoteControl
	tests := []struct {
		name  string
		req   map[string]any
		ended []string // sessions cancelled, by label
		err   bool
	}{
		{"admin ends bob's tcp", map[string]any{"userid": "user//admin", "rights": admin, "xuserid": "user//bob", "protocol": "tcp"}, []string{"bob-tcp"}, false},
		{"admin ends bob's terminal", map[string]any{"userid": "user//admin", "rights": admin, "xuserid": "user//bob", "protocol": "terminal"}, []string{"bob-term"}, false},
		{"bob ends his own files", map[string]any{"userid": "user//bob", "rights": rc, "xuserid": "user//bob", "protocol": "files"}, []string{"bob-files"}, false},
		{"bob may not end carol's", map[string]any{"userid": "user//bob", "rights": rc, "xuserid": "user//carol", "protocol": "tcp"}, nil, true},
		{"no rights given", map[string]any{"userid": "user//bob", "xuserid": "user//carol", "protocol": "tcp"}, nil, true},
		{"guest sessions are separate", map[string]any{"userid": "user//admin", "rights": admin, "xuserid": "user//carol", "guestname": "g1", "protocol": "tcp"}, []string{"carol-guest"}, false},
		{"unknown kind", map[string]any{"userid": "user//admin", "rights": admin, "xuserid": "user//bob", "protocol": "bogus"}, nil, true},
		{"nobody named", map[string]any{"userid": "user//admin", "rights": admin, "protocol": "tcp"}, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := &Agent{log: slog.New(slog.DiscardHandler)}
			var ended []string
			add := func(label, user, guest, kind string) {
				a.sessions.open(a, OpenSession{UserID: user, GuestName: guest}, kind, func() { ended = append(ended, label) })
			}
			add("bob-tcp", "user//bob", "", "tcp")
			add("bob-term", "user//bob", "", "terminal")
			add("bob-files", "user//bob", "", "files")
			add("carol-tcp", "user//carol", "", "tcp")
			add("carol-guest", "user//carol", "g1", "tcp")
			msg, _ := json.Marshal(tc.req)
			err := a.EndTunnel(msg)
			if (err != nil) != tc.err {
				t.Fatalf("EndTunnel: %v, want error %v", err, tc.err)
			}
			if fmt.Sprint(ended) != fmt.Sprint(tc.ended) {
				t.Fatalf("ended %v, want %v", ended, tc.ended)
			}
		})
	}
}
