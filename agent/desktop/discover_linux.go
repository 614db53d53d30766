package desktop

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// xTarget is a display to try: the DISPLAY string and the Xauthority file
// that should hold its cookie ("" = connect without a cookie).
type xTarget struct {
	display   string
	authority string
	source    string // for logs: "options", "env", "xserver", "session"
}

// procRoot is /proc, replaceable in tests.
var procRoot = "/proc"

// xServerNames are the process names of X servers whose command line tells
// the display and -auth file. Xwayland is left out: its root window is not
// the user's desktop.
var xServerNames = map[string]bool{
	"X": true, "Xorg": true, "Xvfb": true, "Xvnc": true, "Xtigervnc": true,
	"Xephyr": true, "Xdummy": true, "Xorg.bin": true,
}

// discoverX lists the displays to try, best first: explicit options, then
// DISPLAY/XAUTHORITY, then every running X server found by its -auth
// argument (what the C agent does as root with nobody logged in), then the
// DISPLAY/XAUTHORITY of logged-in users' session processes.
func discoverX(opts Options) []xTarget {
	var out []xTarget
	seen := map[xTarget]bool{}
	add := func(t xTarget) {
		k := t
		k.source = ""
		if t.display == "" || seen[k] {
			return
		}
		seen[k] = true
		out = append(out, t)
	}
	if opts.Display != "" {
		add(xTarget{opts.Display, opts.XAuthority, "options"})
	}
	if d := os.Getenv("DISPLAY"); d != "" {
		a := os.Getenv("XAUTHORITY")
		if a == "" {
			if h, err := os.UserHomeDir(); err == nil {
				a = filepath.Join(h, ".Xauthority")
			}
		}
		add(xTarget{d, a, "env"})
	}
	root := opts.ProcRoot
	if root == "" {
		root = procRoot
	}
	servers, sessions := scanProc(root)
	for _, t := range servers {
		add(t)
	}
	for _, t := range sessions {
		add(t)
	}
	return out
}

// scanProc walks /proc once and returns X servers (display and -auth from
// their command lines) and user session processes that carry DISPLAY.
func scanProc(procRoot string) (servers, sessions []xTarget) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, nil
	}
	type sess struct {
		t    xTarget
		pid  int
		root bool
	}
	var ss []sess
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(procRoot, e.Name())
		cmd, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || len(cmd) == 0 {
			continue
		}
		args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
		if xServerNames[filepath.Base(args[0])] {
			if t, ok := parseXServerArgs(args); ok {
				servers = append(servers, t)
			}
			continue
		}
		env, err := os.ReadFile(filepath.Join(dir, "environ"))
		if err != nil || !bytes.Contains(env, []byte("DISPLAY=")) {
			continue
		}
		var disp, auth, home string
		for _, kv := range bytes.Split(env, []byte{0}) {
			k, v, _ := strings.Cut(string(kv), "=")
			switch k {
			case "DISPLAY":
				disp = v
			case "XAUTHORITY":
				auth = v
			case "HOME":
				home = v
			}
		}
		if disp == "" {
			continue
		}
		st, err := os.Stat(dir)
		uid := -1
		if err == nil {
			uid = statUID(st)
		}
		if auth == "" {
			auth = userXauthority(uid, home)
		}
		ss = append(ss, sess{t: xTarget{disp, auth, "session"}, pid: pid, root: uid == 0})
	}
	// Prefer the newest non-root sessions: they belong to whoever is at the
	// console now, and their XAUTHORITY is current.
	sort.SliceStable(ss, func(i, j int) bool {
		if ss[i].root != ss[j].root {
			return !ss[i].root
		}
		return ss[i].pid > ss[j].pid
	})
	for _, s := range ss {
		sessions = append(sessions, s.t)
	}
	sort.SliceStable(servers, func(i, j int) bool { return servers[i].display < servers[j].display })
	return servers, sessions
}

// parseXServerArgs finds ":N" and "-auth FILE" in an X server command line.
func parseXServerArgs(args []string) (xTarget, bool) {
	t := xTarget{source: "xserver"}
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-auth" && i+1 < len(args):
			t.authority = args[i+1]
			i++
		case len(a) > 1 && a[0] == ':':
			if _, err := strconv.Atoi(a[1:]); err == nil {
				t.display = a
			}
		}
	}
	if t.display == "" {
		// An X server without an explicit display number runs on :0.
		t.display = ":0"
	}
	return t, true
}

// userXauthority guesses a user's Xauthority when the session environment
// does not name one: ~/.Xauthority, then GDM's per-user file.
func userXauthority(uid int, home string) string {
	if home == "" && uid >= 0 {
		if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
			home = u.HomeDir
		}
	}
	cands := []string{}
	if home != "" {
		cands = append(cands, filepath.Join(home, ".Xauthority"))
	}
	if uid >= 0 {
		cands = append(cands, fmt.Sprintf("/run/user/%d/gdm/Xauthority", uid))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return ""
}

// parseDisplay splits "host:N.S" into host and display number.
func parseDisplay(d string) (host, num string, err error) {
	i := strings.LastIndexByte(d, ':')
	if i < 0 {
		return "", "", fmt.Errorf("bad display %q", d)
	}
	host, num = d[:i], d[i+1:]
	if j := strings.IndexByte(num, '.'); j >= 0 {
		num = num[:j]
	}
	if _, err := strconv.Atoi(num); err != nil {
		return "", "", fmt.Errorf("bad display %q", d)
	}
	return host, num, nil
}

// dialX opens the transport to an X display: the Unix socket (filesystem,
// then the abstract name Linux X servers also listen on) or TCP 6000+N.
func dialX(d string) (net.Conn, string, error) {
	host, num, err := parseDisplay(d)
	if err != nil {
		return nil, "", err
	}
	if host == "" || host == "unix" {
		p := "/tmp/.X11-unix/X" + num
		c, err := net.DialTimeout("unix", p, 2*time.Second)
		if err == nil {
			return c, num, nil
		}
		c, err2 := net.DialTimeout("unix", "@"+p, 2*time.Second)
		if err2 == nil {
			return c, num, nil
		}
		return nil, "", fmt.Errorf("dial %s: %w", p, err)
	}
	n, _ := strconv.Atoi(num)
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(6000+n)), 2*time.Second)
	if err != nil {
		return nil, "", fmt.Errorf("dial %s: %w", d, err)
	}
	return c, num, nil
}
