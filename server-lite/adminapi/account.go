package adminapi

// Account self-service and administration, under MeshCentral's action
// names (meshuser.js): changepassword (own), changeuserpass (an
// administrator's reset), edituser (rights, lock = deactivate, names) and
// the authenticator app's otpauth-request / otpauth-setup / otpauth-clear.
// Nobody changes their own site rights, deletes or locks themselves, so the
// server always keeps the administrator who is acting.

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/accounts/totp"
)

// maxSecretField bounds the password and code fields of these requests.
const maxSecretField = 256

// cmdChangePassword changes the session user's own password. MeshCentral
// answers with a notification; server-lite answers the request itself
// (result "ok" or why not) so a client can tell.
func (s *Server) cmdChangePassword(c *conn, u accounts.User, r req) {
	if c.fromToken {
		c.result(r, "Not allowed with a login token")
		return
	}
	if u.External != "" {
		c.result(r, "This account signs in through its identity provider")
		return
	}
	oldPass, newPass := r.s("oldpass"), r.s("newpass")
	if len(oldPass) > maxSecretField || len(newPass) > maxSecretField {
		c.result(r, "Invalid password")
		return
	}
	// The current password is a credential: checked through the throttle
	// like a login, so a stolen session cannot guess it quickly.
	att, why := s.throttle.begin(c.ip, u.Name)
	if att == nil {
		s.banned(c.ip, u.Name, "change password", why)
		c.result(r, "Too many failed attempts; try again later")
		return
	}
	if _, err := s.cfg.Accounts.Authenticate(u.Name, oldPass); err != nil {
		s.loginFailed(c.ip, u.Name, "change password, current password", att.done(false))
		c.result(r, "Current password not correct")
		return
	}
	att.done(true)
	if err := s.cfg.Accounts.CheckPassword(newPass); err != nil {
		c.result(r, passwordMsg(err))
		return
	}
	if newPass == oldPass {
		c.result(r, "Invalid password: the same as the current one")
		return
	}
	if err := s.cfg.Accounts.SetPassword(u.ID, newPass); err != nil {
		s.log.Error("changepassword", "err", err)
		c.result(r, "Internal error")
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "passchange", from: c.ip, msg: "Account password changed: " + u.Name})
	c.result(r, "ok")
}

// passwordMsg turns a rules error into the reply text.
func passwordMsg(err error) string {
	if errors.Is(err, accounts.ErrBadPassword) {
		return "Invalid password" + strings.TrimPrefix(err.Error(), accounts.ErrBadPassword.Error())
	}
	return "Invalid password"
}

// target resolves the userid of an administrator's request and checks the
// actor may act on it (user management; only a full admin acts on one).
func (s *Server) target(c *conn, u accounts.User, r req, key string) (accounts.User, bool) {
	if !u.HasSite(accounts.SiteManageUsers) || c.fromToken && !u.IsSiteAdmin() {
		c.result(r, "Permission denied")
		return accounts.User{}, false
	}
	id, _ := r.str(key)
	if id == "" {
		id, _ = r.str("id")
	}
	if id == "" || len(id) > 2048 {
		c.result(r, "Invalid userid")
		return accounts.User{}, false
	}
	if !strings.HasPrefix(id, "user/") {
		id = accounts.UserID(id)
	}
	if strings.Count(id, "/") != 2 || !strings.HasPrefix(id, "user//") {
		c.result(r, "Invalid domain")
		return accounts.User{}, false
	}
	t, err := s.cfg.Accounts.Get(id)
	if err != nil {
		c.result(r, "User does not exists")
		return accounts.User{}, false
	}
	if t.IsSiteAdmin() && !u.IsSiteAdmin() {
		c.result(r, "Permission denied")
		return accounts.User{}, false
	}
	return t, true
}

// cmdChangeUserPass is an administrator's password reset. With "pass" the
// password is set to it (rules apply); with generate:true (server-lite's
// addition) a random one is made and returned once in the reply, never
// stored or logged in the clear. removeMultiFactor clears second factors.
// Either way the user's sessions, cookies and relays end: a reset is what
// an administrator does when an account may be in someone else's hands.
func (s *Server) cmdChangeUserPass(c *conn, u accounts.User, r req) {
	t, ok := s.target(c, u, r, "userid")
	if !ok {
		return
	}
	if t.ID == u.ID {
		c.result(r, "Use changepassword for your own account")
		return
	}
	if t.External != "" {
		c.result(r, "This account signs in through its identity provider")
		return
	}
	pass := r.s("pass")
	generated := false
	switch {
	case r.boolean("generate"):
		pass, generated = s.cfg.Accounts.GeneratePassword(), true
	case len(pass) > maxSecretField:
		c.result(r, "Invalid password")
		return
	case pass != "":
		if err := s.cfg.Accounts.CheckPassword(pass); err != nil {
			c.result(r, passwordMsg(err))
			return
		}
	}
	if pass == "" && !r.boolean("removeMultiFactor") {
		c.result(r, "Nothing to change")
		return
	}
	if pass != "" {
		if err := s.cfg.Accounts.SetPassword(t.ID, pass); err != nil {
			s.log.Error("changeuserpass", "err", err)
			c.result(r, "Internal error")
			return
		}
		s.audit(auditEntry{userID: u.ID, action: "passreset", from: c.ip, msg: "Password of " + t.ID + " reset" + map[bool]string{true: " to a generated one", false: ""}[generated]})
	}
	if r.boolean("removeMultiFactor") && len(t.Factors) > 0 {
		if err := s.cfg.Accounts.ClearFactors(t.ID); err != nil {
			s.log.Error("changeuserpass clear factors", "err", err)
			c.result(r, "Internal error")
			return
		}
		s.audit(auditEntry{userID: u.ID, action: "2faremove", from: c.ip, msg: "Second factors of " + t.ID + " removed"})
	}
	s.endSessions(t.ID, "")
	out := map[string]any{"result": "ok"}
	if generated {
		out["pass"] = pass
	}
	c.reply(r, out)
}

// cmdEditUser changes another user's site rights (lock = deactivate),
// real name or e-mail. As in MeshCentral nobody changes their own site
// rights, a user manager only toggles lock, no-new-groups and no-tools,
// and only a full admin edits a full admin. Locking ends every session,
// cookie, login token use and relay of the user at once.
func (s *Server) cmdEditUser(c *conn, u accounts.User, r req) {
	if _, ok := r.str("userid"); !ok {
		if n, ok := r.str("username"); ok {
			r["userid"] = n
		}
	}
	t, ok := s.target(c, u, r, "userid")
	if !ok {
		return
	}
	var changes []string
	newSite, siteGiven := t.SiteAdmin, false
	if _, present := r["siteadmin"]; present {
		v, ok := r.num("siteadmin")
		if !ok || v < 0 || v > math.MaxUint32 {
			c.result(r, "Invalid site permissions")
			return
		}
		newSite, siteGiven = uint32(v), true
	}
	if siteGiven && newSite != t.SiteAdmin {
		if t.ID == u.ID {
			c.result(r, "You cannot change your own rights")
			return
		}
		if !u.IsSiteAdmin() {
			const mask = accounts.SiteLocked | accounts.SiteNoNewGroups | accounts.SiteNoMeshCmd
			if (newSite^t.SiteAdmin)&^mask != 0 {
				c.result(r, "Permission denied")
				return
			}
		}
		changes = append(changes, fmt.Sprintf("site rights %#x -> %#x", t.SiteAdmin, newSite))
	}
	realname, rnGiven := r.str("realname")
	email, emGiven := r.str("email")
	if len(realname) > 256 {
		c.result(r, "Invalid real name")
		return
	}
	if len(email) > 1024 {
		c.result(r, "Invalid email")
		return
	}
	rnGiven = rnGiven && realname != t.RealName
	emGiven = emGiven && strings.ToLower(email) != t.Email
	if rnGiven {
		changes = append(changes, "real name")
	}
	if emGiven {
		changes = append(changes, "email")
	}
	if len(changes) == 0 {
		c.result(r, "ok")
		return
	}
	err := s.cfg.Accounts.Update(t.ID, func(x *accounts.User) error {
		if siteGiven {
			x.SiteAdmin = newSite
		}
		if rnGiven {
			x.RealName = realname
		}
		if emGiven {
			x.Email = strings.ToLower(email)
		}
		return nil
	})
	if err != nil {
		s.log.Error("edituser", "err", err)
		c.result(r, "Internal error")
		return
	}
	wasLocked := t.SiteAdmin != accounts.SiteAdmin && t.SiteAdmin&accounts.SiteLocked != 0
	nowLocked := newSite != accounts.SiteAdmin && newSite&accounts.SiteLocked != 0
	action := "accountchange"
	switch {
	case nowLocked && !wasLocked:
		action = "accountlock"
	case wasLocked && !nowLocked:
		action = "accountunlock"
	}
	s.audit(auditEntry{userID: u.ID, action: action, from: c.ip, msg: "Account " + t.ID + " changed: " + strings.Join(changes, ", ")})
	c.result(r, "ok")
	if siteGiven && (nowLocked || t.SiteAdmin&^newSite != 0) {
		// Locked, or rights taken away: what the user has open ends (a
		// lock at once; lost rights take effect on the next request anyway,
		// but an open relay would outlive them).
		s.endSessions(t.ID, "")
	}
}

// otpIssuer names the server in authenticator apps.
func (s *Server) otpIssuer() string {
	if s.cfg.ServerName != "" {
		return s.cfg.ServerName
	}
	return "server-lite"
}

// cmdOTPRequest starts authenticator-app setup: a fresh secret and its
// otpauth:// URL, held by the client until otpauth-setup proves the app
// has it (MeshCentral's flow; the secret is not stored before that).
func (s *Server) cmdOTPRequest(c *conn, u accounts.User, r req) {
	if c.fromToken {
		c.reply(r, map[string]any{"err": 3})
		return
	}
	if _, ok := s.cfg.Accounts.Factor(totp.Name); !ok {
		c.reply(r, map[string]any{"err": 4})
		return
	}
	sec := totp.NewSecret()
	c.reply(r, map[string]any{"secret": sec, "url": totp.URL(s.otpIssuer(), u.Name, sec)})
}

// cmdOTPSetup enables the authenticator app once a code from it checks.
func (s *Server) cmdOTPSetup(c *conn, u accounts.User, r req) {
	if c.fromToken {
		c.reply(r, map[string]any{"success": false, "result": "Not allowed with a login token"})
		return
	}
	if _, ok := s.cfg.Accounts.Factor(totp.Name); !ok {
		c.reply(r, map[string]any{"success": false, "result": "Authenticator apps are not enabled"})
		return
	}
	sec, code := r.s("secret"), r.s("token")
	key, err := totp.DecodeSecret(sec)
	if err != nil || len(sec) > 128 || len(code) > 16 {
		c.reply(r, map[string]any{"success": false, "result": "Invalid secret"})
		return
	}
	st, ok := totp.Check(key, code, time.Now(), 0)
	if !ok {
		c.reply(r, map[string]any{"success": false, "result": "Code not correct"})
		return
	}
	if err := s.cfg.Accounts.SetFactorData(u.ID, totp.Name, totp.Data(strings.ToUpper(strings.ReplaceAll(sec, " ", "")), st)); err != nil {
		s.log.Error("otpauth-setup", "err", err)
		c.reply(r, map[string]any{"success": false, "result": "Internal error"})
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "2faadd", from: c.ip, msg: "Added authentication application"})
	c.reply(r, map[string]any{"success": true})
}

// cmdOTPClear removes the session user's authenticator app.
func (s *Server) cmdOTPClear(c *conn, u accounts.User, r req) {
	if c.fromToken {
		c.reply(r, map[string]any{"success": false})
		return
	}
	if accounts.FactorData(u, totp.Name) == nil {
		c.reply(r, map[string]any{"success": false})
		return
	}
	if err := s.cfg.Accounts.SetFactorData(u.ID, totp.Name, nil); err != nil {
		s.log.Error("otpauth-clear", "err", err)
		c.reply(r, map[string]any{"success": false})
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "2faremove", from: c.ip, msg: "Removed authentication application"})
	c.reply(r, map[string]any{"success": true})
}
