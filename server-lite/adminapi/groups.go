package adminapi

// Device-group management: createmesh, deletemesh, addmeshuser.

import (
	"crypto/rand"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

func newGroupID() string {
	b := make([]byte, handshake.HashLen)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return handshake.MeshIDPrefix + handshake.EncodeID(b)
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
	s.endRelays("", s.groupDevices(g.ID))
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
		old, had := tu.Links[g.ID]
		if err := s.cfg.Accounts.SetLink(tu.ID, g.ID, rights, remove); err != nil {
			msgs = append(msgs, "Error "+tu.Name)
			continue
		}
		// Rights cut: the user's relay sessions to the group's devices
		// end; a new one is checked against the new rights.
		if had && (remove || old == accounts.FullRights && rights != accounts.FullRights || old&^rights != 0) {
			s.endRelays(tu.ID, s.groupDevices(g.ID))
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
