package adminapi

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshgo/meshagent/agent/handshake"
	"github.com/meshgo/meshagent/agent/session"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/relay"
	"github.com/meshgo/meshagent/server-lite/store"
)

// req is one decoded control.ashx request.
type req map[string]any

func (r req) str(k string) (string, bool) { v, ok := r[k].(string); return v, ok }
func (r req) s(k string) string           { v, _ := r[k].(string); return v }

// num returns an integral JSON number.
func (r req) num(k string) (int64, bool) {
	f, ok := r[k].(float64)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func (r req) boolean(k string) bool { v, _ := r[k].(bool); return v }

// strs accepts a JSON array of strings (non-strings are skipped).
func (r req) strs(k string) ([]string, bool) {
	a, ok := r[k].([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(a))
	for _, v := range a {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out, true
}

// reply sends m with the request's action (unless set), responseid and tag.
func (c *conn) reply(r req, m map[string]any) {
	if _, ok := m["action"]; !ok {
		m["action"] = r.s("action")
	}
	if v, ok := r["responseid"]; ok {
		m["responseid"] = v
	}
	if v, ok := r["tag"]; ok {
		m["tag"] = v
	}
	c.send(m)
}

func (c *conn) result(r req, result string) { c.reply(r, map[string]any{"result": result}) }

// handle processes one request; false ends the session.
func (s *Server) handle(c *conn, data []byte) (keep bool) {
	var r req
	if err := json.Unmarshal(data, &r); err != nil || r == nil {
		return true // MeshCentral ignores malformed requests silently
	}
	action, _ := r.str("action")
	if len(action) < 3 || len(action) > 32 {
		return true
	}
	u, err := s.cfg.Accounts.Get(c.userID)
	if err != nil {
		return false // account deleted meanwhile
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("control.ashx handler panic", "action", action, "panic", fmt.Sprint(p))
			c.result(r, "Internal error")
			keep = true
		}
	}()
	switch action {
	case "ping":
		c.send(map[string]any{"action": "pong"})
	case "pong":
	case "close":
		return false
	case "serverinfo":
		c.reply(r, map[string]any{"serverinfo": s.serverInfo()})
	case "userinfo":
		c.reply(r, map[string]any{"userinfo": safeUser(u)})
	case "meshes":
		s.cmdMeshes(c, u, r)
	case "nodes":
		s.cmdNodes(c, u, r)
	case "users":
		s.cmdUsers(c, u, r)
	case "adduser":
		s.cmdAddUser(c, u, r)
	case "deleteuser":
		s.cmdDeleteUser(c, u, r)
	case "createmesh":
		s.cmdCreateMesh(c, u, r)
	case "deletemesh":
		s.cmdDeleteMesh(c, u, r)
	case "addmeshuser":
		s.cmdAddMeshUser(c, u, r)
	case "runcommands":
		s.cmdRunCommands(c, u, r)
	case "getsysinfo", "getnetworkinfo", "lastconnect":
		s.cmdDeviceInfo(c, u, r, action)
	case "events":
		s.cmdEvents(c, u, r)
	case "authcookie":
		s.cmdAuthCookie(c, u, r)
	case "msg":
		s.cmdMsg(c, u, r)
	case "toast":
		s.cmdToast(c, u, r)
	case "poweraction":
		s.cmdPower(c, u, r)
	case "changedevice":
		s.cmdChangeDevice(c, u, r)
	case "removedevices":
		s.cmdRemoveDevices(c, u, r)
	case "createLoginToken":
		s.cmdCreateLoginToken(c, u, r)
	case "loginTokens":
		s.cmdLoginTokens(c, u, r)
	case "pushscript":
		s.cmdPushScript(c, u, r)
	case "devicecores":
		s.cmdDeviceCores(c, u, r)
	default:
		// MeshCentral stays silent here and clients hang; answer instead (§6.4).
		c.result(r, "Unknown action")
	}
	return true
}

// ---- groups and devices ----

func (s *Server) groups() (map[string]store.Group, error) {
	gs, err := s.cfg.Store.Groups()
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	out := make(map[string]store.Group, len(gs))
	for _, g := range gs {
		out[g.ID] = g
	}
	return out, nil
}

// visibleGroups are the groups the user has a link to (site admin status
// adds nothing, admin-api.md §3.3), sorted by name.
func (s *Server) visibleGroups(u accounts.User) ([]store.Group, error) {
	all, err := s.groups()
	if err != nil {
		return nil, err
	}
	var out []store.Group
	for id, g := range all {
		if _, ok := u.Links[id]; ok {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || (out[i].Name == out[j].Name && out[i].ID < out[j].ID)
	})
	return out, nil
}

func (s *Server) groupJSON(g store.Group) map[string]any {
	links := map[string]any{}
	if mem, err := s.cfg.Accounts.Members(g.ID); err == nil {
		for id, m := range mem {
			links[id] = map[string]any{"name": m.Name, "rights": m.Links[g.ID]}
		}
	}
	return map[string]any{"type": "mesh", "_id": g.ID, "name": g.Name, "mtype": g.MType, "desc": g.Desc,
		"domain": "", "links": links, "creation": g.Created.UnixMilli()}
}

func (s *Server) cmdMeshes(c *conn, u accounts.User, r req) {
	gs, err := s.visibleGroups(u)
	if err != nil {
		s.log.Error("meshes", "err", err)
		c.result(r, "Internal error")
		return
	}
	out := make([]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, s.groupJSON(g))
	}
	c.reply(r, map[string]any{"meshes": out})
}

func (s *Server) deviceJSON(d store.Device, withMesh bool) map[string]any {
	agent := map[string]any{"ver": d.AgentVersion, "id": d.AgentID, "caps": d.Caps, "core": d.CoreName, "root": d.Root}
	if d.Tag != "" {
		agent["tag"] = d.Tag
	}
	name := d.Name
	if name == "" {
		name = d.RName
	}
	m := map[string]any{"type": "node", "mtype": 2, "_id": d.ID, "name": name, "rname": d.RName, "icon": d.Icon,
		"domain": "", "agent": agent, "host": nil, "ip": d.IP, "osdesc": d.OSDesc}
	if !d.FirstConnect.IsZero() {
		m["firstconnect"] = d.FirstConnect.UnixMilli()
	}
	if len(d.Tags) > 0 {
		m["tags"] = d.Tags
	}
	if len(d.Users) > 0 {
		m["users"] = d.Users
	}
	if withMesh {
		m["meshid"] = d.GroupID
	}
	if st, ok := s.online(d.ID); ok {
		m["conn"], m["pwr"], m["agct"] = 1, 1, st.ConnectTime.UnixMilli()
	}
	return m
}

func (s *Server) online(nodeID string) (AgentState, bool) {
	if s.cfg.Agents == nil {
		return AgentState{}, false
	}
	return s.cfg.Agents.Connected(nodeID)
}

// deviceRights returns the user's effective rights on a device and the
// device; an unknown device yields zero, invisible rights.
func (s *Server) deviceRights(u accounts.User, nodeID string) (accounts.Rights, store.Device, error) {
	d, err := s.cfg.Store.Device(nodeID)
	if errors.Is(err, store.ErrNotFound) {
		return accounts.Rights{}, store.Device{}, nil
	}
	if err != nil {
		return accounts.Rights{}, store.Device{}, fmt.Errorf("look up device: %w", err)
	}
	return accounts.EffectiveRights(u, d.GroupID, d.ID), d, nil
}

// findGroup resolves meshid (short or full) or meshname among the groups
// the user can see; errText is the reply result on failure.
func (s *Server) findGroup(u accounts.User, r req, errText string) (store.Group, string) {
	gs, err := s.visibleGroups(u)
	if err != nil {
		return store.Group{}, "Internal error"
	}
	if id, ok := r.str("meshid"); ok {
		id = normID("mesh", id)
		for _, g := range gs {
			if g.ID == id {
				return g, ""
			}
		}
		return store.Group{}, errText
	}
	if name, ok := r.str("meshname"); ok {
		var found []store.Group
		for _, g := range gs {
			if g.Name == name && g.MType == store.MeshTypeAgent {
				found = append(found, g)
			}
		}
		switch len(found) {
		case 0:
			return store.Group{}, errText
		case 1:
			return found[0], ""
		}
		return store.Group{}, "Duplicate device groups found"
	}
	return store.Group{}, errText
}

func (s *Server) cmdNodes(c *conn, u accounts.User, r req) {
	var only string // one group id, when asked
	if _, ok1 := r["meshid"]; ok1 {
		g, e := s.findGroup(u, r, "Invalid group id")
		if e != "" {
			c.result(r, e)
			return
		}
		only = g.ID
	} else if _, ok2 := r["meshname"]; ok2 {
		g, e := s.findGroup(u, r, "Invalid group id")
		if e != "" {
			c.result(r, e)
			return
		}
		only = g.ID
	}
	var oneNode string
	if id, ok := r.str("id"); ok {
		oneNode = normID("node", id)
	}
	ds, err := s.cfg.Store.Devices()
	if err != nil {
		s.log.Error("nodes", "err", err)
		c.result(r, "Internal error")
		return
	}
	groups, _ := s.groups()
	sort.Slice(ds, func(i, j int) bool {
		return ds[i].Name < ds[j].Name || (ds[i].Name == ds[j].Name && ds[i].ID < ds[j].ID)
	})
	nodes := map[string][]any{}
	for _, d := range ds {
		if only != "" && d.GroupID != only || oneNode != "" && d.ID != oneNode {
			continue
		}
		if _, ok := groups[d.GroupID]; !ok {
			continue // group deleted
		}
		if !accounts.EffectiveRights(u, d.GroupID, d.ID).Visible {
			continue
		}
		nodes[d.GroupID] = append(nodes[d.GroupID], s.deviceJSON(d, false))
	}
	c.reply(r, map[string]any{"nodes": nodes})
}

// ---- users ----

func (s *Server) cmdUsers(c *conn, u accounts.User, r req) {
	if !u.HasSite(accounts.SiteManageUsers) {
		c.result(r, "Access denied")
		return
	}
	us, err := s.cfg.Accounts.List()
	if err != nil {
		c.result(r, "Internal error")
		return
	}
	out := make([]any, 0, len(us))
	for _, x := range us {
		out = append(out, safeUser(x))
	}
	c.reply(r, map[string]any{"users": out})
}

func (s *Server) cmdAddUser(c *conn, u accounts.User, r req) {
	fail := func(msg string, id int) { c.reply(r, map[string]any{"result": msg, "msgid": id}) }
	if !u.HasSite(accounts.SiteManageUsers) {
		fail("Permission denied", 1)
		return
	}
	name := r.s("username")
	if !accounts.ValidName(name) {
		fail("Invalid username", 2)
		return
	}
	pass := r.s("pass")
	if r.boolean("randomPassword") && pass == "" {
		pass = randomHex(16) // never printed: the account needs a reset by an admin
	}
	var site uint32
	if _, present := r["siteadmin"]; present {
		v, ok := r.num("siteadmin")
		if !ok || v < 0 || v > math.MaxUint32 {
			fail("Invalid site permissions", 6)
			return
		}
		site = uint32(v)
		if !u.IsSiteAdmin() && site&^(accounts.SiteLocked|accounts.SiteNoNewGroups|accounts.SiteNoMeshCmd) != 0 {
			fail("Invalid site permissions", 6)
			return
		}
	}
	if d, ok := r.str("domain"); ok && d != "" {
		fail("Invalid domain", 5)
		return
	}
	nu, err := s.cfg.Accounts.Create(name, pass, site)
	switch {
	case errors.Is(err, accounts.ErrExists):
		fail("User already exists", 7)
		return
	case errors.Is(err, accounts.ErrBadPassword):
		fail("Invalid password", 3)
		return
	case errors.Is(err, accounts.ErrBadName):
		fail("Invalid username", 2)
		return
	case err != nil:
		s.log.Error("adduser", "err", err)
		fail("Internal error", 0)
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "accountcreate", from: c.ip, msg: "Account created " + nu.ID})
	c.result(r, "ok")
}

func (s *Server) cmdDeleteUser(c *conn, u accounts.User, r req) {
	if !u.HasSite(accounts.SiteManageUsers) {
		c.result(r, "Permission denied")
		return
	}
	id, ok := r.str("userid")
	if !ok || id == "" {
		c.result(r, "Invalid userid")
		return
	}
	if !strings.HasPrefix(id, "user/") {
		id = accounts.UserID(id)
	}
	if strings.Count(id, "/") != 2 || !strings.HasPrefix(id, "user//") {
		c.result(r, "Invalid domain")
		return
	}
	t, err := s.cfg.Accounts.Get(id)
	if err != nil {
		c.result(r, "User does not exists")
		return
	}
	if t.IsSiteAdmin() && !u.IsSiteAdmin() {
		c.result(r, "Permission denied")
		return
	}
	if err := s.cfg.Accounts.Delete(t.ID); err != nil {
		c.result(r, "Internal error")
		return
	}
	s.cookies.revokeUser(t.ID)
	s.audit(auditEntry{userID: u.ID, action: "accountremove", from: c.ip, msg: "Account removed " + t.ID})
	c.result(r, "ok")
	if t.ID != u.ID {
		s.closeUserSessions(t.ID)
	}
}

// ---- device groups ----

func newGroupID() string {
	b := make([]byte, handshake.HashLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return "mesh//" + handshake.EncodeID(b)
}

func (s *Server) cmdCreateMesh(c *conn, u accounts.User, r req) {
	if !u.IsSiteAdmin() && u.SiteAdmin&accounts.SiteNoNewGroups != 0 {
		c.result(r, "Permission denied")
		return
	}
	name, _ := r.str("meshname")
	if n := len([]rune(name)); n < 1 || n > 128 {
		c.result(r, "Invalid group name")
		return
	}
	desc := r.s("desc")
	if len([]rune(desc)) > 1024 {
		c.result(r, "Invalid group description")
		return
	}
	// MeshCentral lets a missing meshtype through (§6.2 #8); only agent
	// groups exist here.
	if t, ok := r.num("meshtype"); !ok || t != store.MeshTypeAgent {
		c.result(r, "Invalid group type")
		return
	}
	g := store.Group{ID: newGroupID(), Name: name, MType: store.MeshTypeAgent, Desc: desc, Created: time.Now().UTC()}
	if err := s.cfg.Store.PutGroup(g); err != nil {
		s.log.Error("createmesh", "err", err)
		c.result(r, "Internal error")
		return
	}
	if err := s.cfg.Accounts.SetLink(u.ID, g.ID, accounts.FullRights, false); err != nil {
		s.log.Error("createmesh link", "err", err)
		c.result(r, "Internal error")
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "createmesh", target: g.ID, from: c.ip, msg: "Device group created: " + name})
	c.reply(r, map[string]any{"result": "ok", "meshid": g.ID,
		"links": map[string]any{u.ID: map[string]any{"name": u.Name, "rights": accounts.FullRights}}})
}

func (s *Server) cmdDeleteMesh(c *conn, u accounts.User, r req) {
	g, e := s.findGroup(u, r, "Invalid group identifier")
	if e != "" {
		c.result(r, e)
		return
	}
	if accounts.EffectiveRights(u, g.ID, "").Bits != accounts.FullRights {
		c.result(r, "Access denied")
		return
	}
	// The group's agents are disconnected and their records removed, unlike
	// MeshCentral, which leaves them connected (§6.2 #9).
	if ds, err := s.cfg.Store.Devices(); err == nil {
		for _, d := range ds {
			if d.GroupID == g.ID {
				if s.cfg.Agents != nil {
					s.cfg.Agents.Disconnect(d.ID)
				}
				s.cfg.Store.DeleteDevice(d.ID)
				s.cfg.Accounts.RemoveLinksTo(d.ID)
			}
		}
	}
	if err := s.cfg.Store.DeleteGroup(g.ID); err != nil {
		c.result(r, "Internal error")
		return
	}
	s.cfg.Accounts.RemoveLinksTo(g.ID)
	s.audit(auditEntry{userID: u.ID, action: "deletemesh", target: g.ID, from: c.ip, msg: "Device group deleted: " + g.Name})
	c.result(r, "ok")
}

func (s *Server) cmdAddMeshUser(c *conn, u accounts.User, r req) {
	g, e := s.findGroup(u, r, "Invalid groupid")
	if e != "" {
		if e == "Invalid groupid" {
			e = "Unknown group"
		}
		c.result(r, e)
		return
	}
	remove := r.boolean("remove")
	var rights uint32
	if !remove {
		v, ok := r.num("meshadmin")
		if !ok || v < 0 || v > math.MaxUint32 {
			c.result(r, "Invalid group rights")
			return
		}
		rights = uint32(v)
	}
	var targets []string
	if l, ok := r.strs("usernames"); ok {
		targets = append(targets, l...)
	}
	if l, ok := r.strs("userids"); ok {
		targets = append(targets, l...)
	}
	if id, ok := r.str("userid"); ok {
		targets = append(targets, id)
	}
	if len(targets) == 0 {
		c.result(r, "Invalid usernames")
		return
	}
	mine := accounts.EffectiveRights(u, g.ID, "").Bits
	if mine != accounts.FullRights && mine&session.RightManageUsers == 0 {
		c.result(r, "Permission denied")
		return
	}
	if rights == accounts.FullRights && mine != accounts.FullRights {
		c.result(r, "Permission denied")
		return
	}
	if mine != accounts.FullRights {
		rights &^= session.RightManageUsers // cannot grant what is not held in full
	}
	var msgs []string
	for _, t := range targets {
		id := t
		if !strings.HasPrefix(id, "user/") { // accept "user//name" and "name" (§6.4)
			id = accounts.UserID(id)
		}
		tu, err := s.cfg.Accounts.Get(id)
		if err != nil {
			msgs = append(msgs, "Unknown user "+t)
			continue
		}
		if tu.ID == u.ID {
			msgs = append(msgs, "Can't change self")
			continue
		}
		if tu.Links[g.ID] == accounts.FullRights && mine != accounts.FullRights {
			msgs = append(msgs, "Can't change full admin "+tu.Name)
			continue
		}
		if err := s.cfg.Accounts.SetLink(tu.ID, g.ID, rights, remove); err != nil {
			msgs = append(msgs, "Error "+tu.Name)
			continue
		}
		verb, act := "Added user ", "addmeshuser"
		if remove {
			verb, act = "Removed user ", "removemeshuser"
		}
		msgs = append(msgs, verb+tu.Name)
		s.audit(auditEntry{userID: u.ID, action: act, target: g.ID, from: c.ip,
			msg: fmt.Sprintf("%s%s to group %s with rights %d", verb, tu.ID, g.Name, rights)})
	}
	if len(msgs) == 0 {
		msgs = []string{"Nothing done"}
	}
	c.result(r, strings.Join(msgs, ", "))
}

// ---- devices ----

// nodeTargets resolves "nodeids" (short or full ids).
func nodeTargets(r req) ([]string, bool) {
	l, ok := r.strs("nodeids")
	if !ok || len(l) == 0 {
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
	var changes []string
	_, err = s.cfg.Store.UpdateDevice(n, func(d *store.Device, found bool) error {
		changes = changes[:0]
		if !found {
			return store.ErrNotFound
		}
		if name, ok := r.str("name"); ok && name != "" && name != d.Name {
			d.Name = name
			changes = append(changes, "name")
		}
		if icon, ok := r.num("icon"); ok && icon >= 1 && icon <= 8 && uint32(icon) != d.Icon {
			d.Icon = uint32(icon)
			changes = append(changes, "icon")
		}
		if _, ok := r["tags"]; ok {
			tags := parseTags(r)
			if !slices.Equal(tags, d.Tags) { // by content (§6.2 #10)
				d.Tags = tags
				changes = append(changes, "tags")
			}
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

// parseTags accepts an array or a comma-separated string; tags are trimmed,
// kept if 1–63 chars, de-duplicated and sorted (admin-api.md §2.6).
func parseTags(r req) []string {
	var raw []string
	if l, ok := r.strs("tags"); ok {
		raw = l
	} else if s, ok := r.str("tags"); ok {
		raw = strings.Split(s, ",")
	}
	var out []string
	for _, t := range raw {
		t = strings.TrimSpace(t)
		if len(t) >= 1 && len(t) <= 63 && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

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
		if err := s.cfg.Store.DeleteDevice(n); err != nil {
			c.result(r, "Internal error")
			continue
		}
		s.cfg.Accounts.RemoveLinksTo(n)
		s.audit(auditEntry{userID: u.ID, action: "removenode", target: n, from: c.ip, msg: "Removed device"})
		c.result(r, "ok")
	}
}

// ---- events ----

func (s *Server) cmdEvents(c *conn, u accounts.User, r req) {
	limit := 10000
	if l, ok := r.num("limit"); ok && l > 0 && l < 1_000_000 {
		limit = int(l)
	}
	filter := r.s("filter")
	devs := s.deviceGroups()
	reply := map[string]any{}
	f := store.EventFilter{}
	forDevice := false
	if id, ok := r.str("nodeid"); ok && id != "" {
		n := normID("node", id)
		reply["nodeid"] = n
		forDevice = true
		if !accounts.EffectiveRights(u, devs[n], n).Visible {
			reply["events"] = []any{}
			c.reply(r, reply)
			return
		}
		f.NodeID = n
	}
	// meshctrl sends "user"; MeshCentral reads only "userid" (§6.2 #13).
	byUser := r.s("userid")
	if byUser == "" {
		byUser = r.s("user")
	}
	if byUser != "" && u.HasSite(accounts.SiteManageUsers) {
		if !strings.HasPrefix(byUser, "user/") {
			byUser = accounts.UserID(byUser)
		}
	} else {
		byUser = ""
	}
	evs, err := s.cfg.Store.Events(f)
	if err != nil {
		s.log.Error("events", "err", err)
		c.result(r, "Internal error")
		return
	}
	out := []any{}
	for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- { // newest first
		e := evs[i]
		if filter != "" && e.Action != filter {
			continue
		}
		if byUser != "" && e.Who != byUser {
			continue
		}
		if !forDevice && !eventVisible(u, e, devs) {
			continue
		}
		out = append(out, eventJSON(e, forDevice))
	}
	reply["events"] = out
	c.reply(r, reply)
}

// ---- sessions, messages, power ----

// cmdAuthCookie issues the relay credential meshctrl asks for before a
// shell, upload or download: a single-use relay token in [A-Za-z0-9_-], so
// never a "$" that meshctrl's string replace could corrupt (admin-api.md
// §6.3). It grants nothing by itself: the relay pairs it only with an agent
// end of the same user, and the agent end's credential is issued in cmdMsg
// after the tunnel's rights checks, bound to the device and pairing id.
func (s *Server) cmdAuthCookie(c *conn, u accounts.User, r req) {
	ck := s.cfg.RelayTokens.Issue(relay.Grant{Side: relay.SideUser, UserID: u.ID}, userCookieLife)
	// The agent side is re-issued per tunnel; this one only fills the slot.
	c.reply(r, map[string]any{"cookie": ck, "rcookie": randomHex(16)})
}

// cmdMsg routes a message to an agent: tunnels (shell, files), message
// boxes, open-URL. One reply, after the rights check (§6.2 #6).
func (s *Server) cmdMsg(c *conn, u accounts.User, r req) {
	n := normID("node", r.s("nodeid"))
	if n == "" || len(n) > 1024 {
		c.result(r, "Unable to route")
		return
	}
	rights, _, err := s.deviceRights(u, n)
	if err != nil || !rights.Visible || !rights.Has(session.RightRemoteControl) && !rights.Has(session.RightRemoteViewOnly) {
		c.result(r, "Unable to route")
		return
	}
	typ := r.s("type")
	out := map[string]any{}
	for k, v := range r {
		if k != "nodeid" && k != "responseid" && k != "tag" {
			out[k] = v
		}
	}
	target := n
	if typ == "tunnel" {
		value, proto, pairID, ok := rewriteTunnelValue(r.s("value"), n)
		if !ok {
			c.result(r, "Unable to route")
			return
		}
		if proto == session.ProtoTerminal && !session.AllowTerminal(rights.Bits) && rights.Bits != accounts.FullRights ||
			(proto == 4 || proto == session.ProtoFiles) && !session.AllowFiles(rights.Bits) && rights.Bits != accounts.FullRights {
			c.result(r, "Unable to route")
			return
		}
		// The agent end gets a fresh single-use credential bound to this
		// device, pairing id and user, issued only after the rights checks.
		rauth := s.cfg.RelayTokens.Issue(relay.Grant{Side: relay.SideAgent, UserID: u.ID, ID: pairID, NodeID: n}, relayCookieLife)
		out["value"] = value + "&rauth=" + rauth
		if s.cfg.TLSHash != "" {
			out["servertlshash"] = strings.ToLower(s.cfg.TLSHash)
		}
		out["soptions"] = map[string]any{}
		out["consent"] = 0
	}
	out["userid"], out["username"], out["realname"] = u.ID, u.Name, u.RealName
	out["sessionid"], out["rights"], out["remoteaddr"] = c.id, rights.Bits, c.ip
	if _, on := s.online(target); !on || s.cfg.Agents.SendJSON(target, out) != nil {
		c.result(r, "Unable to route")
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "msg", target: n, from: c.ip, msg: "Message to agent: " + typ})
	c.result(r, "OK")
}

// rewriteTunnelValue checks a tunnel "value" URL, rewrites its nodeid to
// the canonical id and drops the client's rauth (the caller appends a new
// one). Its nodeid must name the same device as the command.
func rewriteTunnelValue(v, nodeID string) (value string, proto int, pairID string, ok bool) {
	const prefix = "*/meshrelay.ashx?"
	if !strings.HasPrefix(v, prefix) {
		return "", 0, "", false
	}
	var kept []string
	for _, p := range strings.Split(v[len(prefix):], "&") {
		k, val, _ := strings.Cut(p, "=")
		switch k {
		case "nodeid":
			if dec, err := urlUnescape(val); err != nil || normID("node", dec) != nodeID {
				return "", 0, "", false
			}
			p = "nodeid=" + nodeID
		case "p":
			fmt.Sscanf(val, "%d", &proto)
		case "id":
			pairID, _ = urlUnescape(val)
		case "rauth", "auth":
			continue
		}
		kept = append(kept, p)
	}
	if pairID == "" {
		return "", 0, "", false
	}
	return prefix + strings.Join(kept, "&"), proto, pairID, true
}

func (s *Server) cmdToast(c *conn, u accounts.User, r req) {
	nodes, ok := nodeTargets(r)
	if !ok {
		c.result(r, "Invalid nodeids")
		return
	}
	title, msg := r.s("title"), r.s("msg")
	result := "ok"
	for _, n := range nodes {
		rights, _, err := s.deviceRights(u, n)
		if err != nil || !rights.Visible || !rights.Has(session.RightChatNotify) {
			result = "Access Denied"
			continue
		}
		if _, on := s.online(n); !on {
			result = "Agent not connected"
			continue
		}
		s.cfg.Agents.SendJSON(n, map[string]any{"action": "toast", "title": title, "msg": msg, "sessionid": c.id, "username": u.Name, "userid": u.ID})
		s.audit(auditEntry{userID: u.ID, action: "toast", target: n, from: c.ip, msg: "Toast: " + truncate(msg, 200)})
	}
	c.result(r, result)
}

func (s *Server) cmdPower(c *conn, u accounts.User, r req) {
	nodes, ok := nodeTargets(r)
	at, ok2 := r.num("actiontype")
	if !ok || !ok2 || at < 2 || at > 4 { // only off, reset, sleep (§6.2 #7)
		c.result(r, "Invalid action type")
		return
	}
	result := "ok"
	for _, n := range nodes {
		rights, _, err := s.deviceRights(u, n)
		if err != nil || !rights.Visible || !rights.Has(session.RightResetOff) {
			result = "Access Denied"
			continue
		}
		if _, on := s.online(n); !on {
			result = "Agent not connected"
			continue
		}
		s.cfg.Agents.SendJSON(n, map[string]any{"action": "poweraction", "actiontype": at, "userid": u.ID, "username": u.Name, "remoteaddr": c.ip})
		s.audit(auditEntry{userID: u.ID, action: "poweraction", target: n, from: c.ip, msg: fmt.Sprintf("Power action %d", at)})
	}
	c.result(r, result)
}

// cmdPushScript is server-lite's own action (used by its CLI): install a
// JavaScript core on devices. It needs full rights on each device.
func (s *Server) cmdPushScript(c *conn, u accounts.User, r req) {
	p, ok := s.cfg.Agents.(ScriptPusher)
	if !ok {
		c.result(r, "Not supported")
		return
	}
	nodes, ok := nodeTargets(r)
	script, ok2 := r.str("script")
	if !ok || !ok2 || script == "" {
		c.result(r, "Invalid request")
		return
	}
	results := map[string]string{}
	for _, n := range nodes {
		rights, _, err := s.deviceRights(u, n)
		switch {
		case err != nil || !rights.Visible || rights.Bits != accounts.FullRights:
			results[n] = "Access denied"
		default:
			if _, on := s.online(n); !on {
				results[n] = "Agent not connected"
			} else if err := p.PushScript(n, []byte(script), u.ID); err != nil {
				results[n] = "Error: " + err.Error()
			} else {
				results[n] = "ok"
				s.audit(auditEntry{userID: u.ID, action: "pushscript", target: n, from: c.ip, msg: fmt.Sprintf("Pushed script (%d bytes)", len(script))})
			}
		}
	}
	c.reply(r, map[string]any{"results": results})
}

// cmdDeviceCores is server-lite's own action (used by its CLI): which core
// each visible device runs, from the live registry and the stored record.
func (s *Server) cmdDeviceCores(c *conn, u accounts.User, r req) {
	ds, err := s.cfg.Store.Devices()
	if err != nil {
		c.result(r, "Internal error")
		return
	}
	groups, _ := s.groups()
	sort.Slice(ds, func(i, j int) bool {
		return ds[i].Name < ds[j].Name || (ds[i].Name == ds[j].Name && ds[i].ID < ds[j].ID)
	})
	out := []any{}
	for _, d := range ds {
		g, ok := groups[d.GroupID]
		if !ok || !accounts.EffectiveRights(u, d.GroupID, d.ID).Visible {
			continue
		}
		m := map[string]any{"_id": d.ID, "name": d.Name, "meshid": d.GroupID, "groupname": g.Name, "online": false,
			"core": d.CoreName, "coreHash": d.CoreHash, "pinnedCoreHash": d.PinnedCoreHash}
		if st, on := s.online(d.ID); on {
			m["online"] = true
			if st.CoreName != "" {
				m["core"] = st.CoreName
			}
			if st.CoreHash != "" {
				m["coreHash"] = st.CoreHash
			}
			m["flavor"] = st.Flavor
		}
		out = append(out, m)
	}
	c.reply(r, map[string]any{"devices": out})
}

// ---- login tokens ----

func (s *Server) cmdCreateLoginToken(c *conn, u accounts.User, r req) {
	if c.fromToken {
		c.result(r, "Access denied")
		return
	}
	name, _ := r.str("name")
	if n := len([]rune(name)); n < 1 || n > 100 {
		c.result(r, "Invalid name")
		return
	}
	exp, ok := r.num("expire")
	if _, present := r["expire"]; !present {
		exp, ok = 0, true
	}
	if !ok || exp < 0 || exp > 60*24*365*100 {
		c.result(r, "Invalid expire value")
		return
	}
	t, err := s.cfg.Accounts.CreateLoginToken(u.ID, name, time.Duration(exp)*time.Minute)
	if err != nil {
		s.log.Error("createLoginToken", "err", err)
		c.result(r, "Internal error")
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "loginTokenAdded", from: c.ip, msg: "Login token added: " + t.TokenUser})
	c.reply(r, map[string]any{"name": t.Name, "tokenUser": t.TokenUser, "tokenPass": t.Pass, "created": t.Created, "expire": t.Expire})
}

func (s *Server) cmdLoginTokens(c *conn, u accounts.User, r req) {
	if c.fromToken {
		c.result(r, "Access denied")
		return
	}
	remove, _ := r.strs("remove")
	left, err := s.cfg.Accounts.LoginTokens(u.ID, remove)
	if err != nil {
		c.result(r, "Internal error")
		return
	}
	if len(remove) > 0 {
		s.audit(auditEntry{userID: u.ID, action: "loginTokenChanged", from: c.ip, msg: "Login tokens removed: " + strings.Join(remove, ", ")})
	}
	out := make([]any, 0, len(left))
	for _, t := range left {
		out = append(out, map[string]any{"name": t.Name, "tokenUser": t.TokenUser, "created": t.Created, "expire": t.Expire})
	}
	c.reply(r, map[string]any{"loginTokens": out})
}
