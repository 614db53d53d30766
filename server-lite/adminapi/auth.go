package adminapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// authResult is who a control.ashx request authenticated as, or why not.
type authResult struct {
	login accounts.Login
	ok    bool
	cause string // close cause on failure
	msg   string // close msg on failure
	// banned: refused by the login throttle without checking anything.
	banned bool
	// factor is set when the password was right but a second factor is
	// needed (Required) or its code was refused.
	factor *accounts.FactorError
}

const sessionCookieName = "xid"

// authenticate applies the credential methods in MeshCentral's order
// (admin-api.md §1.2): ?user=&pass=, ?auth= cookie (a bad one is ignored),
// x-meshauth, then the xid session cookie.
func (s *Server) authenticate(r *http.Request) authResult {
	q := r.URL.Query()
	ip := remoteIP(r)
	if u, p := q.Get("user"), q.Get("pass"); u != "" && p != "" {
		return s.passwordLogin(ip, u, p, q.Get("token"), "noauth-2a", "query")
	}
	if a := q.Get("auth"); a != "" {
		if c, ok := s.cookies.check(a, kindSession, ""); ok {
			if res, ok := s.cookieLogin(c); ok {
				return res
			}
		}
		// A login-key cookie is a credential like a password: checked
		// through the throttle, a bad one counted against the address.
		att, why := s.throttle.begin(ip, "")
		if att == nil {
			return s.banned(ip, "", "login key", why)
		}
		if id, ok := decodeLoginCookie(s.cfg.LoginKey, a, time.Now()); ok {
			if res, ok := s.cookieLogin(cookie{userID: id}); ok {
				att.done(true)
				return res
			}
		}
		s.loginFailed(ip, "", "login key", att.done(false))
	}
	if h := r.Header.Get("X-Meshauth"); h != "" {
		user, pass, code, err := parseMeshAuth(h)
		if err != nil {
			return authResult{cause: "noauth", msg: "noauth-2c"}
		}
		return s.passwordLogin(ip, user, pass, code, "noauth-2d", "x-meshauth")
	}
	if ck, err := r.Cookie(sessionCookieName); err == nil {
		if c, ok := s.cookies.check(ck.Value, kindSession, ""); ok {
			if res, ok := s.cookieLogin(c); ok {
				return res
			}
		}
	}
	return authResult{cause: "noauth", msg: "noauth"}
}

// passwordLogin checks a user name (or token user) and password from ip
// through the login throttle, then the user's second factor (code; login
// tokens have none, as in MeshCentral); method names the path for the
// audit log.
func (s *Server) passwordLogin(ip, user, pass, code, failMsg, method string) authResult {
	att, why := s.throttle.begin(ip, user)
	if att == nil {
		return s.banned(ip, user, method, why)
	}
	l, err := s.cfg.Accounts.Authenticate(user, pass)
	if err != nil {
		if !errors.Is(err, accounts.ErrInvalidLogin) {
			s.log.Error("authenticate", "err", err)
		}
		s.loginFailed(ip, user, method, att.done(false))
		return authResult{cause: "noauth", msg: failMsg}
	}
	if !l.FromToken {
		factor, err := s.cfg.Accounts.SecondFactor(l.User, code)
		var fe *accounts.FactorError
		switch {
		case errors.As(err, &fe) && fe.Required:
			// The password was right: not a failure, but no login either.
			att.done(true)
			if err != fe {
				s.log.Error("second factor challenge", "user", l.User.ID, "err", err)
			}
			s.audit(auditEntry{userID: l.User.ID, action: "login2fa", from: ip,
				msg: fmt.Sprintf("Second factor required (%s; %s)", method, strings.Join(fe.Enabled, ", ")) + sentNote(fe.Sent)})
			return authResult{cause: "noauth", msg: "tokenrequired", factor: fe}
		case errors.As(err, &fe):
			// A wrong code counts like a wrong password, so codes cannot be
			// guessed faster than passwords.
			s.loginFailed(ip, user, method+", second factor", att.done(false))
			return authResult{cause: "noauth", msg: failMsg, factor: fe}
		case err != nil:
			att.done(false)
			s.log.Error("second factor", "user", l.User.ID, "err", err)
			return authResult{cause: "noauth", msg: failMsg}
		}
		if factor != "" {
			s.audit(auditEntry{userID: l.User.ID, action: "login2faok", from: ip, msg: "Second factor accepted (" + factor + ")"})
			method += ", second factor " + factor
		}
	}
	att.done(true)
	msg := "Account login (" + method + ")"
	if l.FromToken {
		msg = "Account login with login token " + l.TokenUser + " (" + method + ")"
	}
	s.audit(auditEntry{userID: l.User.ID, action: "login", from: ip, msg: msg})
	// Site right 128 ("no tools") refuses password logins of non-full admins.
	if !l.User.IsSiteAdmin() && l.User.SiteAdmin&accounts.SiteNoMeshCmd != 0 {
		return authResult{cause: "notools", msg: "notools"}
	}
	return authResult{login: l, ok: true}
}

// loginFailed audits one failed login, and the start of a throttle ban
// when this failure reached a limit. The password is never logged.
func (s *Server) loginFailed(ip, user, method string, reached []string) {
	s.audit(auditEntry{action: "loginfailed", from: ip, msg: "Failed login (" + method + ") as " + quoteName(user)})
	for _, why := range reached {
		lim := s.throttle.lim
		n := lim.AddrFailures
		if why == throttledAccount {
			n = lim.AccountFailures
		}
		msg := fmt.Sprintf("Logins refused for this %s: %d failures within %v", why, n, lim.Window)
		if why == throttledAccount {
			msg += " for " + quoteName(user)
		}
		s.log.Warn("login throttled", "limit", why, "from", ip, "user", user, "failures", n, "window", lim.Window)
		s.audit(auditEntry{action: "loginbanned", from: ip, msg: msg})
	}
}

// banned is the answer to an attempt the throttle refused, before any
// credential is checked: MeshCentral's close cause for a banned address.
func (s *Server) banned(ip, user, method, why string) authResult {
	s.log.Debug("login refused by throttle", "limit", why, "from", ip, "user", user, "method", method)
	return authResult{cause: "banned", msg: "banned-1", banned: true}
}

// quoteName bounds and quotes a user-supplied name for the audit log.
func quoteName(n string) string { return fmt.Sprintf("%q", truncate(n, 64)) }

func (s *Server) cookieLogin(c cookie) (authResult, bool) {
	u, err := s.cfg.Accounts.Get(c.userID)
	if err != nil {
		return authResult{}, false
	}
	if !u.IsSiteAdmin() && u.SiteAdmin&accounts.SiteLocked != 0 {
		return authResult{}, false
	}
	// A cookie made from a login token dies with the token (removed or
	// expired), as MeshCentral's does (admin-api.md §1.6).
	if c.fromToken && !accounts.TokenValid(u, c.tokenUser, time.Now()) {
		return authResult{}, false
	}
	return authResult{login: accounts.Login{User: u, FromToken: c.fromToken, TokenUser: c.tokenUser}, ok: true}, true
}

// sentNote says which factors sent a code, for the audit log.
func sentNote(sent []string) string {
	if len(sent) == 0 {
		return ""
	}
	return "; code sent by " + strings.Join(sent, ", ")
}

// parseMeshAuth decodes "b64(user),b64(pass)[,b64(token)]"; the third part
// is the second factor's code (meshctrl --token).
func parseMeshAuth(h string) (user, pass, code string, err error) {
	parts := strings.Split(h, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return "", "", "", fmt.Errorf("x-meshauth: %d parts", len(parts))
	}
	var out [3]string
	for i, what := range []string{"user", "password", "token"}[:len(parts)] {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(parts[i]))
		if err != nil {
			return "", "", "", fmt.Errorf("x-meshauth %s: %w", what, err)
		}
		out[i] = string(b)
	}
	return out[0], out[1], out[2], nil
}

// serveLogin is the form login (admin-api.md §1.4). Unlike MeshCentral it
// sets the session cookie only on success and answers failure with 401, so
// a client can tell the two apart (§6.2 #11).
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	if a := r.PostForm.Get("action"); a != "" && a != "login" {
		http.Error(w, "unsupported action", http.StatusBadRequest)
		return
	}
	user, pass := r.PostForm.Get("username"), r.PostForm.Get("password")
	res := s.passwordLogin(remoteIP(r), user, pass, r.PostForm.Get("token"), "noauth", "form")
	if res.banned {
		w.Header().Set("Retry-After", fmt.Sprint(int(s.throttle.lim.Window.Seconds())))
		http.Error(w, "Too many failed logins from this address or for this account; try again later", http.StatusTooManyRequests)
		return
	}
	if res.factor != nil && res.factor.Required {
		// 401 with what the page needs to ask for the code.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]any{"error": "tokenrequired", "factors": res.factor.Enabled, "sent": res.factor.Sent})
		return
	}
	if !res.ok || user == "" {
		if d := s.cfg.LoginFailDelay; d > 0 {
			time.Sleep(d)
		}
		http.Error(w, "Invalid login", http.StatusUnauthorized)
		return
	}
	v := s.cookies.mint(cookie{kind: kindSession, userID: res.login.User.ID, fromToken: res.login.FromToken, tokenUser: res.login.TokenUser}, sessionCookieLife)
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: v, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookieName); err == nil {
		s.cookies.revoke(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	fmt.Fprintln(w, "ok")
}

// SignIn gives the browser a session for userID after a sign-in that
// server-lite did not check itself (OpenID Connect): the same session
// cookie as the form login, audited as a login by method. A deleted or
// deactivated account is refused.
func (s *Server) SignIn(w http.ResponseWriter, r *http.Request, userID, method string) error {
	u, err := s.cfg.Accounts.Get(userID)
	if err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	if !u.IsSiteAdmin() && u.SiteAdmin&accounts.SiteLocked != 0 {
		s.loginFailed(remoteIP(r), u.Name, method+", account deactivated", nil)
		return errors.New("sign in: account deactivated")
	}
	v := s.cookies.mint(cookie{kind: kindSession, userID: u.ID}, sessionCookieLife)
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: v, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	s.audit(auditEntry{userID: u.ID, action: "login", from: remoteIP(r), msg: "Account login (" + method + ")"})
	return nil
}

// Audit records a security event from another part of the server (the
// OpenID Connect sign-in) in the audit log.
func (s *Server) Audit(userID, action, from, msg string) {
	s.audit(auditEntry{userID: userID, action: action, from: from, msg: msg})
}

// SessionUser is the account a browser request's session cookie (xid)
// belongs to, if it is valid and the account may sign in; for routes
// outside control.ashx that need a signed-in user (lockAgentDownload).
func (s *Server) SessionUser(r *http.Request) (accounts.User, bool) {
	ck, err := r.Cookie(sessionCookieName)
	if err != nil {
		return accounts.User{}, false
	}
	c, ok := s.cookies.check(ck.Value, kindSession, "")
	if !ok {
		return accounts.User{}, false
	}
	res, ok := s.cookieLogin(c)
	if !ok {
		return accounts.User{}, false
	}
	return res.login.User, true
}
