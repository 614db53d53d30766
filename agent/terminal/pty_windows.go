//go:build windows

package terminal

// Windows terminals run on a ConPTY pseudo console (Windows 10 1809+) built
// directly on golang.org/x/sys/windows. The shell is put in a job object
// that kills its whole process tree when the session ends.
//
// UNTESTED AT RUNTIME: this file is only cross-compiled and vetted on the
// project's Linux machines.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/meshgo/meshagent/agent/osuser"
	"github.com/meshgo/meshagent/agent/shells"
	"github.com/meshgo/meshagent/proto/session"
	"golang.org/x/sys/windows"
)

type conPTY struct {
	hpc      windows.Handle
	process  windows.Handle
	job      windows.Handle
	pid      int
	in       *os.File // our end of the console's input pipe
	out      *os.File // our end of the console's output pipe
	closeMu  sync.Mutex
	closed   bool
	waitOnce sync.Once
}

func start(spec spawnSpec) (proc, error) {
	// Protocols 8 and 9 run cmd and PowerShell as the logged-in user
	// (osuser's console user): with that user's session token, on the
	// session's interactive desktop, when the agent is the service; as
	// the agent itself when it already is that user.
	var user *osuser.User
	switch spec.protocol {
	case session.ProtoUserShell, session.ProtoUserPS:
		u, err := consoleUser()
		if err != nil {
			return nil, fmt.Errorf("user shell: %w", err)
		}
		if err := u.CanRun(); err != nil {
			return nil, fmt.Errorf("user shell as %s: %w", u.Name, err)
		}
		user = u
	}
	shell := os.Getenv("ComSpec")
	if shell == "" {
		shell = filepath.Join(os.Getenv("SystemRoot"), "System32", "cmd.exe")
	}
	if spec.protocol == session.ProtoPowerShell || spec.protocol == session.ProtoUserPS {
		ps, err := shells.PowerShell()
		if err != nil {
			return nil, err
		}
		shell = ps
	}
	if err := windows.NewLazySystemDLL("kernel32.dll").NewProc("CreatePseudoConsole").Find(); err != nil {
		return nil, fmt.Errorf("ConPTY unavailable (needs Windows 10 1809 or later): %w", err)
	}

	var inR, inW, outR, outW windows.Handle
	if err := windows.CreatePipe(&inR, &inW, nil, 0); err != nil {
		return nil, fmt.Errorf("create input pipe: %w", err)
	}
	if err := windows.CreatePipe(&outR, &outW, nil, 0); err != nil {
		windows.CloseHandle(inR)
		windows.CloseHandle(inW)
		return nil, fmt.Errorf("create output pipe: %w", err)
	}
	p := &conPTY{in: os.NewFile(uintptr(inW), "conpty-in"), out: os.NewFile(uintptr(outR), "conpty-out")}
	// The console holds its own references to its ends of the pipes.
	defer windows.CloseHandle(inR)
	defer windows.CloseHandle(outW)

	size := windows.Coord{X: int16(spec.cols), Y: int16(spec.rows)}
	if err := windows.CreatePseudoConsole(size, inR, outW, 0, &p.hpc); err != nil {
		p.in.Close()
		p.out.Close()
		return nil, fmt.Errorf("create pseudo console: %w", err)
	}
	if err := p.spawn(shell, user); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// consoleUser is osuser.Console, a variable for tests.
var consoleUser = osuser.Console

func (p *conPTY) spawn(shell string, user *osuser.User) error {
	attrs, err := windows.NewProcThreadAttributeList(1)
	if err != nil {
		return fmt.Errorf("attribute list: %w", err)
	}
	defer attrs.Delete()
	// The attribute value is the HPCON itself, not a pointer to it.
	hpc := p.hpc
	if err := attrs.Update(windows.PROC_THREAD_ATTRIBUTE_PSEUDOCONSOLE, *(*unsafe.Pointer)(unsafe.Pointer(&hpc)), unsafe.Sizeof(hpc)); err != nil {
		return fmt.Errorf("attach pseudo console: %w", err)
	}
	si := new(windows.StartupInfoEx)
	si.Cb = uint32(unsafe.Sizeof(*si))
	si.Flags = windows.STARTF_USESTDHANDLES
	si.ProcThreadAttributeList = attrs.List()

	cmdline, err := windows.UTF16PtrFromString(windows.EscapeArg(shell))
	if err != nil {
		return err
	}
	env := envBlock(os.Environ())
	home, _ := os.UserHomeDir()
	var tok windows.Token
	if user != nil && user.Session() != ownSession() {
		// Another session's user: that user's token, environment and
		// profile, and the interactive desktop of the user's session
		// (without it the shell would inherit the service's window
		// station, which the user's token may not open).
		var err error
		if tok, err = user.Token(); err != nil {
			return fmt.Errorf("user shell: %w", err)
		}
		defer tok.Close()
		if e, err := tok.Environ(false); err == nil {
			env = envBlock(e)
		}
		if h, err := tok.GetUserProfileDirectory(); err == nil {
			home = h
		}
		si.Desktop, _ = windows.UTF16PtrFromString(`winsta0\default`)
	}
	var dir *uint16
	if home != "" {
		dir, _ = windows.UTF16PtrFromString(home)
	}
	var pi windows.ProcessInformation
	flags := uint32(windows.EXTENDED_STARTUPINFO_PRESENT | windows.CREATE_UNICODE_ENVIRONMENT | windows.CREATE_SUSPENDED)
	var err2 error
	if tok != 0 {
		err2 = windows.CreateProcessAsUser(tok, nil, cmdline, nil, nil, false, flags, &env[0], dir, &si.StartupInfo, &pi)
	} else {
		err2 = windows.CreateProcess(nil, cmdline, nil, nil, false, flags, &env[0], dir, &si.StartupInfo, &pi)
	}
	if err2 != nil {
		return fmt.Errorf("start %s: %w", shell, err2)
	}
	defer windows.CloseHandle(pi.Thread)
	p.process = pi.Process
	p.pid = int(pi.ProcessId)

	// A job object with kill-on-close takes the whole tree down with it.
	if job, err := windows.CreateJobObject(nil, nil); err == nil {
		info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
		info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
		if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation,
			uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err == nil &&
			windows.AssignProcessToJobObject(job, pi.Process) == nil {
			p.job = job
		} else {
			windows.CloseHandle(job)
		}
	}
	if _, err := windows.ResumeThread(pi.Thread); err != nil {
		windows.TerminateProcess(pi.Process, 1)
		return fmt.Errorf("resume shell: %w", err)
	}
	return nil
}

// envBlock builds a double-NUL-terminated UTF-16 environment block from
// environ (the agent's, or the user's).
func envBlock(environ []string) []uint16 {
	var b []uint16
	for _, kv := range environ {
		if strings.HasPrefix(kv, "=") {
			continue
		}
		u, err := windows.UTF16FromString(kv)
		if err != nil {
			continue
		}
		b = append(b, u...)
	}
	if len(b) == 0 {
		b = append(b, 0)
	}
	return append(b, 0)
}

func (p *conPTY) Read(b []byte) (int, error) {
	n, err := p.out.Read(b)
	if err != nil && (errors.Is(err, windows.ERROR_BROKEN_PIPE) || errors.Is(err, os.ErrClosed)) {
		err = errEOF
	}
	return n, err
}

func (p *conPTY) Write(b []byte) (int, error) { return p.in.Write(b) }

func (p *conPTY) Pid() int { return p.pid }

func (p *conPTY) Resize(cols, rows int) error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return os.ErrClosed
	}
	return windows.ResizePseudoConsole(p.hpc, windows.Coord{X: int16(cols), Y: int16(rows)})
}

func (p *conPTY) Wait() error {
	if _, err := windows.WaitForSingleObject(p.process, windows.INFINITE); err != nil {
		return fmt.Errorf("wait for shell: %w", err)
	}
	var code uint32
	if err := windows.GetExitCodeProcess(p.process, &code); err == nil && code != 0 {
		return fmt.Errorf("shell exited with code %d", code)
	}
	return nil
}

// Hangup has no Windows equivalent that consoles honour; Kill does the work.
func (p *conPTY) Hangup() {}

func (p *conPTY) Kill() {
	if p.job != 0 {
		_ = windows.TerminateJobObject(p.job, 1)
	}
	if p.process != 0 {
		_ = windows.TerminateProcess(p.process, 1)
	}
}

func (p *conPTY) Close() error {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	// Closing the console ends its client processes and, once our output
	// reader has drained it, breaks the output pipe.
	if p.hpc != 0 {
		windows.ClosePseudoConsole(p.hpc)
	}
	p.in.Close()
	p.out.Close()
	if p.job != 0 {
		windows.CloseHandle(p.job)
	}
	// p.process stays open until the session is over: Wait may still use it.
	return nil
}

// ownSession is the session the agent runs in.
func ownSession() uint32 {
	var id uint32
	windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &id)
	return id
}
