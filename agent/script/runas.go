package script

import (
	"context"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/host"
)

// userPath is the PATH a command run as another user gets.
const userPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// loginEntry is one logged-in session as utmp (or loginctl) reports it.
type loginEntry = host.UserStat

var localTerminal = regexp.MustCompile(`^(tty[0-9]*|console|seat[0-9a-zA-Z_-]*|vc/[0-9]+)$`)

// pickConsoleUser chooses the user runcommands' runAsUser means by "the
// logged-in user" from the login sessions: the owner of a graphical
// session (an X display ":n" as terminal or host) first, then one on a
// local text console or seat, then any other logged-in user. root is
// never chosen (running "as the user" must not mean as root), nor are
// names that are not plausible account names. Ties go to the most recent
// login, then the smallest name, so the choice is deterministic. "" when
// nobody qualifies.
func pickConsoleUser(entries []loginEntry) string {
	rank := func(e loginEntry) int {
		switch {
		case strings.HasPrefix(e.Terminal, ":") || strings.HasPrefix(e.Host, ":"):
			return 0
		case localTerminal.MatchString(strings.TrimPrefix(e.Terminal, "/dev/")) && e.Host == "":
			return 1
		}
		return 2
	}
	var c []loginEntry
	for _, e := range entries {
		if e.User == "" || e.User == "root" || strings.ContainsAny(e.User, " \t/:\x00") {
			continue
		}
		c = append(c, e)
	}
	if len(c) == 0 {
		return ""
	}
	sort.SliceStable(c, func(i, j int) bool {
		ri, rj := rank(c[i]), rank(c[j])
		if ri != rj {
			return ri < rj
		}
		if c[i].Started != c[j].Started {
			return c[i].Started > c[j].Started
		}
		return c[i].User < c[j].User
	})
	return c[0].User
}

// loggedInUser finds the logged-in console user's name from the system's
// login records ("" when none). Platforms that cannot run commands as
// another user return errRunAsUnsupported.
func loggedInUser() (string, error) {
	if name, ok, err := platformConsoleUser(); ok || err != nil {
		return name, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	us, err := host.UsersWithContext(ctx)
	if err != nil {
		return "", nil // no login records: nobody we can tell is logged in
	}
	return pickConsoleUser(us), nil
}
