package adminapi

// Login tokens: createLoginToken, loginTokens.

import (
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

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
	// Whatever was made from a token now gone (removed or expired and
	// purged) ends with it.
	kept := map[string]bool{}
	for _, t := range left {
		kept[t.TokenUser] = true
	}
	for _, t := range u.LoginTokens {
		if !kept[t.TokenUser] {
			s.endSessions(u.ID, t.TokenUser)
		}
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
