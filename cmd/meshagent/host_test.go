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
