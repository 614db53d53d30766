package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
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
	Kind       string    // readable protocol name, e.g. "terminal" (ProtocolName), or "tcp"/"udp" for port forwarding
	UserID     string    // e.g. "user//admin"
	Username   string    // may be empty
	GuestName  string    // the guest of a sharing link, empty for the user themself
	RemoteAddr string    // the user's address as the server saw it
	Started    time.Time // when the session's handler started
	Target     string    // host:port of a forwarded session, empty otherwise
}

// Sessions lists the relay sessions open now, oldest first. It is the one
// record of open sessions: the script API's tunnel list, the session
// counts sent to the server and the audit all come from it.
func (a *Agent) Sessions() []OpenSession { return a.sessions.list() }

// sessionOf describes a negotiated relay session for the registry.
func sessionOf(info session.Info, guest string) OpenSession {
	return OpenSession{Protocol: info.Protocol, Kind: ProtocolName(info.Protocol), UserID: info.UserID,
		Username: info.Username, GuestName: guest, RemoteAddr: info.RemoteIP}
}

// registry is the agent's one record of open relay sessions.
type registry struct {
	mu   sync.Mutex
	next int
	byID map[int]*entry
}

type entry struct {
	OpenSession
	count  string             // the kind MeshCentral counts it under: kvm, terminal, files, tcp, udp
	cancel context.CancelFunc // ends the session (endtunnel)
}

// open records a session and reports the new per-user count of its kind
// to the server ({"action":"sessions"}), so the server's UI shows who is
// connected. count is the kind MeshCentral counts it under (sessionKind,
// or "tcp"/"udp"); cancel ends the session when the server asks
// (endtunnel). It returns the session's id for close.
func (r *registry) open(a *Agent, s OpenSession, count string, cancel context.CancelFunc) int {
	r.mu.Lock()
	if r.byID == nil {
		r.byID = map[int]*entry{}
	}
	r.next++
	s.ID = r.next
	s.Started = time.Now()
	r.byID[s.ID] = &entry{OpenSession: s, count: count, cancel: cancel}
	msg := r.countsLocked(count)
	r.mu.Unlock()
	a.SendJSON(msg)
	return s.ID
}

// close forgets a session and reports the new counts of its kind.
func (r *registry) close(a *Agent, id int) {
	r.mu.Lock()
	e, ok := r.byID[id]
	delete(r.byID, id)
	var msg []byte
	if ok {
		msg = r.countsLocked(e.count)
	}
	r.mu.Unlock()
	if ok {
		a.SendJSON(msg)
	}
}

// end cancels the open sessions of userID (and guest, "" for the user
// themself) counted under kind and returns how many it ended. Their handlers return and close them as usual, so
// the counts follow through close.
func (r *registry) end(userID, guest, kind string) int {
	r.mu.Lock()
	var cancels []context.CancelFunc
	for _, e := range r.byID {
		if e.UserID == userID && e.GuestName == guest && e.count == kind && e.cancel != nil {
			cancels = append(cancels, e.cancel)
		}
	}
	r.mu.Unlock()
	for _, c := range cancels {
		c()
	}
	return len(cancels)
}

// countsLocked builds MeshCentral's "sessions" message for one kind
// (control.md): open sessions of that kind per user. Sessions without a
// user (a Router cookie made for no user) are not counted, as
// MeshCentral's agent does not count them.
func (r *registry) countsLocked(kind string) []byte {
	value := map[string]int{}
	for _, e := range r.byID {
		if e.count == kind && e.UserID != "" {
			value[e.UserID]++
		}
	}
	b, _ := json.Marshal(map[string]any{"action": "sessions", "type": kind, "value": value})
	return b
}

func (r *registry) list() []OpenSession {
	r.mu.Lock()
	out := make([]OpenSession, 0, len(r.byID))
	for _, e := range r.byID {
		out = append(out, e.OpenSession)
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

// endTunnelRequest is the server's {"action":"msg","type":"endtunnel"}:
// the device's sessions dialog asks to disconnect a user's sessions of one
// kind. userid and rights are the requester's, added by the server.
type endTunnelRequest struct {
	UserID    string  `json:"userid"`
	Rights    *uint32 `json:"rights"`
	XUserID   string  `json:"xuserid"` // whose sessions to end
	GuestName string  `json:"guestname"`
	Protocol  string  `json:"protocol"` // kvm, terminal, files, tcp, udp
	Username  string  `json:"username"`
	SessionID string  `json:"sessionid"`
	Remote    string  `json:"remoteaddr"`
}

// endTunnelMsgIDs are MeshCentral's event ids for "Forcibly disconnected
// session of user: {0}" per kind, so its event tab shows them translated.
var endTunnelMsgIDs = map[string]int{"kvm": 134, "terminal": 135, "files": 136, "tcp": 137, "udp": 137}

// EndTunnel serves endtunnel: only a full administrator of the device, or
// a user ending their own sessions, may do it, as MeshCentral's agent
// requires. Each ended session is logged to the server's event log.
func (a *Agent) EndTunnel(msg []byte) error {
	var req endTunnelRequest
	if err := json.Unmarshal(msg, &req); err != nil {
		return fmt.Errorf("endtunnel: %w", err)
	}
	msgID, ok := endTunnelMsgIDs[req.Protocol]
	if !ok {
		return fmt.Errorf("endtunnel: unknown protocol %q", req.Protocol)
	}
	if req.XUserID == "" {
		return errors.New("endtunnel: no user named")
	}
	if (req.Rights == nil || *req.Rights != session.RightAdmin) && req.XUserID != req.UserID {
		return fmt.Errorf("endtunnel: %s may not end %s's sessions", req.UserID, req.XUserID)
	}
	n := a.sessions.end(req.XUserID, req.GuestName, req.Protocol)
	name := req.XUserID
	if parts := strings.SplitN(req.XUserID, "/", 3); len(parts) == 3 {
		name = parts[2]
	}
	if req.GuestName != "" {
		name += "/" + req.GuestName
	}
	for range n {
		m := map[string]any{"action": "log", "msgid": msgID, "msgArgs": []string{name},
			"msg": "Forcibly disconnected session of user: " + name}
		for k, v := range map[string]string{"userid": req.UserID, "xuserid": req.XUserID, "username": req.Username,
			"sessionid": req.SessionID, "remoteaddr": req.Remote, "guestname": req.GuestName} {
			if v != "" {
				m[k] = v
			}
		}
		b, _ := json.Marshal(m)
		a.SendJSON(b)
	}
	a.log.Info("endtunnel", "user", req.XUserID, "protocol", req.Protocol, "ended", n, "by", req.UserID)
	return nil
}
