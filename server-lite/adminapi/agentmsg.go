package adminapi

import (
	"encoding/json"
	"net/url"
	"strings"
)

func urlUnescape(s string) (string, error) { return url.QueryUnescape(s) }

// AgentMessage takes one JSON control message from an agent (the main
// package wires agentconn's subscription to it) and routes user-bound
// replies. A reply carrying our sessionid goes to that session only; one
// without (an agent that does not echo it) goes to the oldest session
// waiting for a runcommands reply from that device — never broadcast to
// every user (admin-api.md §6.2 #3). Other messages are ignored.
func (s *Server) AgentMessage(nodeID string, msg []byte) {
	var m map[string]any
	if json.Unmarshal(msg, &m) != nil || m["action"] != "msg" {
		return
	}
	typ, _ := m["type"].(string)
	sid, _ := m["sessionid"].(string)
	var c *conn
	if sid != "" {
		s.mu.Lock()
		c = s.sessions[sid]
		s.mu.Unlock()
		if c == nil || !strings.HasPrefix(sid, c.userID+"/") {
			return
		}
		if typ == "runcommands" {
			s.takePending(nodeID, c)
		}
	} else if typ == "runcommands" {
		c = s.takePending(nodeID, nil)
	}
	if c == nil {
		return
	}
	// The session's user must still see the device.
	u, err := s.cfg.Accounts.Get(c.userID)
	if err != nil {
		return
	}
	if r, _, err := s.deviceRights(u, nodeID); err != nil || !r.Visible {
		return
	}
	delete(m, "sessionid")
	m["nodeid"] = nodeID
	c.send(m)
}
