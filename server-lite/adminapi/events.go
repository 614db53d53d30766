package adminapi

import (
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

// auditEntry is one admin action for the event log: who, what, on which
// device or group, from where; the store adds when.
type auditEntry struct {
	userID string
	action string // MeshCentral event action name, e.g. "runcommands"
	target string // "node//…" or "mesh//…" or ""
	from   string
	msg    string
}

// audit stores the entry in the event log and pushes it live to every
// session allowed to see it. A failing store is logged, not fatal: the
// action already happened.
func (s *Server) audit(a auditEntry) {
	e := store.Event{Time: time.Now().UTC(), Kind: store.EvAdmin, Who: a.userID, Action: a.action, NodeID: a.target, From: a.from, Msg: a.msg}
	if err := s.cfg.Store.AppendEvent(e); err != nil {
		s.log.Error("append audit event", "action", a.action, "err", err)
	}
	s.Notify(e)
}

// Notify pushes an event, already stored by the caller, to the control
// sessions that may see it ({action:"event"}, admin-api.md §5.1). The main
// package can call it for agent connect/disconnect events.
func (s *Server) Notify(e store.Event) {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	if len(cs) == 0 {
		return
	}
	devs := s.groupOf()
	users := map[string]accounts.User{}
	for _, c := range cs {
		u, ok := users[c.userID]
		if !ok {
			var err error
			if u, err = s.cfg.Accounts.Get(c.userID); err != nil {
				continue
			}
			users[c.userID] = u
		}
		if eventVisible(u, e, devs) {
			c.sendEvent(map[string]any{"action": "event", "event": eventJSON(e, false)})
		}
	}
}

// groupOf returns a memoising lookup from device id to group id, so that
// checking many events reads each device record once, and only those the
// events name (not the whole device table, which can be large).
func (s *Server) groupOf() func(nodeID string) string {
	memo := map[string]string{}
	return func(nodeID string) string {
		if g, ok := memo[nodeID]; ok {
			return g
		}
		d, err := s.cfg.Store.Device(nodeID)
		if err != nil {
			d.GroupID = ""
		}
		memo[nodeID] = d.GroupID
		return d.GroupID
	}
}

// eventVisible: full site admins and holders of "all events" see everything;
// others see their own actions and events about groups and devices they
// have a link to. Group events are stored with the group id as NodeID.
func eventVisible(u accounts.User, e store.Event, groupOf func(string) string) bool {
	if u.HasSite(accounts.SiteAllEvents) {
		return true
	}
	if e.Who == u.ID {
		return true
	}
	switch {
	case strings.HasPrefix(e.NodeID, "node/"):
		return accounts.EffectiveRights(u, groupOf(e.NodeID), e.NodeID).Visible
	case strings.HasPrefix(e.NodeID, "mesh/"):
		return accounts.EffectiveRights(u, e.NodeID, "").Visible
	}
	return false
}

// eventJSON renders a stored event in MeshCentral's shape. Every field
// meshctrl's CSV writer touches is a string or absent (admin-api.md §2.9).
// forDevice drops etype and nodeid as MeshCentral's device query does.
func eventJSON(e store.Event, forDevice bool) map[string]any {
	m := map[string]any{"time": e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), "action": e.Action, "domain": ""}
	if e.Action == "" {
		m["action"] = e.Kind
	}
	if e.Msg != "" {
		m["msg"] = e.Msg
	}
	if e.From != "" {
		m["remoteaddr"] = e.From
	}
	etype := "user"
	switch {
	case strings.HasPrefix(e.NodeID, "node/"):
		etype = "node"
		if !forDevice {
			m["nodeid"] = e.NodeID
		}
	case strings.HasPrefix(e.NodeID, "mesh/"):
		etype = "mesh"
		m["meshid"] = e.NodeID
	}
	if strings.HasPrefix(e.Who, "user/") {
		m["userid"] = e.Who
		m["username"] = e.Who[strings.LastIndexByte(e.Who, '/')+1:]
	}
	if !forDevice {
		m["etype"] = etype
	}
	return m
}

// NodeConnect pushes MeshCentral's live "nodeconnect" event (admin-api.md
// §5.2, §5.3) to sessions that can see the device: conn and pwr are 1 when
// the agent is online, 0 when it went away. It is not stored (nolog), as in
// MeshCentral; agentconn logs connects and disconnects itself.
func (s *Server) NodeConnect(nodeID, groupID string, online bool, at time.Time) {
	s.mu.Lock()
	none := len(s.sessions) == 0
	s.mu.Unlock()
	if none { // the common case in a reconnect storm: nobody is watching
		return
	}
	ev := map[string]any{"action": "nodeconnect", "nodeid": nodeID, "meshid": groupID, "conn": 0, "pwr": 0,
		"nolog": 1, "nopeers": 1, "domain": "", "id": randomHex(8)}
	if online {
		ev["conn"], ev["pwr"], ev["ct"] = 1, 1, at.UnixMilli()
	}
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		u, err := s.cfg.Accounts.Get(c.userID)
		if err != nil {
			continue
		}
		if u.HasSite(accounts.SiteAllEvents) || accounts.EffectiveRights(u, groupID, nodeID).Visible {
			c.sendEvent(map[string]any{"action": "event", "event": ev})
		}
	}
}
