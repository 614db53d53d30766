package core

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// OpenSession describes one relay session being served: from the moment it
// passed the rights and consent checks until its handler returned.
// Tunnels still connecting or negotiating are not open sessions.
type OpenSession struct {
	ID         int       // sequence number, unique while the agent runs
	Protocol   int       // relay protocol number (session.Proto*)
	Kind       string    // readable protocol name, e.g. "terminal" (ProtocolName)
	UserID     string    // e.g. "user//admin"
	Username   string    // may be empty
	RemoteAddr string    // the user's address as the server saw it
	Started    time.Time // when the session's handler started
}

// Sessions lists the relay sessions open now, oldest first. It is the one
// record of open sessions: the script API's tunnel list, the session
// counts sent to the server and the audit all come from it.
func (a *Agent) Sessions() []OpenSession { return a.sessions.list() }

// registry is the agent's one record of open relay sessions.
type registry struct {
	mu   sync.Mutex
	next int
	byID map[int]OpenSession
}

// open records a session and reports the new per-user count of its kind
// to the server ({"action":"sessions"}), so the server's UI shows who is
// connected. It returns the session's id for close.
func (r *registry) open(a *Agent, info session.Info) int {
	r.mu.Lock()
	if r.byID == nil {
		r.byID = map[int]OpenSession{}
	}
	r.next++
	id := r.next
	r.byID[id] = OpenSession{ID: id, Protocol: info.Protocol, Kind: ProtocolName(info.Protocol),
		UserID: info.UserID, Username: info.Username, RemoteAddr: info.RemoteIP, Started: time.Now()}
	msg := r.countsLocked(sessionKind(info.Protocol))
	r.mu.Unlock()
	a.SendJSON(msg)
	return id
}

// close forgets a session and reports the new counts of its kind.
func (r *registry) close(a *Agent, id int) {
	r.mu.Lock()
	s, ok := r.byID[id]
	delete(r.byID, id)
	var msg []byte
	if ok {
		msg = r.countsLocked(sessionKind(s.Protocol))
	}
	r.mu.Unlock()
	if ok {
		a.SendJSON(msg)
	}
}

// countsLocked builds MeshCentral's "sessions" message for one kind
// (control.md): open sessions of that kind per user.
func (r *registry) countsLocked(kind string) []byte {
	value := map[string]int{}
	for _, s := range r.byID {
		if sessionKind(s.Protocol) == kind {
			value[s.UserID]++
		}
	}
	b, _ := json.Marshal(map[string]any{"action": "sessions", "type": kind, "value": value})
	return b
}

func (r *registry) list() []OpenSession {
	r.mu.Lock()
	out := make([]OpenSession, 0, len(r.byID))
	for _, s := range r.byID {
		out = append(out, s)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ProtocolName names a relay protocol (sessions.md §1.7) for people, as
// the console's `tunnels` shows it.
func ProtocolName(p int) string {
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
