package main

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/meshgo/meshagent/agent/core"
	"github.com/meshgo/meshagent/agent/script"
	"github.com/meshgo/meshagent/proto/session"
)

// tunnelTracker records the relay sessions being served, for the core's
// require('tunnel').list() (console `tunnels`). It wraps the session
// handlers, so it sees exactly the sessions that passed the rights and
// consent checks, from the handler's start to its return; tunnels still
// connecting or negotiating are not listed.
type tunnelTracker struct {
	mu   sync.Mutex
	next int
	open map[int]script.Tunnel
}

func newTunnelTracker() *tunnelTracker { return &tunnelTracker{open: map[int]script.Tunnel{}} }

// wrapAll returns handlers that register each session while it runs.
func (t *tunnelTracker) wrapAll(hs map[int]core.SessionHandler) map[int]core.SessionHandler {
	out := make(map[int]core.SessionHandler, len(hs))
	for p, h := range hs {
		out[p] = t.wrap(h)
	}
	return out
}

func (t *tunnelTracker) wrap(h core.SessionHandler) core.SessionHandler {
	return func(ctx context.Context, ch session.Channel, info session.Info) error {
		id := t.add(info)
		defer t.remove(id)
		return h(ctx, ch, info)
	}
}

func (t *tunnelTracker) add(info session.Info) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next++
	t.open[t.next] = script.Tunnel{ID: t.next, Protocol: info.Protocol, Kind: protocolName(info.Protocol),
		UserID: info.UserID, Username: info.Username, RemoteAddr: info.RemoteIP, Started: time.Now()}
	return t.next
}

func (t *tunnelTracker) remove(id int) {
	t.mu.Lock()
	delete(t.open, id)
	t.mu.Unlock()
}

// list returns the open sessions, oldest first.
func (t *tunnelTracker) list() []script.Tunnel {
	t.mu.Lock()
	out := make([]script.Tunnel, 0, len(t.open))
	for _, x := range t.open {
		out = append(out, x)
	}
	t.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// protocolName names a relay protocol (sessions.md §1.7) for people.
func protocolName(p int) string {
	switch p {
	case session.ProtoTerminal:
		return "terminal"
	case session.ProtoDesktop:
		return "desktop"
	case session.ProtoFiles:
		return "files"
	case session.ProtoPowerShell:
		return "powershell"
	case session.ProtoUserShell:
		return "user terminal"
	case session.ProtoUserPS:
		return "user powershell"
	case session.ProtoFileTransfer:
		return "file download"
	}
	return "other"
}
