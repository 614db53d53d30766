//go:build !windows

package osuser

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestLookup(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Skip(err)
	}
	for _, spec := range []string{me.Username, me.Uid} {
		u, err := Lookup(spec)
		if err != nil || u.Name != me.Username || u.UID != me.Uid || u.Home != me.HomeDir || u.Shell == "" {
			t.Errorf("Lookup(%q) = %+v, %v", spec, u, err)
		}
	}
	for _, spec := range []string{"no-such-user-meshgo", "4000000000"} {
		if _, err := Lookup(spec); !errors.Is(err, ErrNoSuchUser) {
			t.Errorf("Lookup(%q) err = %v, want ErrNoSuchUser", spec, err)
		}
	}
	if _, err := Lookup(""); err == nil || !strings.Contains(err.Error(), "empty user name") {
		t.Errorf("Lookup(\"\") err = %v", err)
	}
}

// A process started with Apply really runs as the account, with its
// groups, clean environment and home.
func TestApplyRunsAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	u, err := Lookup("nobody")
	if err != nil {
		t.Skip("no nobody user")
	}
	cmd := exec.Command("/bin/sh", "-c", `id -u; id -g; id -G; echo "$HOME|$USER|$LOGNAME|$SHELL|$PATH|$EXTRA"; pwd; env | grep -c '^MESHGO_SECRET=' || true`)
	os.Setenv("MESHGO_SECRET", "agent-only")
	defer os.Unsetenv("MESHGO_SECRET")
	if err := u.Apply(cmd, "EXTRA=1"); err != nil {
		t.Fatal(err)
	}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("run as nobody: %v", err)
	}
	l := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(l) != 6 || l[0] != u.UID || l[1] != u.GID {
		t.Fatalf("output %q, want uid %s gid %s", out, u.UID, u.GID)
	}
	if strings.Contains(" "+l[2]+" ", " 0 ") && u.GID != "0" {
		t.Errorf("kept root's group: id -G = %q", l[2])
	}
	if want := u.Home + "|nobody|nobody|" + u.Shell + "|" + DefaultPath + "|1"; l[3] != want {
		t.Errorf("environment %q, want %q", l[3], want)
	}
	if l[4] != u.Dir() {
		t.Errorf("cwd %q, want %q", l[4], u.Dir())
	}
	if l[5] != "0" {
		t.Errorf("the agent's environment leaked into the child")
	}
}

// Without root, Apply refuses another account rather than run as the agent.
func TestApplyRefusesWithoutRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("as root every switch is allowed")
	}
	u, err := Lookup("root")
	if err != nil {
		t.Skip(err)
	}
	if err := u.Apply(exec.Command("true")); !errors.Is(err, ErrCannotSwitch) {
		t.Fatalf("Apply as root without root: %v", err)
	}
}

// Detector reads each of the rule's sources from the system's files.
func TestDetectorSources(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("logind and X socket fixtures are Linux paths")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no nobody user")
	}
	none := func() ([]Login, error) { return nil, nil }
	empty := t.TempDir()
	dir := t.TempDir()
	seat := filepath.Join(dir, "seat0")
	os.WriteFile(seat, []byte("IS_SEAT0=1\nACTIVE=c1\nACTIVE_UID="+nobody.Uid+"\n"), 0o644)
	rootSeat := filepath.Join(dir, "rootseat")
	os.WriteFile(rootSeat, []byte("ACTIVE_UID=0\n"), 0o644)

	// An X socket owned by nobody (needs root to chown).
	xdir := filepath.Join(dir, "x11")
	os.Mkdir(xdir, 0o755)
	l, err := net.Listen("unix", filepath.Join(xdir, "X7"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	xOwned := os.Geteuid() == 0
	if xOwned {
		uid, _ := strconv.Atoi(nobody.Uid)
		if err := os.Lchown(filepath.Join(xdir, "X7"), uid, -1); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		d    Detector
		want string // "" = ErrNoConsoleUser
	}{
		{"logind seat0", Detector{SeatFile: seat, Logins: none, XSocketDir: empty, RuntimeRoot: empty}, "nobody"},
		{"root seat falls through to records", Detector{SeatFile: rootSeat, XSocketDir: empty, RuntimeRoot: empty,
			Logins: func() ([]Login, error) { return []Login{{User: "nobody", Terminal: "pts/0", Host: "10.0.0.1"}}, nil }}, "nobody"},
		{"records of gone accounts skipped", Detector{SeatFile: rootSeat, XSocketDir: empty, RuntimeRoot: empty,
			Logins: func() ([]Login, error) { return []Login{{User: "no-such-user-meshgo", Terminal: ":0"}}, nil }}, ""},
		{"no sources", Detector{SeatFile: filepath.Join(dir, "absent"), Logins: none, XSocketDir: empty, RuntimeRoot: empty}, ""},
		{"login records unreadable", Detector{SeatFile: filepath.Join(dir, "absent"), XSocketDir: empty, RuntimeRoot: empty,
			Logins: func() ([]Login, error) { return nil, errors.New("no utmp") }}, ""},
	}
	if xOwned {
		tests = append(tests, struct {
			name string
			d    Detector
			want string
		}{"X socket owner", Detector{SeatFile: filepath.Join(dir, "absent"), Logins: none, XSocketDir: xdir, RuntimeRoot: empty}, "nobody"})
		// A Wayland compositor's socket in a user's runtime dir.
		rdir := filepath.Join(dir, "runtime")
		uid, _ := strconv.Atoi(nobody.Uid)
		os.MkdirAll(filepath.Join(rdir, nobody.Uid), 0o700)
		wl, err := net.Listen("unix", filepath.Join(rdir, nobody.Uid, "wayland-1"))
		if err != nil {
			t.Fatal(err)
		}
		defer wl.Close()
		if err := os.Lchown(filepath.Join(rdir, nobody.Uid, "wayland-1"), uid, -1); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct {
			name string
			d    Detector
			want string
		}{"Wayland socket owner", Detector{SeatFile: filepath.Join(dir, "absent"), Logins: none, XSocketDir: empty, RuntimeRoot: rdir}, "nobody"})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := tc.d.Console()
			if tc.want == "" {
				if !errors.Is(err, ErrNoConsoleUser) {
					t.Fatalf("Console = %+v, %v; want ErrNoConsoleUser", u, err)
				}
				return
			}
			if err != nil || u.Name != tc.want {
				t.Fatalf("Console = %+v, %v; want %s", u, err, tc.want)
			}
		})
	}
}
