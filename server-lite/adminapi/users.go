package adminapi

// Account management: users, adduser, deleteuser.

import (
	"errors"
	"math"
	"strings"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

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
		pass = s.cfg.Accounts.GeneratePassword() // never shown: the account needs a reset by an admin
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
	if _, err := s.cfg.Accounts.Get(name); err == nil {
		fail("User already exists", 7)
		return
	}
	if err := s.cfg.Accounts.CheckPassword(pass); err != nil {
		fail(passwordMsg(err), 3)
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
	if t.ID == u.ID {
		// The acting administrator stays: a server cannot lose its last one.
		c.result(r, "You cannot delete your own account")
		return
	}
	if err := s.cfg.Accounts.Delete(t.ID); err != nil {
		c.result(r, "Internal error")
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "accountremove", from: c.ip, msg: "Account removed " + t.ID})
	c.result(r, "ok")
	// Everything made from the account goes: cookies, relay tokens, relay
	// sessions (an open terminal), control sessions (this one too, after
	// its reply, when it deleted itself).
	s.endSessions(t.ID, "")
}
