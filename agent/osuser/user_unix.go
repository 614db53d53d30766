//go:build !windows

package osuser

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Lookup resolves an account by name, or by decimal uid when no account
// has that name. It does not check that the agent may switch to it; Apply
// does.
func Lookup(spec string) (*User, error) {
	if spec == "" {
		return nil, errors.New("empty user name")
	}
	u, err := user.Lookup(spec)
	if err != nil {
		if _, nerr := strconv.ParseUint(spec, 10, 32); nerr == nil {
			u, err = user.LookupId(spec)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", spec, ErrNoSuchUser)
	}
	return fromOS(u)
}

func fromOS(u *user.User) (*User, error) {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user %s: non-numeric uid/gid %s/%s", u.Username, u.Uid, u.Gid)
	}
	r := &User{Name: u.Username, UID: u.Uid, GID: u.Gid, Home: u.HomeDir, uid: uint32(uid), gid: uint32(gid)}
	ids, err := u.GroupIds()
	if err != nil {
		ids = []string{u.Gid} // no group database: the primary group only
	}
	for _, g := range ids {
		if n, err := strconv.ParseUint(g, 10, 32); err == nil {
			r.groups = append(r.groups, uint32(n))
		}
	}
	r.Shell = passwdShell(u.Username)
	if r.Shell == "" {
		r.Shell = "/bin/sh"
	}
	return r, nil
}

// passwdShell is the login shell of name in /etc/passwd ("" when not
// listed there, e.g. directory-service accounts on macOS).
func passwdShell(name string) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fl := strings.Split(sc.Text(), ":"); len(fl) >= 7 && fl[0] == name {
			return fl[6]
		}
	}
	return ""
}

// CanRun reports whether the agent can start processes as u: it is u
// already, or it is root.
func (u *User) CanRun() error {
	if euid := os.Geteuid(); uint32(euid) != u.uid && euid != 0 {
		return fmt.Errorf("user %s: %w", u.Name, ErrCannotSwitch)
	}
	return nil
}

// Env is the clean environment of a process started as u.
func (u *User) Env() []string {
	env := []string{"HOME=" + u.Home, "USER=" + u.Name, "LOGNAME=" + u.Name, "SHELL=" + u.Shell, "PATH=" + DefaultPath}
	for _, k := range []string{"LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if rt := "/run/user/" + u.UID; runtime.GOOS == "linux" {
		if fi, err := os.Stat(rt); err == nil && fi.IsDir() {
			env = append(env, "XDG_RUNTIME_DIR="+rt)
		}
	}
	return env
}

// Apply makes cmd run as u: credentials when the agent is someone else,
// the environment of Env followed by extraEnv (which wins on duplicates),
// and Dir as the working directory unless cmd already has one. It fails,
// leaving cmd to run as nobody at all, when the agent cannot switch.
func (u *User) Apply(cmd *exec.Cmd, extraEnv ...string) error {
	if err := u.CanRun(); err != nil {
		return err
	}
	cmd.Env = append(u.Env(), extraEnv...)
	if cmd.Dir == "" {
		cmd.Dir = u.Dir()
	}
	if uint32(os.Geteuid()) != u.uid {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: u.uid, Gid: u.gid, Groups: append([]uint32(nil), u.groups...)}
	}
	return nil
}

// Console finds the console user by the package's rule, reading the
// facts from d's sources.
func (d *Detector) Console() (*User, error) {
	f := facts{consoleOwner: -1}
	if runtime.GOOS == "darwin" {
		dev := d.ConsoleDevice
		if dev == "" {
			dev = "/dev/console"
		}
		if fi, err := os.Stat(dev); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				f.consoleOwner = int64(st.Uid)
			}
		}
	}
	if f.consoleOwner < 0 {
		seat := d.SeatFile
		if seat == "" {
			seat = "/run/systemd/seats/seat0"
		}
		if b, err := os.ReadFile(seat); err == nil {
			f.seat0 = bytes.NewReader(b)
		}
		logins := d.Logins
		if logins == nil {
			logins = utmpLogins
		}
		f.logins, _ = logins() // no login records: nobody is known from them
		f.xOwners = xSocketOwners(d.XSocketDir)
		f.waylandOwners = waylandSocketOwners(d.RuntimeRoot)
	}
	for _, c := range candidates(f) {
		var u *user.User
		var err error
		if c.uid != "" {
			u, err = user.LookupId(c.uid)
		} else {
			u, err = user.Lookup(c.name)
		}
		if err != nil || u.Uid == "0" {
			continue // a record of an account that is gone
		}
		if r, err := fromOS(u); err == nil {
			return r, nil
		}
	}
	return nil, ErrNoConsoleUser
}

// waylandSocketOwners lists the owners of Wayland compositor sockets
// (root/UID/wayland-N, not the .lock files), newest socket first.
func waylandSocketOwners(root string) []int64 {
	if root == "" {
		root = "/run/user"
	}
	socks, _ := filepath.Glob(filepath.Join(root, "*", "wayland-*"))
	type own struct {
		uid int64
		t   time.Time
	}
	var owns []own
	for _, p := range socks {
		if strings.HasSuffix(p, ".lock") {
			continue
		}
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			owns = append(owns, own{int64(st.Uid), fi.ModTime()})
		}
	}
	sort.SliceStable(owns, func(i, j int) bool { return owns[i].t.After(owns[j].t) })
	out := make([]int64, len(owns))
	for i, o := range owns {
		out[i] = o.uid
	}
	return out
}

// xSocketOwners maps display numbers to the owners of their sockets.
func xSocketOwners(dir string) map[int]int64 {
	if dir == "" {
		dir = "/tmp/.X11-unix"
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[int]int64{}
	for _, e := range ents {
		n, ok := strings.CutPrefix(e.Name(), "X")
		num, err := strconv.Atoi(n)
		if !ok || err != nil || num < 0 {
			continue
		}
		fi, err := os.Lstat(filepath.Join(dir, e.Name()))
		if err != nil || fi.Mode()&os.ModeSocket == 0 {
			continue
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			out[num] = int64(st.Uid)
		}
	}
	return out
}
