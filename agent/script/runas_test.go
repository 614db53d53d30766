package script

import (
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestPickConsoleUser(t *testing.T) {
	e := func(user, term, host string, started int) loginEntry {
		return loginEntry{User: user, Terminal: term, Host: host, Started: started}
	}
	tests := []struct {
		name    string
		entries []loginEntry
		want    string
	}{
		{"none", nil, ""},
		{"only root", []loginEntry{e("root", "tty1", "", 10), e("root", ":0", "", 20)}, ""},
		{"X display terminal beats ssh", []loginEntry{e("bob", "pts/0", "10.0.0.5", 50), e("alice", ":0", "", 10)}, "alice"},
		{"X display as host (gdm)", []loginEntry{e("bob", "tty1", "", 50), e("carol", "tty2", ":1", 10)}, "carol"},
		{"local tty beats pts", []loginEntry{e("bob", "pts/3", "", 50), e("dave", "tty1", "", 10)}, "dave"},
		{"logind seat", []loginEntry{e("bob", "pts/1", "192.168.1.2", 50), e("erin", "seat0", "", 10)}, "erin"},
		{"macOS console", []loginEntry{e("bob", "ttys000", "", 50), e("frank", "console", "", 10)}, "frank"},
		{"tty with remote host is not local", []loginEntry{e("bob", "tty1", "host.example", 50), e("gina", "pts/0", "", 60)}, "gina"},
		{"any non-root user as a last resort", []loginEntry{e("root", "tty1", "", 90), e("hank", "pts/0", "10.1.1.1", 10)}, "hank"},
		{"most recent login wins a tie", []loginEntry{e("ivan", ":0", "", 10), e("judy", ":1", "", 20)}, "judy"},
		{"name breaks an exact tie", []loginEntry{e("mike", "tty1", "", 10), e("kate", "tty2", "", 10)}, "kate"},
		{"implausible names skipped", []loginEntry{e("", ":0", "", 90), e("a b", ":0", "", 90), e("lena", "pts/0", "", 1)}, "lena"},
		{"root on the display, user on ssh", []loginEntry{e("root", ":0", "", 90), e("nina", "pts/0", "10.0.0.1", 1)}, "nina"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := pickConsoleUser(tc.entries); got != tc.want {
				t.Errorf("pickConsoleUser = %q, want %q", got, tc.want)
			}
		})
	}
}

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
		if want := u.HomeDir + "|nobody|nobody|" + userPath; lines[2] != want {
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
