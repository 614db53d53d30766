package main

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/core"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
)

// Every relay protocol the agent serves has a handler, and each declares
// the WebRTC policy the reference follows: desktop and files may switch
// (the desktop with fragmenting), terminals and the protocol-10 download
// stay on the relay (sessions.md §5.1).
func TestSessionHandlers(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	hs := sessionHandlers(log, func() *core.Agent { return nil }, newUserSession(log, false), t.TempDir())
	want := map[int]session.UpgradePolicy{
		session.ProtoTerminal: {}, session.ProtoPowerShell: {}, session.ProtoUserShell: {}, session.ProtoUserPS: {},
		session.ProtoDesktop:      {Allow: true, FragmentBinary: true},
		session.ProtoFiles:        {Allow: true},
		session.ProtoFileTransfer: {},
	}
	if len(hs) != len(want) {
		t.Errorf("%d handlers, want %d", len(hs), len(want))
	}
	for p, policy := range want {
		h, ok := hs[p]
		if !ok || h.Serve == nil {
			t.Errorf("protocol %d has no handler", p)
			continue
		}
		if h.WebRTC != policy {
			t.Errorf("protocol %d WebRTC policy %+v, want %+v", p, h.WebRTC, policy)
		}
	}
	caps := uint32(coreCaps())
	if caps&(handshake.CapTerminal|handshake.CapFiles|handshake.CapConsole) != handshake.CapTerminal|handshake.CapFiles|handshake.CapConsole {
		t.Errorf("core caps %#x lack terminal, files or console", caps)
	}
}

// The script API's tunnel list is the core's registry, field for field.
func TestScriptTunnels(t *testing.T) {
	now := time.Now()
	got := scriptTunnels([]core.OpenSession{{ID: 3, Protocol: 2, Kind: "desktop", UserID: "user//a", Username: "a", RemoteAddr: "10.0.0.1", Started: now}})
	if len(got) != 1 || got[0].ID != 3 || got[0].Protocol != 2 || got[0].Kind != "desktop" || got[0].UserID != "user//a" ||
		got[0].Username != "a" || got[0].RemoteAddr != "10.0.0.1" || !got[0].Started.Equal(now) {
		t.Errorf("tunnels %+v", got)
	}
}

// trimPolicy: activity arms a trim; a session starting while one is pending
// trims at once, at most once per trimQuiet.
func TestTrimPolicy(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		kind core.EventKind
		at   time.Duration // after t0
		want trimAction
	}
	for _, tc := range []struct {
		name  string
		fired time.Duration // the armed timer fired at t0+fired (0: never)
		steps []step
	}{
		{"start-up arms a trim", 0, []step{
			{core.EventCoreStarted, 0, trimArm},
			{core.EventAuthenticated, time.Second, trimArm},
		}},
		{"a session within the quiet period trims at once", 0, []step{
			{core.EventCoreStarted, 0, trimArm},
			{core.EventSessionStarted, 2 * time.Second, trimNow},
		}},
		{"nothing pending after the timer fired: no trim", 5 * time.Second, []step{
			{core.EventCoreStarted, 0, trimArm},
			{core.EventSessionStarted, 6 * time.Second, trimNone},
		}},
		{"back-to-back sessions: at most one trim per quiet period", 0, []step{
			{core.EventCoreStarted, 0, trimArm},
			{core.EventSessionStarted, time.Second, trimNow},
			{core.EventSessionEnded, 2 * time.Second, trimArm},
			{core.EventSessionStarted, 3 * time.Second, trimNone},
			{core.EventSessionEnded, 4 * time.Second, trimArm},
			{core.EventSessionStarted, 6 * time.Second, trimNow},
		}},
		{"a session with nothing pending: no trim", 0, []step{
			{core.EventSessionStarted, 0, trimNone},
			{core.EventDialing, time.Second, trimNone},
			{core.EventDisconnected, 2 * time.Second, trimNone},
		}},
	} {
		var p trimPolicy
		for i, s := range tc.steps {
			if tc.fired != 0 && s.at >= tc.fired && p.pending {
				p.trimmed(t0.Add(tc.fired))
			}
			if got := p.event(s.kind, t0.Add(s.at)); got != s.want {
				t.Errorf("%s: step %d (%v at %v): %d, want %d", tc.name, i, s.kind, s.at, got, s.want)
			}
		}
	}
}
