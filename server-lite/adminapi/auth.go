package adminapi

import (
	"encoding/base64"
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
}

const sessionCookieName = "xid"

// authenticate applies the credential methods in MeshCentral's order
// (admin-api.md §1.2): ?user=&pass=, ?auth= cookie (a bad one is ignored),
// x-meshauth, then the xid session cookie.
func (s *Server) authenticate(r *http.Request) authResult {
	q := r.URL.Query()
	if u, p := q.Get("user"), q.Get("pass"); u != "" && p != "" {
		return s.passwordLogin(u, p, "noauth-2a")
	}
	if a := q.Get("auth"); a != "" {
		if c, ok := s.cookies.check(a, kindSession, ""); ok {
			if res, ok := s.cookieLogin(c); ok {
				return res
			}
		}
		if id, ok := decodeLoginCookie(s.cfg.LoginKey, a, time.Now()); ok {
			if res, ok := s.cookieLogin(cookie{userID: id}); ok {
				return res
			}
		}
	}
	if h := r.Header.Get("X-Meshauth"); h != "" {
		user, pass, err := parseMeshAuth(h)
		if err != nil {
			return authResult{cause: "noauth", msg: "noauth-2c"}
		}
		return s.passwordLogin(user, pass, "noauth-2d")
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

func (s *Server) passwordLogin(user, pass, failMsg string) authResult {
	l, err := s.cfg.Accounts.Authenticate(user, pass)
	if err != nil {
		if !errors.Is(err, accounts.ErrInvalidLogin) {
			s.log.Error("authenticate", "err", err)
		}
		return authResult{cause: "noauth", msg: failMsg}
	}
	// Site right 128 ("no tools") refuses password logins of non-full admins.
	if !l.User.IsSiteAdmin() && l.User.SiteAdmin&accounts.SiteNoMeshCmd != 0 {
		return authResult{cause: "notools", msg: "notools"}
	}
	return authResult{login: l, ok: true}
}

func (s *Server) cookieLogin(c cookie) (authResult, bool) {
	u, err := s.cfg.Accounts.Get(c.userID)
	if err != nil {
		return authResult{}, false
	}
	if !u.IsSiteAdmin() && u.SiteAdmin&accounts.SiteLocked != 0 {
		return authResult{}, false
	}
	return authResult{login: accounts.Login{User: u, FromToken: c.fromToken}, ok: true}, true
}

// parseMeshAuth decodes "b64(user),b64(pass)[,b64(token)]". A third part
// (2FA) is accepted and ignored: server-lite has no second factor.
func parseMeshAuth(h string) (user, pass string, err error) {
	parts := strings.Split(h, ",")
	if len(parts) < 2 || len(parts) > 3 {
		return "", "", fmt.Errorf("x-meshauth: %d parts", len(parts))
	}
	u, err := base64.StdEncoding.DecodeString(strings.TrimSpace(parts[0]))
	if err != nil {
		return "", "", fmt.Errorf("x-meshauth user: %w", err)
	}
	p, err := base64.StdEncoding.DecodeString(strings.TrimSpace(parts[1]))
	if err != nil {
		return "", "", fmt.Errorf("x-meshauth password: %w", err)
	}
	return string(u), string(p), nil
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
	res := s.passwordLogin(user, pass, "noauth")
	if !res.ok || user == "" {
		s.audit(auditEntry{userID: "", action: "loginfailed", from: remoteIP(r), msg: "Failed form login"})
		if d := s.cfg.LoginFailDelay; d > 0 {
			time.Sleep(d)
		}
		http.Error(w, "Invalid login", http.StatusUnauthorized)
		return
	}
	v := s.cookies.mint(cookie{kind: kindSession, userID: res.login.User.ID, fromToken: res.login.FromToken}, sessionCookieLife)
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: v, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	s.audit(auditEntry{userID: res.login.User.ID, action: "login", from: remoteIP(r), msg: "Account login"})
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

func (s *Server) serveLogout(w http.ResponseWriter, r *http.Request) {
	if ck, err := r.Cookie(sessionCookieName); err == nil {
		s.cookies.revoke(ck.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true})
	fmt.Fprintln(w, "ok")
}
