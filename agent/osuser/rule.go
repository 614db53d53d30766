package osuser

import (
	"bufio"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// facts are the inputs of the console-user rule, read by a Detector.
type facts struct {
	// consoleOwner is the uid owning the console device (macOS), -1 when
	// not consulted or unknown.
	consoleOwner int64
	// seat0 is logind's seat0 state file, nil when there is none.
	seat0 io.Reader
	// logins are the login records.
	logins []Login
	// xOwners are the uids owning X display sockets, by display number.
	xOwners map[int]int64
	// waylandOwners are the uids owning Wayland sockets, newest first.
	waylandOwners []int64
}

// candidate is one account the rule proposes: by uid or by name.
type candidate struct {
	uid  string // decimal uid; "" when by name
	name string
}

var localTerminal = regexp.MustCompile(`^(tty[0-9]*|console|seat[0-9a-zA-Z_-]*|vc/[0-9]+)$`)

// candidates applies the rule of the package documentation and returns
// the accounts to try, best first. Root is never among them. A console
// device owned by root (the macOS login window) yields none: that source
// is authoritative.
func candidates(f facts) []candidate {
	if f.consoleOwner >= 0 {
		if f.consoleOwner == 0 {
			return nil
		}
		return []candidate{{uid: strconv.FormatInt(f.consoleOwner, 10)}}
	}
	var out []candidate
	if f.seat0 != nil {
		if uid := seatActiveUID(f.seat0); uid != "" && uid != "0" {
			out = append(out, candidate{uid: uid})
		}
	}
	graphical, local, other := rankLogins(f.logins)
	for _, n := range graphical {
		out = append(out, candidate{name: n})
	}
	displays := make([]int, 0, len(f.xOwners))
	for d := range f.xOwners {
		displays = append(displays, d)
	}
	sort.Ints(displays)
	for _, d := range displays {
		if uid := f.xOwners[d]; uid > 0 {
			out = append(out, candidate{uid: strconv.FormatInt(uid, 10)})
		}
	}
	for _, uid := range f.waylandOwners {
		if uid > 0 {
			out = append(out, candidate{uid: strconv.FormatInt(uid, 10)})
		}
	}
	for _, n := range local {
		out = append(out, candidate{name: n})
	}
	for _, n := range other {
		out = append(out, candidate{name: n})
	}
	return out
}

// seatActiveUID reads ACTIVE_UID from a logind seat state file.
func seatActiveUID(r io.Reader) string {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ACTIVE_UID="); ok {
			v = strings.TrimSpace(v)
			if _, err := strconv.ParseUint(v, 10, 32); err == nil {
				return v
			}
			return ""
		}
	}
	return ""
}

// plausibleName rejects names that cannot be accounts (and root).
func plausibleName(n string) bool {
	return n != "" && n != "root" && !strings.ContainsAny(n, " \t/:\x00")
}

// rankLogins splits the login records into the rule's three record steps,
// each ordered most recent first, then by name, without duplicates.
func rankLogins(entries []Login) (graphical, local, other []string) {
	var c []Login
	for _, e := range entries {
		if plausibleName(e.User) {
			c = append(c, e)
		}
	}
	sort.SliceStable(c, func(i, j int) bool {
		if c[i].Started != c[j].Started {
			return c[i].Started > c[j].Started
		}
		return c[i].User < c[j].User
	})
	lists := [3][]string{}
	inList := [3]map[string]bool{{}, {}, {}}
	for _, e := range c {
		r := 2
		switch {
		case strings.HasPrefix(e.Terminal, ":") || strings.HasPrefix(e.Host, ":"):
			r = 0
		case localTerminal.MatchString(strings.TrimPrefix(e.Terminal, "/dev/")) && e.Host == "":
			r = 1
		}
		if !inList[r][e.User] {
			inList[r][e.User] = true
			lists[r] = append(lists[r], e.User)
		}
	}
	// A user is ranked by their best record only.
	seen := map[string]bool{}
	for r := range lists {
		kept := lists[r][:0]
		for _, n := range lists[r] {
			if !seen[n] {
				seen[n] = true
				kept = append(kept, n)
			}
		}
		lists[r] = kept
	}
	return lists[0], lists[1], lists[2]
}
