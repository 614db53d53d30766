package adminapi

// Device actions: runcommands, device info, changedevice, removedevices.

import (
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

// nodeTargets resolves "nodeids" (short or full ids).
func nodeTargets(r req) ([]string, bool) {
	l, ok := r.strs("nodeids")
	if !ok || len(l) == 0 || len(l) > MaxNodeIDs {
		return nil, false
	}
	out := make([]string, 0, len(l))
	for _, id := range l {
		if n := normID("node", id); n != "" {
			out = append(out, n)
		}
	}
	return out, len(out) > 0
}

func isWindowsAgent(id uint32) bool { return id >= 1 && id <= 4 }

func (s *Server) cmdRunCommands(c *conn, u accounts.User, r req) {
	nodes, ok := nodeTargets(r)
	if !ok {
		c.result(r, "Invalid nodeids")
		return
	}
	typ, ok := r.num("type")
	if !ok {
		c.result(r, "Invalid command type")
		return
	}
	cmds, ok := r.str("cmds")
	if !ok || len(cmds) > 65535 {
		c.result(r, "Invalid commands")
		return
	}
	runAsUser, _ := r.num("runAsUser")
	if runAsUser < 0 || runAsUser > 2 {
		runAsUser = 0
	}
	wantReply := r.boolean("reply")
	for _, n := range nodes {
		rights, d, err := s.deviceRights(u, n)
		if err != nil || !rights.Visible {
			c.result(r, "Invalid nodeid")
			continue
		}
		if !rights.Has(session.RightRemoteCommand) {
			c.result(r, "Access denied")
			continue
		}
		t := typ
		if isWindowsAgent(d.AgentID) {
			if t == 0 {
				t = 1
			}
			if t != 1 && t != 2 {
				c.result(r, "Invalid command type")
				continue
			}
		} else {
			if t == 0 {
				t = 3
			}
			if t != 3 {
				c.result(r, "Invalid command type")
				continue
			}
		}
		if _, on := s.online(n); !on {
			c.result(r, "Agent not connected")
			continue
		}
		msg := map[string]any{"action": "runcommands", "type": t, "cmds": cmds, "runAsUser": runAsUser,
			"reply": wantReply, "responseid": r["responseid"], "sessionid": c.id}
		if wantReply {
			s.addPending(n, c)
		}
		if err := s.cfg.Agents.SendJSON(n, msg); err != nil {
			if wantReply {
				s.takePending(n, c)
			}
			c.result(r, "Agent not connected")
			continue
		}
		s.audit(auditEntry{userID: u.ID, action: "runcommands", target: n, from: c.ip, msg: "Running commands: " + truncate(cmds, 200)})
		if !wantReply {
			c.result(r, "OK")
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *Server) addPending(nodeID string, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pending[nodeID] = append(s.pending[nodeID], c)
}

// takePending removes c (or, when c is nil, the oldest waiter) from the
// node's waiters and returns it.
func (s *Server) takePending(nodeID string, c *conn) *conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.pending[nodeID]
	for i, p := range l {
		if c == nil || p == c {
			s.pending[nodeID] = slices.Delete(l, i, i+1)
			if len(s.pending[nodeID]) == 0 {
				delete(s.pending, nodeID)
			}
			return p
		}
	}
	return nil
}

func (s *Server) cmdDeviceInfo(c *conn, u accounts.User, r req, action string) {
	raw, _ := r.str("nodeid")
	n := normID("node", raw)
	fail := func(res string) {
		c.reply(r, map[string]any{"nodeid": raw, "noinfo": true, "result": res})
	}
	rights, d, err := s.deviceRights(u, n)
	// All three fail alike without the device-details right, so meshctrl's
	// deviceinfo never sees a partial answer and crashes (§6.2 #12).
	if err != nil || !rights.Visible || !rights.Has(session.RightDeviceDetails) {
		fail("Invalid device id")
		return
	}
	switch action {
	case "lastconnect":
		t, addr := d.LastConnect, ""
		if st, ok := s.online(n); ok {
			t, addr = st.ConnectTime, st.RemoteAddr
		}
		if t.IsZero() {
			fail("No data")
			return
		}
		m := map[string]any{"nodeid": n, "time": t.UnixMilli()}
		if addr == "" && d.IP != "" {
			addr = d.IP
		}
		if addr != "" {
			m["addr"] = addr
		}
		c.reply(r, m)
	case "getnetworkinfo":
		var netif2 any
		if len(d.NetInfo) > 0 {
			var ni map[string]any
			if json.Unmarshal(d.NetInfo, &ni) == nil {
				if v, ok := ni["netif2"]; ok {
					netif2 = v
				} else {
					netif2 = ni
				}
			}
		}
		c.reply(r, map[string]any{"nodeid": n, "netif": nil, "netif2": netif2})
	case "getsysinfo":
		if len(d.SysInfo) == 0 {
			fail("Invalid device id")
			return
		}
		m := map[string]any{}
		if err := json.Unmarshal(d.SysInfo, &m); err != nil {
			fail("Invalid device id")
			return
		}
		if inner, ok := m["data"].(map[string]any); ok {
			m = inner
		}
		m["nodeid"], m["time"] = n, d.LastSeen.UnixMilli()
		if r.boolean("nodeinfo") {
			m["node"], m["rights"] = s.deviceJSON(d, true), rights.Bits
		}
		c.reply(r, m)
	}
}

func (s *Server) cmdChangeDevice(c *conn, u accounts.User, r req) {
	n := normID("node", r.s("nodeid"))
	rights, _, err := s.deviceRights(u, n)
	if err != nil || n == "" {
		c.result(r, "Invalid nodeid")
		return
	}
	if !rights.Visible || !rights.Has(session.RightManageComputers) {
		c.result(r, "Access Denied")
		return
	}
	desc, hasDesc := r.str("desc")
	if hasDesc && utf8.RuneCountInString(desc) > maxDeviceDesc {
		c.result(r, "Invalid description")
		return
	}
	// Everything is decoded and checked here, outside the store's write
	// transaction: the closure below only compares and assigns.
	name, hasName := r.str("name")
	if hasName {
		if err := checkLen("name", name, MaxDeviceName); err != nil {
			c.result(r, err.Error())
			return
		}
	}
	_, hasTags := r["tags"]
	tags, err := parseTags(r)
	if err != nil {
		c.result(r, err.Error())
		return
	}
	var changes []string
	_, err = s.cfg.Store.UpdateDevice(n, func(d *store.Device, found bool) error {
		changes = changes[:0]
		if !found {
			return store.ErrNotFound
		}
		if hasName && name != "" && name != d.Name {
			d.Name = name
			changes = append(changes, "name")
		}
		if icon, ok := r.num("icon"); ok && icon >= 1 && icon <= 8 && uint32(icon) != d.Icon {
			d.Icon = uint32(icon)
			changes = append(changes, "icon")
		}
		if hasTags && !slices.Equal(tags, d.Tags) { // by content (§6.2 #10)
			d.Tags = tags
			changes = append(changes, "tags")
		}
		if hasDesc && desc != d.Desc {
			d.Desc = desc
			changes = append(changes, "description")
		}
		if len(changes) == 0 {
			return store.ErrNoChange
		}
		return nil
	})
	if err != nil {
		c.result(r, "Invalid nodeid")
		return
	}
	if len(changes) > 0 {
		s.audit(auditEntry{userID: u.ID, action: "changenode", target: n, from: c.ip, msg: "Changed device " + strings.Join(changes, ", ")})
	}
	c.result(r, "ok")
}

// maxDeviceDesc bounds a device description; MeshCentral bounds group and
// user-group descriptions to 1024 characters and sets none for devices.
const maxDeviceDesc = 1024

func (s *Server) cmdRemoveDevices(c *conn, u accounts.User, r req) {
	nodes, ok := nodeTargets(r)
	if !ok {
		c.result(r, "Invalid nodeid")
		return
	}
	for _, n := range nodes {
		rights, _, err := s.deviceRights(u, n)
		if err != nil || !rights.Visible || !rights.Has(session.RightUninstall) {
			c.result(r, "Denied")
			continue
		}
		if s.cfg.Agents != nil {
			s.cfg.Agents.Disconnect(n)
		}
		s.endRelays("", map[string]bool{n: true})
		if err := s.cfg.Store.DeleteDevice(n); err != nil {
			c.result(r, "Internal error")
			continue
		}
		s.cfg.Accounts.RemoveLinksTo(n)
		s.audit(auditEntry{userID: u.ID, action: "removenode", target: n, from: c.ip, msg: "Removed device"})
		c.result(r, "ok")
	}
}
