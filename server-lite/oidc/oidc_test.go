package oidc_test

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/oidc"
	"github.com/meshgo/meshagent/server-lite/oidc/oidctest"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

// start runs server-lite with sign-in through a test provider on 127.0.0.1.
func start(t *testing.T) (*servertest.Server, *oidctest.Provider) {
	t.Helper()
	p := oidctest.Start(t, "")
	p.Users["alice"] = oidctest.Identity{Subject: "sub-alice", PreferredUsername: "alice", Email: "Alice@Example.org", Name: "Alice A"}
	p.Users["admin-impostor"] = oidctest.Identity{Subject: "sub-x", PreferredUsername: "admin"}
	srv := servertest.Start(t, servertest.Options{Configure: func(c *app.Config) {
		c.OIDC = &oidc.Config{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret, Label: "Test IdP"}
	}})
	p.Set(func(p *oidctest.Provider) { p.RedirectURL = "https://" + srv.Addr() + "/oidc/callback" })
	return srv, p
}

// browser is an HTTP client with cookies that trusts the test certificate
// and records the last response.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
}

// signIn walks /oidc/login through the provider (approving login) and
// back; it returns the final status and body.
func signIn(t *testing.T, c *http.Client, srv *servertest.Server, p *oidctest.Provider, login string) (int, string) {
	t.Helper()
	p.Set(func(p *oidctest.Provider) { p.Approve = login })
	resp, err := c.Get("https://" + srv.Addr() + "/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// whoami opens control.ashx with the client's session cookie.
func whoami(t *testing.T, c *http.Client, srv *servertest.Server) string {
	t.Helper()
	u, _ := url.Parse("https://" + srv.Addr() + "/")
	h := http.Header{}
	for _, ck := range c.Jar.Cookies(u) {
		h.Add("Cookie", ck.Name+"="+ck.Value)
	}
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 10 * time.Second}
	ws, _, err := d.Dial("wss://"+srv.Addr()+"/control.ashx", h)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 2 {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			return ""
		}
		if m["action"] == "close" {
			return ""
		}
		if m["action"] == "userinfo" {
			return m["userinfo"].(map[string]any)["name"].(string)
		}
	}
	return ""
}

// TestSignIn: a first sign-in creates the account (no password, no rights,
// verified e-mail), a second finds it again; an identity whose name is
// that of a local account gets another name and never the local account.
func TestSignIn(t *testing.T) {
	srv, p := start(t)
	c := browser(t)
	if code, body := signIn(t, c, srv, p, "alice"); code != 200 || !strings.Contains(body, "server-lite") {
		t.Fatalf("sign-in: %d %.200s", code, body)
	}
	if got := whoami(t, c, srv); got != "alice" {
		t.Fatalf("session after sign-in is %q", got)
	}
	u, err := srv.Accounts.Get("alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.External != p.URL+" sub-alice" || len(u.PasswordHash) != 0 || u.SiteAdmin != 0 || len(u.Links) != 0 || u.Email != "alice@example.org" || u.RealName != "Alice A" {
		t.Fatalf("created account %+v", u)
	}
	// No password login for it.
	if _, err := srv.Accounts.Authenticate("alice", ""); err == nil {
		t.Fatal("password login to an external account")
	}
	c2 := browser(t)
	if code, _ := signIn(t, c2, srv, p, "alice"); code != 200 || whoami(t, c2, srv) != "alice" {
		t.Fatal("second sign-in did not find the account")
	}
	us, _ := srv.Accounts.List()
	if len(us) != 2 {
		t.Fatalf("%d accounts after two sign-ins of one identity", len(us))
	}
	c3 := browser(t)
	signIn(t, c3, srv, p, "admin-impostor")
	if got := whoami(t, c3, srv); got == srv.AdminUser || !strings.HasPrefix(got, "admin-") {
		t.Fatalf("an identity named admin signed in as %q", got)
	}
	// /oidc/config tells the page.
	resp, err := c.Get("https://" + srv.Addr() + "/oidc/config")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if cfg["enabled"] != true || cfg["label"] != "Test IdP" {
		t.Fatalf("/oidc/config: %v", cfg)
	}
}

// TestSignInRefused: what the relying party must refuse.
func TestSignInRefused(t *testing.T) {
	srv, p := start(t)
	for _, tc := range []struct {
		name string
		set  func(p *oidctest.Provider)
	}{
		{"wrong nonce", func(p *oidctest.Provider) { p.Tamper = func(c map[string]any) { c["nonce"] = "other" } }},
		{"wrong audience", func(p *oidctest.Provider) { p.Tamper = func(c map[string]any) { c["aud"] = "another-client" } }},
		{"wrong issuer", func(p *oidctest.Provider) { p.Tamper = func(c map[string]any) { c["iss"] = "https://evil.example" } }},
		{"expired", func(p *oidctest.Provider) {
			p.Tamper = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }
		}},
		{"unpublished key", func(p *oidctest.Provider) { p.WrongKey = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Set(func(p *oidctest.Provider) { p.Tamper, p.WrongKey = nil, false; tc.set(p) })
			c := browser(t)
			if code, body := signIn(t, c, srv, p, "alice"); code != http.StatusForbidden {
				t.Fatalf("status %d: %.200s", code, body)
			}
			if whoami(t, c, srv) != "" {
				t.Fatal("a session after a refused sign-in")
			}
		})
	}
	p.Set(func(p *oidctest.Provider) { p.Tamper, p.WrongKey = nil, false })
	if _, err := srv.Accounts.Get("alice"); err == nil {
		t.Fatal("a refused sign-in created the account")
	}

	// A callback not started by this browser (login CSRF: someone else's
	// code and state), and a state used twice, are refused.
	attacker := browser(t)
	attacker.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if strings.HasSuffix(r.URL.Path, "/oidc/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	p.Set(func(p *oidctest.Provider) { p.Approve = "alice" })
	resp, err := attacker.Get("https://" + srv.Addr() + "/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cb := resp.Header.Get("Location")
	if !strings.Contains(cb, "/oidc/callback?") {
		t.Fatalf("no callback redirect: %d %q", resp.StatusCode, cb)
	}
	victim := browser(t)
	r2, err := victim.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusBadRequest || whoami(t, victim, srv) != "" {
		t.Fatalf("callback in another browser: %d", r2.StatusCode)
	}
	// The state is now spent, even for the browser that started it.
	r3, err := attacker.Get(cb)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.StatusCode != http.StatusBadRequest {
		t.Fatalf("replayed state: %d", r3.StatusCode)
	}

	// A deactivated account cannot sign in.
	c := browser(t)
	if code, _ := signIn(t, c, srv, p, "alice"); code != 200 {
		t.Fatal("sign-in failed")
	}
	if err := srv.Accounts.Update("alice", func(u *accounts.User) error { u.SiteAdmin |= accounts.SiteLocked; return nil }); err != nil {
		t.Fatal(err)
	}
	c = browser(t)
	if code, _ := signIn(t, c, srv, p, "alice"); code != http.StatusForbidden || whoami(t, c, srv) != "" {
		t.Fatalf("deactivated account signed in: %d", code)
	}
}
