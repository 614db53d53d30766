//go:build !windows

package terminal

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"github.com/meshgo/meshagent/proto/session"
)

// unixProc is a shell on a creack/pty pseudo terminal. The shell is a
// session leader (pty.Start uses setsid), so its pid is also its process
// group and session id, which is what Kill uses to find its descendants.
type unixProc struct {
	cmd       *exec.Cmd
	ptmx      *os.File
	closeOnce sync.Once
	waitDone  chan struct{}
}

// defaultLaunch is what the reference types into a fresh Linux shell; the
// leading space keeps it out of the history (HISTCONTROL=ignoreboth).
const defaultLaunch = " alias ls='ls --color=auto';clear\n"

func start(spec spawnSpec) (proc, error) {
	argv, err := shellFor(spec)
	if err != nil {
		return nil, err
	}
	env := []string{"HISTCONTROL=ignoreboth", "TERM=xterm-256color"}
	for _, k := range []string{"LANG", "PATH"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	if _, ok := os.LookupEnv("PATH"); !ok {
		env = append(env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	}
	env = append(env, "LINES="+strconv.Itoa(spec.rows), "COLUMNS="+strconv.Itoa(spec.cols))

	cmd := &exec.Cmd{Path: argv[0], Args: argv[1:], Env: env, SysProcAttr: &syscall.SysProcAttr{}}
	if spec.protocol == session.ProtoUserShell || spec.protocol == session.ProtoUserPS {
		u, err := consoleUser()
		if err != nil {
			return nil, fmt.Errorf("no user shell: %w", err)
		}
		if err := runAs(cmd, u); err != nil {
			return nil, err
		}
	} else if home, err := os.UserHomeDir(); err == nil {
		cmd.Dir = home
		cmd.Env = append(cmd.Env, "HOME="+home)
	}

	ptmx, err := startOnPty(cmd, spec.cols, spec.rows)
	if err != nil {
		return nil, fmt.Errorf("spawn %s: %w", argv[0], err)
	}
	p := &unixProc{cmd: cmd, ptmx: ptmx, waitDone: make(chan struct{})}
	if !spec.requireLogin {
		launch := ""
		if spec.launchCommand != nil {
			launch = *spec.launchCommand
		} else if runtime.GOOS == "linux" {
			launch = defaultLaunch
		}
		if launch != "" {
			// The pty buffers this until the shell reads its input.
			if _, err := ptmx.Write([]byte(launch)); err != nil {
				p.Kill()
				p.Close()
				_ = p.Wait()
				return nil, fmt.Errorf("write launch command: %w", err)
			}
		}
	}
	return p, nil
}

// startOnPty starts cmd as a session leader with a new pty as its
// controlling terminal and returns the master side. When cmd runs as
// another user, the pty slave is given to that user first, or programs that
// open /dev/tty themselves (sudo, ssh, passwd) would be refused.
func startOnPty(cmd *exec.Cmd, cols, rows int) (*os.File, error) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		return nil, err
	}
	defer tty.Close() // the child has its own copies
	if err := pty.Setsize(ptmx, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
		ptmx.Close()
		return nil, err
	}
	if c := cmd.SysProcAttr.Credential; c != nil {
		if err := tty.Chown(int(c.Uid), -1); err != nil {
			ptmx.Close()
			return nil, fmt.Errorf("give the terminal to uid %d: %w", c.Uid, err)
		}
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setctty = true
	if err := cmd.Start(); err != nil {
		ptmx.Close()
		return nil, err
	}
	return ptmx, nil
}

// shellFor picks the program like the reference agent: the login program
// when the client asked for a login, else bash, else sh. argv[0] is the path,
// the rest is the argument vector (with the bare program name first).
func shellFor(spec spawnSpec) ([]string, error) {
	if spec.requireLogin {
		login := "/usr/bin/login"
		if runtime.GOOS == "linux" {
			login = "/bin/login"
		}
		if !isExecutable(login) {
			return nil, fmt.Errorf("unable to spawn login process: %s not found", login)
		}
		return []string{login, "login"}, nil
	}
	for _, sh := range []string{"/bin/bash", "/bin/sh"} {
		if isExecutable(sh) {
			return []string{sh, sh[len("/bin/"):]}, nil
		}
	}
	return nil, errors.New("no shell found")
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}

// runAs makes cmd run as u with its groups, home directory and identity
// variables. Switching users needs root; running as ourselves does not.
func runAs(cmd *exec.Cmd, u *user.User) error {
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return fmt.Errorf("user %q has a non-numeric uid/gid", u.Username)
	}
	if uint64(os.Geteuid()) != uid {
		if os.Geteuid() != 0 {
			return fmt.Errorf("cannot start a shell for %s (uid %d): the agent is not running as root", u.Username, uid)
		}
		var groups []uint32
		if ids, err := u.GroupIds(); err == nil {
			for _, g := range ids {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					groups = append(groups, uint32(n))
				}
			}
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}
	}
	cmd.Dir = u.HomeDir
	if st, err := os.Stat(u.HomeDir); err != nil || !st.IsDir() {
		cmd.Dir = "/"
	}
	cmd.Env = append(cmd.Env, "HOME="+u.HomeDir, "USER="+u.Username, "LOGNAME="+u.Username)
	return nil
}

func (p *unixProc) Read(b []byte) (int, error) {
	n, err := p.ptmx.Read(b)
	// Linux reports the last slave closing as EIO: that is end of output.
	if err != nil && errors.Is(err, syscall.EIO) {
		err = errEOF
	}
	return n, err
}

func (p *unixProc) Write(b []byte) (int, error) { return p.ptmx.Write(b) }

func (p *unixProc) Pid() int { return p.cmd.Process.Pid }

func (p *unixProc) Resize(cols, rows int) error {
	return pty.Setsize(p.ptmx, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)})
}

func (p *unixProc) Wait() error {
	defer close(p.waitDone)
	return p.cmd.Wait()
}

func (p *unixProc) exited() bool {
	select {
	case <-p.waitDone:
		return true
	default:
		return false
	}
}

func (p *unixProc) Hangup() {
	pid := p.Pid()
	// The whole process group: the shell, and whatever runs in the
	// foreground with it; bash passes the hangup on to its jobs.
	_ = syscall.Kill(-pid, syscall.SIGHUP)
	_ = syscall.Kill(-pid, syscall.SIGCONT)
}

func (p *unixProc) Kill() {
	pid := p.Pid()
	if !p.exited() {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
	}
	// Jobs in their own process groups share the shell's session.
	killSession(pid)
}

func (p *unixProc) Close() error {
	var err error
	p.closeOnce.Do(func() { err = p.ptmx.Close() })
	return err
}
