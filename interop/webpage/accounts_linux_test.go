//go:build linux

package webpage

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/interop/webui"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/oidc"
	"github.com/meshgo/meshagent/server-lite/oidc/oidctest"
	"github.com/meshgo/meshagent/server-lite/servertest"
	"github.com/meshgo/meshagent/server-lite/store"
)

// runScript runs a testdata script with its JSON config under node and
// decodes the last line of its output into out; the browser's log goes
// to the test log.
func runScript(t *testing.T, script string, cfg map[string]any, out any) {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(filepath.Join("testdata", script))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", abs, cfgPath)
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what is left of the group node led
	}
	t.Logf("browser:\n%s", stderr.String())
	last := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(last, '\n'); i >= 0 {
		last = last[i+1:]
	}
	if err := json.Unmarshal([]byte(last), out); err != nil {
		t.Fatalf("node %s: %v; no result (%v): %q", script, runErr, err, stdout.String())
	}
}

type accountsResult struct {
	OK                 bool     `json:"ok"`
	Error              string   `json:"error"`
	FailShot           string   `json:"failShot"`
	PageErrors         []string `json:"pageErrors"`
	OtpURL             string   `json:"otpURL"`
	OtpState           string   `json:"otpState"`
	CodeAsked          bool     `json:"codeAsked"`
	BadCodeMsg         string   `json:"badCodeMsg"`
	TotpLogin          string   `json:"totpLogin"`
	ShortPassMsg       string   `json:"shortPassMsg"`
	PassChanged        bool     `json:"passChanged"`
	SelfButtons        []string `json:"selfButtons"`
	ResetPassLen       int      `json:"resetPassLen"`
	BobOldPassRefused  bool     `json:"bobOldPassRefused"`
	BobWhoami          string   `json:"bobWhoami"`
	DeactivateMsg      string   `json:"deactivateMsg"`
	BobLostAccess      bool     `json:"bobLostAccess"`
	BobReloadLoggedOut bool     `json:"bobReloadLoggedOut"`
	BobReloginMsg      string   `json:"bobReloginMsg"`
	OidcButton         string   `json:"oidcButton"`
	OidcWhoami         string   `json:"oidcWhoami"`
}

// TestWebPageAccounts walks the account features through the page in
// headless Chromium: the administrator turns on an authenticator app
// (the page shows the key, a code from it turns it on), logs in again
// with password and code (a wrong code refused), changes their password
// (a too short one refused), creates bob and resets his password (a random
// one, shown once); bob logs in with it in another browser context; the
// administrator deactivates bob and bob's open page loses access at once
// (and a reload and his password no longer get in); then a third user
// signs in through OpenID Connect at a provider started by the test on
// 127.0.0.1, and an account is created for them.
func TestWebPageAccounts(t *testing.T) {
	webui.RequireBrowserTools(t, "web page", "node", "npm")
	pw, err := webui.InstallPlaywright(t.Logf)
	if err != nil {
		t.Fatalf("playwright-core: %v", err)
	}
	prov := oidctest.Start(t, "")
	prov.Users["carol"] = oidctest.Identity{Subject: "carol-123", PreferredUsername: "carol", Email: "carol@example.org", Name: "Carol"}
	srv := servertest.Start(t, servertest.Options{Configure: func(c *app.Config) {
		c.OIDC = &oidc.Config{Issuer: prov.URL, ClientID: prov.ClientID, ClientSecret: prov.ClientSecret, Label: "Test IdP"}
	}})
	prov.Set(func(p *oidctest.Provider) { p.RedirectURL = "https://" + srv.Addr() + "/oidc/callback" })
	const newPass = "Admin-new-pass-1"
	var r accountsResult
	runScript(t, "accounts.js", map[string]any{
		"playwright": pw, "chromium": webui.ChromiumPath(), "flags": chromiumFlags(), "outDir": t.ArtifactDir(),
		"base": "https://" + srv.Addr(), "user": srv.AdminUser, "pass": srv.AdminPass, "newPass": newPass,
	}, &r)
	if !r.OK {
		t.Errorf("browser: %s (screenshots %s)", r.Error, r.FailShot)
	}
	for _, e := range r.PageErrors {
		t.Errorf("page error: %s", e)
	}
	t.Logf("result: %+v", r)

	// Authenticator app.
	if !strings.HasPrefix(r.OtpURL, "otpauth://totp/") || !strings.Contains(r.OtpState, "On") {
		t.Errorf("authenticator setup: url %q, state %q", r.OtpURL, r.OtpState)
	}
	if !r.CodeAsked || r.BadCodeMsg == "" || r.TotpLogin != srv.AdminUser {
		t.Errorf("login with a code: asked %v, wrong code message %q, signed in as %q", r.CodeAsked, r.BadCodeMsg, r.TotpLogin)
	}
	admin, err := srv.Accounts.Get(srv.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	if accounts.FactorData(admin, "totp") == nil {
		t.Error("the administrator's record has no authenticator app")
	}
	// Password change: the new password checks, the old one does not.
	if !strings.HasPrefix(r.ShortPassMsg, "Invalid password") || !r.PassChanged {
		t.Errorf("password change: short %q, changed %v", r.ShortPassMsg, r.PassChanged)
	}
	if _, err := srv.Accounts.Authenticate(srv.AdminUser, newPass); err != nil {
		t.Errorf("the new password does not check: %v", err)
	}
	if _, err := srv.Accounts.Authenticate(srv.AdminUser, srv.AdminPass); err == nil {
		t.Error("the old password still checks")
	}
	// Users: no self-removal offered; reset; deactivation.
	for _, b := range r.SelfButtons {
		if b == "Delete" || b == "Deactivate" {
			t.Errorf("the administrator's own row offers %q", b)
		}
	}
	if r.ResetPassLen < 20 || !r.BobOldPassRefused || r.BobWhoami != "bob" {
		t.Errorf("reset: password length %d, old refused %v, bob signed in as %q", r.ResetPassLen, r.BobOldPassRefused, r.BobWhoami)
	}
	if !r.BobLostAccess || !r.BobReloadLoggedOut || r.BobReloginMsg == "" {
		t.Errorf("deactivation: open page lost access %v, reload logged out %v, re-login message %q", r.BobLostAccess, r.BobReloadLoggedOut, r.BobReloginMsg)
	}
	if bob, err := srv.Accounts.Get("bob"); err != nil || bob.SiteAdmin&accounts.SiteLocked == 0 {
		t.Errorf("bob is not locked: %+v %v", bob, err)
	}
	// OpenID Connect.
	if r.OidcButton != "Sign in with Test IdP" || r.OidcWhoami != "carol" {
		t.Errorf("OpenID Connect: button %q, signed in as %q", r.OidcButton, r.OidcWhoami)
	}
	if c, err := srv.Accounts.Get("carol"); err != nil || c.External != prov.URL+" carol-123" {
		t.Errorf("carol's account: %+v %v", c, err)
	}
	// The audit log has each security event with who and from where.
	evs, err := srv.Store.Events(store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]store.Event{}
	for _, e := range evs {
		if _, ok := seen[e.Action]; !ok {
			seen[e.Action] = e
		}
	}
	for _, a := range []string{"2faadd", "login2fa", "loginfailed", "login", "passchange", "accountcreate", "passreset", "accountlock"} {
		e, ok := seen[a]
		if !ok {
			t.Errorf("audit log lacks %s", a)
			continue
		}
		if e.From == "" || e.Time.IsZero() || (e.Who == "" && a != "loginfailed") {
			t.Errorf("audit %s lacks who/where/when: %+v", a, e)
		}
	}
}
