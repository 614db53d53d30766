package app_test

import (
	"crypto/tls"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

// TestLockAgentDownload: with lockAgentDownload, /meshsettings and
// /meshagents answer 401 without a signed-in browser, and a group's .msh
// only to a user with the edit-group right on it; without it, anyone
// downloads (MeshCentral's default).
func TestLockAgentDownload(t *testing.T) {
	for _, lock := range []bool{false, true} {
		srv := servertest.Start(t, servertest.Options{Quiet: true, Configure: func(c *app.Config) { c.LockAgentDownload = lock }})
		if _, err := srv.Accounts.Create("bob", "bob-pass-1", 0); err != nil {
			t.Fatal(err)
		}
		base := "https://" + srv.Addr()
		settings := base + "/meshsettings?id=" + strings.TrimPrefix(srv.DefaultGroup.ID, "mesh//")
		withMesh := base + "/meshagents?id=6&meshid=" + strings.TrimPrefix(srv.DefaultGroup.ID, "mesh//") + "&installflags=0"
		get := func(c *http.Client, u string) int {
			resp, err := c.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		browser := func(user, pass string) *http.Client {
			jar, _ := cookiejar.New(nil)
			c := &http.Client{Jar: jar, Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
			if user != "" {
				resp, err := c.PostForm(base+"/login", url.Values{"username": {user}, "password": {pass}})
				if err != nil || resp.StatusCode != 200 {
					t.Fatalf("login %s: %v %v", user, resp, err)
				}
				resp.Body.Close()
			}
			return c
		}
		anon, bob, admin := browser("", ""), browser("bob", "bob-pass-1"), browser(srv.AdminUser, srv.AdminPass)
		if !lock {
			if got := get(anon, settings); got != 200 {
				t.Fatalf("unlocked: anonymous .msh %d", got)
			}
			continue
		}
		for _, tc := range []struct {
			who  string
			c    *http.Client
			u    string
			want int
		}{
			{"anonymous .msh", anon, settings, 401},
			{"anonymous binary", anon, base + "/meshagents?id=6", 401},
			{"bob .msh of a group he has no rights on", bob, settings, 401},
			{"bob binary with that group's .msh", bob, withMesh, 401},
			{"admin .msh", admin, settings, 200},
		} {
			if got := get(tc.c, tc.u); got != tc.want {
				t.Errorf("locked: %s: %d, want %d", tc.who, got, tc.want)
			}
		}
		// A signed-in user may fetch what names no group (the binary alone):
		// anything but 401 (404 here: no agent builds are configured).
		if got := get(bob, base+"/meshagents?id=6"); got == 401 {
			t.Errorf("locked: bob's plain binary download refused")
		}
	}
}
