//go:build !windows

package terminal

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/creack/pty"
	"github.com/meshgo/meshagent/agent/osuser"
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
	term := []string{"HISTCONTROL=ignoreboth", "TERM=xterm-256color",
		"LINES=" + strconv.Itoa(spec.rows), "COLUMNS=" + strconv.Itoa(spec.cols)}
	cmd := &exec.Cmd{Path: argv[0], Args: argv[1:], SysProcAttr: &syscall.SysProcAttr{}}
	if spec.protocol == session.ProtoUserShell || spec.protocol == session.ProtoUserPS {
		// The console user by osuser's rule, with its clean environment.
		u, err := consoleUser()
		if err != nil {
			return nil, fmt.Errorf("no user shell: %w", err)
		}
		if err := u.Apply(cmd, term...); err != nil {
			return nil, fmt.Errorf("no user shell: %w", err)
		}
	} else {
		// The agent's own shell keeps the agent's LANG and PATH.
		var env []string
		for _, k := range []string{"LANG", "PATH"} {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
		if _, ok := os.LookupEnv("PATH"); !ok {
			env = append(env, "PATH="+osuser.DefaultPath)
		}
		cmd.Env = append(env, term...)
		if home, err := os.UserHomeDir(); err == nil {
			cmd.Dir = home
			cmd.Env = append(cmd.Env, "HOME="+home)
		}
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

// consoleUser is who protocol 8 and 9 shells run as; a variable so tests
// can point osuser's detector at fixture logind data.
var consoleUser = osuser.Console

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
