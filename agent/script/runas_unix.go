//go:build !windows

package script

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// runUser is a local account a command is run as (proc.shell's `user`).
type runUser struct {
	name     string
	uid, gid uint32
	groups   []uint32
	dir      string   // working directory: the home, or / when it is missing
	env      []string // the whole environment of the child
	switchID bool     // false when the agent already runs as this uid
}

// lookupRunUser resolves a user name (or a decimal uid) to the
// credentials and environment to run a child with. It fails, rather than
// fall back to the agent's own identity, when the account does not exist
// or the agent cannot switch to it (not root).
func lookupRunUser(spec string) (*runUser, error) {
	if spec == "" {
		return nil, fmt.Errorf("run as user: empty user name")
	}
	u, err := user.Lookup(spec)
	if err != nil {
		if _, nerr := strconv.ParseUint(spec, 10, 32); nerr == nil {
			u, err = user.LookupId(spec)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("run as user %s: no such user", spec)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("run as user %s: bad uid/gid %s/%s", spec, u.Uid, u.Gid)
	}
	ru := &runUser{name: u.Username, uid: uint32(uid), gid: uint32(gid)}
	euid := os.Geteuid()
	switch {
	case uint32(euid) == ru.uid:
		// Already that user: nothing to switch, only the environment.
	case euid != 0:
		return nil, fmt.Errorf("run as user %s: the agent is not running as root and cannot switch users", ru.name)
	default:
		ru.switchID = true
		ids, err := u.GroupIds()
		if err != nil {
			ids = []string{u.Gid} // no group database: the primary group only
		}
		for _, g := range ids {
			if n, err := strconv.ParseUint(g, 10, 32); err == nil {
				ru.groups = append(ru.groups, uint32(n))
			}
		}
	}
	ru.dir = "/"
	if u.HomeDir != "" && isDir(u.HomeDir) {
		ru.dir = u.HomeDir
	}
	shell := passwdShell(ru.name)
	if shell == "" {
		shell = "/bin/sh"
	}
	ru.env = []string{"HOME=" + u.HomeDir, "USER=" + ru.name, "LOGNAME=" + ru.name, "SHELL=" + shell, "PATH=" + userPath}
	for _, k := range []string{"LANG", "LC_ALL", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			ru.env = append(ru.env, k+"="+v)
		}
	}
	if rt := fmt.Sprintf("/run/user/%d", ru.uid); runtime.GOOS == "linux" && isDir(rt) {
		ru.env = append(ru.env, "XDG_RUNTIME_DIR="+rt)
	}
	return ru, nil
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

// applyRunUser makes cmd run as ru; call after prepareCmd.
func applyRunUser(cmd *exec.Cmd, ru *runUser) {
	if ru == nil {
		return
	}
	cmd.Env = ru.env
	if cmd.Dir == "" {
		cmd.Dir = ru.dir
	}
	if ru.switchID {
		if cmd.SysProcAttr == nil {
			cmd.SysProcAttr = &syscall.SysProcAttr{}
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: ru.uid, Gid: ru.gid, Groups: ru.groups}
	}
}

// platformConsoleUser: on macOS the owner of /dev/console is the user at
// the GUI login (root while the login window shows). ok=false means
// "use the login records".
func platformConsoleUser() (name string, ok bool, err error) {
	if runtime.GOOS != "darwin" {
		return "", false, nil
	}
	fi, err := os.Stat("/dev/console")
	if err != nil {
		return "", false, nil
	}
	st, sok := fi.Sys().(*syscall.Stat_t)
	if !sok {
		return "", false, nil
	}
	if st.Uid == 0 {
		return "", true, nil
	}
	u, err := user.LookupId(strconv.FormatUint(uint64(st.Uid), 10))
	if err != nil {
		return "", false, nil
	}
	return u.Username, true, nil
}
