package script

import (
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/osuser"
)

// runAs delivers a runcommands message the way the server does and
// returns the reply's result.
func runAs(t *testing.T, h *Host, c *capture, rid string, runAsUser int, cmds string) string {
	t.Helper()
	deliver(h, map[string]any{"action": "runcommands", "type": 3, "cmds": cmds, "runAsUser": runAsUser,
		"reply": true, "responseid": rid, "sessionid": "sess-" + rid, "userid": "user//admin"})
	m := c.wait(t, 20*time.Second, func(m map[string]any) bool { return isMsg("runcommands", "")(m) && m["responseid"] == rid })
	s, _ := m["result"].(string)
	return s
}

func serverLogged(t *testing.T, c *capture, sid, want string) {
	t.Helper()
	c.wait(t, 5*time.Second, func(m map[string]any) bool {
		return m["action"] == "log" && m["sessionid"] == sid && m["msg"] == want
	})
}

func TestRunCommandsAsUser(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("running as another user is not supported on windows")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: only root can switch to another user")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no 'nobody' account: %v", err)
	}
	h, c := startCore(t, Config{ConsoleUser: func() (string, error) { return "nobody", nil }})
	for _, mode := range []int{1, 2} {
		rid := fmt.Sprintf("user%d", mode)
		got := runAs(t, h, c, rid, mode, "id -u; id -g; echo \"$HOME|$USER|$LOGNAME|$PATH\"; pwd")
		lines := strings.Split(strings.TrimSpace(got), "\n")
		if len(lines) < 4 || lines[0] != u.Uid || lines[1] != u.Gid {
			t.Fatalf("runAsUser %d: output %q, want uid %s gid %s", mode, got, u.Uid, u.Gid)
		}
		if want := u.HomeDir + "|nobody|nobody|" + osuser.DefaultPath; lines[2] != want {
			t.Errorf("runAsUser %d: environment %q, want %q", mode, lines[2], want)
		}
		if wantDir := u.HomeDir; !isDir(wantDir) {
			if lines[3] != "/" {
				t.Errorf("runAsUser %d: cwd %q, want / (home %s missing)", mode, lines[3], wantDir)
			}
		} else if lines[3] != wantDir {
			t.Errorf("runAsUser %d: cwd %q, want %q", mode, lines[3], wantDir)
		}
		serverLogged(t, c, "sess-"+rid, "Running commands as user nobody")
	}
	// The supplementary groups are the user's, not root's.
	if got := strings.TrimSpace(runAs(t, h, c, "groups", 2, "id -G")); strings.Contains(" "+got+" ", " 0 ") {
		t.Errorf("runAsUser 2 kept root's group: id -G = %q", got)
	}
	// runAsUser 0 still runs as the agent.
	if got := strings.TrimSpace(runAs(t, h, c, "agent0", 0, "id -u")); got != "0" {
		t.Errorf("runAsUser 0: id -u = %q, want 0", got)
	}
}

func TestRunCommandsNoConsoleUser(t *testing.T) {
	h, c := startCore(t, Config{ConsoleUser: func() (string, error) { return "", nil }})
	if runtime.GOOS == "windows" {
		t.Skip("posix shell test")
	}
	got := runAs(t, h, c, "only", 2, "echo ran")
	if got != "Run commands can't execute: no user is logged in." {
		t.Errorf("runAsUser 2 without a user: %q", got)
	}
	got = strings.TrimSpace(runAs(t, h, c, "fallback", 1, "id -u"))
	if want := fmt.Sprint(os.Geteuid()); got != want {
		t.Errorf("runAsUser 1 without a user: id -u = %q, want the agent's %s", got, want)
	}
	serverLogged(t, c, "sess-fallback", "Running commands as the agent")
}

// A console user that does not exist is refused for runAsUser 2 rather
// than run as the agent.
func TestRunCommandsUnknownUser(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("posix shell test")
	}
	h, c := startCore(t, Config{ConsoleUser: func() (string, error) { return "no-such-user-meshgo", nil }})
	// consoleUser() resolves null for an account that is gone: refused.
	if got := runAs(t, h, c, "gone", 2, "echo ran"); got != "Run commands can't execute: no user is logged in." {
		t.Errorf("runAsUser 2 with a vanished user: %q", got)
	}
}

// proc.shell with a user never falls back to the agent's identity.
func TestShellUserRefusals(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("posix")
	}
	h, c := startCore(t, Config{})
	src := `var p = require('process'); var r = [];
function tryit(u) { try { p.shell('id -u', { user: u }); r.push('ok'); } catch (e) { r.push(e.message || String(e)); } }
tryit('no-such-user-meshgo'); tryit(''); tryit(4000000000); tryit('root');
require('mesh').send({ action: 'refusals', r: r });`
	deliver(h, map[string]any{"action": "msg", "type": "console", "value": "eval \"" + strings.ReplaceAll(strings.ReplaceAll(src, "\n", " "), `"`, `\"`) + "\"", "rights": admin, "sessionid": "ev"})
	m := c.wait(t, 10*time.Second, isAction("refusals"))
	r, _ := m["r"].([]any)
	if len(r) != 4 {
		t.Fatalf("refusals %v", m)
	}
	// As root, running as root is no switch at all; otherwise it is refused.
	asRoot := "cannot switch users"
	if os.Geteuid() == 0 {
		asRoot = "ok"
	}
	for i, want := range []string{"no such user", "empty user name", "no such user", asRoot} {
		if s, _ := r[i].(string); !strings.Contains(s, want) {
			t.Errorf("refusal %d = %q, want %q", i, s, want)
		}
	}
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
