package osuser

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/host"
)

// LoginRecords reads the system's login records (utmp) through gopsutil,
// except on Linux without a utmp file (Debian 13 and other logind-only
// systems), where it returns an error wrapping fs.ErrNotExist at once.
// There gopsutil would run `loginctl list-sessions` and a `loginctl
// show-session` per session, child processes on every call: the default
// core's 10 s state poll ran three, which kept os/exec and the child's
// fork in an idle agent. logind's sessions over D-Bus (LogindSessions)
// carry the same records; logindLogins turns them into Logins.
func LoginRecords(ctx context.Context) ([]Login, error) {
	if runtime.GOOS == "linux" {
		p := filepath.Join(hostVar(), "run", "utmp")
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("login records: %w", err)
		}
	}
	us, err := host.UsersWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("login records: %w", err)
	}
	out := make([]Login, len(us))
	for i, u := range us {
		out[i] = Login{User: u.User, Terminal: u.Terminal, Host: u.Host, Started: u.Started}
	}
	return out, nil
}

// hostVar is /var, or gopsutil's HOST_VAR (a container reading its
// host's files), so the check looks where gopsutil reads.
func hostVar() string {
	if v := os.Getenv("HOST_VAR"); v != "" {
		return v
	}
	return "/var"
}

// logindLogins gives logind's sessions as the login records utmp would
// hold, as gopsutil's loginctl fallback did: user-class sessions with a
// tty or a seat (the seat as the terminal of a graphical login).
func logindLogins(list []LogindSession) []Login {
	var out []Login
	for _, s := range list {
		if !strings.HasPrefix(s.Class, "user") || (s.TTY == "" && s.Seat == "") || s.State == "closing" {
			continue
		}
		term := s.TTY
		if term == "" {
			term = s.Seat
		}
		out = append(out, Login{User: s.User, Terminal: term, Host: s.RemoteHost, Started: s.Started})
	}
	return out
}

// utmpLogins is Detector's default login-record source: utmp, or where
// there is none, logind's sessions over D-Bus.
func utmpLogins() ([]Login, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := LoginRecords(ctx)
	if !errors.Is(err, fs.ErrNotExist) {
		return l, err
	}
	sessions, lerr := LogindSessions(ctx)
	if lerr != nil {
		return nil, err
	}
	return logindLogins(sessions), nil
}
