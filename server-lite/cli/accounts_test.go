package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/accounts/totp"
)

// TestAccountCommands: passwd, reset-password, deactivate/activate and
// --token, through the CLI against an in-process server-lite.
func TestAccountCommands(t *testing.T) {
	e := newEnv(t)
	if _, err := e.app.Accounts.Create("bob", "bob-pass-1", 0); err != nil {
		t.Fatal(err)
	}
	bob := func(pass string, args ...string) (string, string, int) {
		e2 := *e
		e2.pass = pass
		return e2.cli(append([]string{args[0], "--user", "bob"}, args[1:]...)...)
	}
	// passwd: the new password from a file; a short one refused.
	f := filepath.Join(t.TempDir(), "new")
	os.WriteFile(f, []byte("short\n"), 0o600)
	if _, errs, code := bob("bob-pass-1", "passwd", "--new-pass-file", f); code == 0 || !strings.Contains(errs, "Invalid password") {
		t.Fatalf("passwd to a short password: %d %q", code, errs)
	}
	os.WriteFile(f, []byte("bob-new-pass\n"), 0o600)
	if _, errs, code := bob("bob-pass-1", "passwd", "--new-pass-file", f); code != 0 {
		t.Fatalf("passwd: %d %q", code, errs)
	}
	if _, err := e.app.Accounts.Authenticate("bob", "bob-new-pass"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// reset-password prints the generated password once.
	out, errs, code := e.cli("reset-password", "--id", "bob")
	parts := strings.Split(strings.TrimSpace(out), "\t")
	if code != 0 || len(parts) != 2 || parts[0] != "user//bob" || len(parts[1]) < 20 {
		t.Fatalf("reset-password: %d %q %q", code, out, errs)
	}
	gen := parts[1]
	if _, _, code := bob(gen, "devices"); code != 0 {
		t.Fatal("the generated password does not log in")
	}
	// deactivate: bob is out; activate: back in. One's own account: refused.
	if _, errs, code := e.cli("deactivate", "--id", "bob"); code != 0 {
		t.Fatalf("deactivate: %q", errs)
	}
	if _, errs, code := bob(gen, "devices"); code == 0 || !strings.Contains(errs, "login refused") {
		t.Fatalf("deactivated bob: %d %q", code, errs)
	}
	if _, errs, code := e.cli("deactivate", "--id", "admin"); code == 0 || !strings.Contains(errs, "full administrator") {
		t.Fatalf("deactivate a full administrator: %d %q", code, errs)
	}
	// A user manager cannot deactivate themselves either.
	if _, err := e.app.Accounts.Create("carol", "carol-pass-1", accounts.SiteManageUsers); err != nil {
		t.Fatal(err)
	}
	e3 := *e
	e3.pass = "carol-pass-1"
	if _, errs, code := e3.cli("deactivate", "--user", "carol", "--id", "carol"); code == 0 || !strings.Contains(errs, "own rights") {
		t.Fatalf("deactivate self: %d %q", code, errs)
	}
	if _, errs, code := e.cli("activate", "--id", "bob"); code != 0 {
		t.Fatalf("activate: %q", errs)
	}
	if _, errs, code := bob(gen, "devices"); code != 0 {
		t.Fatalf("activated bob: %q", errs)
	}
	// --token for an account with an authenticator app.
	sec := totp.NewSecret()
	key, _ := totp.DecodeSecret(sec)
	if err := e.app.Accounts.SetFactorData("bob", totp.Name, totp.Data(sec, 0)); err != nil {
		t.Fatal(err)
	}
	if _, errs, code := bob(gen, "devices"); code == 0 || !strings.Contains(errs, "--token") {
		t.Fatalf("without --token: %d %q", code, errs)
	}
	if _, errs, code := bob(gen, "devices", "--token", totp.Code(key, time.Now())); code != 0 {
		t.Fatalf("with --token: %d %q", code, errs)
	}
	if u, _ := e.app.Accounts.Get("bob"); u.SiteAdmin&accounts.SiteLocked != 0 {
		t.Fatal("bob still locked")
	}
}
