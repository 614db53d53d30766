package desktop

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/meshgo/meshagent/agent/osuser"
)

// compositorFamilies maps Wayland compositor process names to how the
// desktop handler reaches them.
var compositorFamilies = map[string]string{
	"gnome-shell": "gnome", "mutter": "gnome",
	"sway": "wlroots", "labwc": "wlroots", "wayfire": "wlroots", "river": "wlroots",
	"Hyprland": "wlroots", "hyprland": "wlroots", "cage": "wlroots", "niri": "wlroots",
	"kwin_wayland": "kde",
}

// Sessions lists the graphical sessions, best first: from systemd-logind
// over the system bus (DBUS_SYSTEM_BUS_ADDRESS or the standard socket)
// when it answers, each completed from the user's compositor process;
// otherwise from the process table: users' Wayland compositors (by name),
// then X servers. Best means active, local, a user's (not the greeter's),
// then newest. It does not connect to any compositor: cheap enough to poll.
func Sessions(opts Options) []Session {
	procs := scanCompositors(opts)
	if ls, err := logindSessions(); err == nil {
		var out []Session
		for _, s := range ls {
			if s.Type != "wayland" && s.Type != "x11" {
				continue
			}
			completeSession(&s, procs)
			out = append(out, s)
		}
		sortSessions(out)
		return out
	}
	var out []Session
	for _, p := range procs {
		s := Session{Type: "wayland", Source: "process", UID: p.uid, Desktop: p.family, Active: true}
		// Completed from this compositor only: a user running two (or a
		// test user's sway beside its mutter) has two sessions, each with
		// its own runtime dir and socket.
		completeSession(&s, []compositorProc{p})
		out = append(out, s)
	}
	root := opts.ProcRoot
	if root == "" {
		root = procRoot
	}
	servers, _ := scanProc(root)
	for _, t := range servers {
		out = append(out, Session{Type: "x11", Desktop: "x11", Display: t.display, UID: -1, Source: "process"})
	}
	return out
}

func sortSessions(s []Session) {
	sort.SliceStable(s, func(i, j int) bool {
		a, b := s[i], s[j]
		if a.Active != b.Active {
			return a.Active
		}
		if a.Remote != b.Remote {
			return !a.Remote
		}
		if (a.Class == "greeter") != (b.Class == "greeter") {
			return b.Class == "greeter"
		}
		return false
	})
}

// compositorProc is a running Wayland compositor.
type compositorProc struct {
	pid     int
	ppid    int
	start   uint64
	uid     int
	gid     int
	family  string
	runtime string
	bus     string
	display string // WAYLAND_DISPLAY from its environment, if set
}

// scanCompositors finds non-root users' Wayland compositor processes,
// newest first.
func scanCompositors(opts Options) []compositorProc {
	root := opts.ProcRoot
	if root == "" {
		root = procRoot
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []compositorProc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(root, e.Name())
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil {
			continue
		}
		fam, ok := compositorFamilies[strings.TrimSpace(string(comm))]
		if !ok {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(dir, &st) != nil || st.Uid == 0 {
			continue
		}
		start, ppid := procStat(dir)
		p := compositorProc{pid: pid, ppid: ppid, start: start, uid: int(st.Uid), gid: int(st.Gid), family: fam}
		env, _ := os.ReadFile(filepath.Join(dir, "environ"))
		for _, kv := range bytes.Split(env, []byte{0}) {
			k, v, _ := strings.Cut(string(kv), "=")
			switch k {
			case "DBUS_SESSION_BUS_ADDRESS":
				p.bus = v
			case "XDG_RUNTIME_DIR":
				p.runtime = v
			case "WAYLAND_DISPLAY":
				p.display = v
			}
		}
		if p.runtime == "" {
			p.runtime = filepath.Join(runUserRoot, strconv.Itoa(p.uid))
		}
		out = append(out, p)
	}
	// A compositor's own child that has forked but not yet exec'd (mutter
	// starting a helper) has its parent's name and environment: one
	// session, not two.
	pids := map[int]bool{}
	for _, p := range out {
		pids[p.pid] = true
	}
	kept := out[:0]
	for _, p := range out {
		if !pids[p.ppid] {
			kept = append(kept, p)
		}
	}
	out = kept
	sort.SliceStable(out, func(i, j int) bool { return out[i].start > out[j].start })
	return out
}

// completeSession fills the runtime dir, bus, compositor family and
// Wayland socket from the user's newest compositor process, or from the
// standard places (/run/user/UID, its bus and wayland-N sockets).
func completeSession(s *Session, procs []compositorProc) {
	if s.UID >= 0 && s.User == "" {
		s.User = userName(s.UID)
	}
	for _, p := range procs {
		if p.uid != s.UID || s.Type != "wayland" {
			continue
		}
		if s.Desktop == "" {
			s.Desktop = p.family
		}
		s.RuntimeDir, s.Bus = p.runtime, p.bus
		if p.display != "" {
			s.WaylandSocket = socketIn(p.display, p.runtime)
		}
		break
	}
	if s.UID < 0 {
		return
	}
	if s.RuntimeDir == "" {
		s.RuntimeDir = filepath.Join(runUserRoot, strconv.Itoa(s.UID))
	}
	if s.Bus == "" {
		if fi, err := os.Stat(filepath.Join(s.RuntimeDir, "bus")); err == nil && fi.Mode()&os.ModeSocket != 0 {
			s.Bus = "unix:path=" + filepath.Join(s.RuntimeDir, "bus")
		}
	}
	if s.Type == "wayland" && s.WaylandSocket == "" {
		if m, _ := filepath.Glob(filepath.Join(s.RuntimeDir, "wayland-*")); len(m) > 0 {
			for _, p := range m {
				if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeSocket != 0 {
					s.WaylandSocket = p
					break
				}
			}
		}
	}
	if s.Type == "x11" && s.Desktop == "" {
		s.Desktop = "x11"
	}
}

// socketIn resolves a WAYLAND_DISPLAY value against a runtime dir.
func socketIn(display, runtime string) string {
	if filepath.IsAbs(display) {
		return display
	}
	return filepath.Join(runtime, display)
}

func userName(uid int) string {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) > 2 && f[2] == strconv.Itoa(uid) {
			return f[0]
		}
	}
	return ""
}

// logindSessions is logind's sessions (osuser's one reader) as desktop
// sessions.
func logindSessions() ([]Session, error) {
	ls, err := osuser.LogindSessions(context.Background())
	if err != nil {
		return nil, err
	}
	out := make([]Session, 0, len(ls))
	for _, e := range ls {
		s := Session{ID: e.ID, UID: e.UID, User: e.User, Seat: e.Seat, Source: "logind",
			Type: e.Type, Class: e.Class, Active: e.Active, Remote: e.Remote, Display: e.Display}
		if s.Type == "x11" {
			s.Desktop = "x11"
		}
		out = append(out, s)
	}
	return out, nil
}
