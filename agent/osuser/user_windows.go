package osuser

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/windows"
)

// noConsole is WTSGetActiveConsoleSessionId's answer while no session is
// attached to the console.
const noConsole = 0xFFFFFFFF

// isSystem reports whether the agent is LocalSystem (the service).
func isSystem() bool {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	return err == nil && u.User.Sid.IsWellKnown(windows.WinLocalSystemSid)
}

// ownUser is the agent's own account, as a User that needs no switch.
func ownUser() (*User, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("token user: %w", err)
	}
	name, _, _, err := u.User.Sid.LookupAccount("")
	if err != nil {
		return nil, fmt.Errorf("account name: %w", err)
	}
	var id uint32
	windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &id)
	home, _ := windows.GetCurrentProcessToken().GetUserProfileDirectory()
	return &User{Name: name, Home: home, session: id, own: true}, nil
}

// Console is the console session's user (the agent's own account when the
// agent is not the service).
func (d *Detector) Console() (*User, error) {
	if !isSystem() {
		return ownUser()
	}
	id := windows.WTSGetActiveConsoleSessionId()
	if id == noConsole {
		return nil, ErrNoConsoleUser
	}
	name := sessionString(id, wtsUserName)
	if name == "" {
		return nil, ErrNoConsoleUser // the login screen
	}
	return &User{Name: name, session: id}, nil
}

// sameAccount compares a session's user with a name that may carry a
// domain ("PC\alice") the way Windows does, without case.
func sameAccount(name, user, domain string) bool {
	if d, n, ok := strings.Cut(name, `\`); ok {
		return strings.EqualFold(n, user) && (domain == "" || strings.EqualFold(d, domain))
	}
	return strings.EqualFold(name, user)
}

// Lookup finds name among the users logged in to Active sessions (the
// console's first); as a non-service agent only its own account.
func Lookup(name string) (*User, error) {
	if !isSystem() {
		own, err := ownUser()
		if err != nil {
			return nil, err
		}
		if sameAccount(name, own.Name, "") {
			return own, nil
		}
		return nil, fmt.Errorf("%s: %w", name, ErrCannotSwitch)
	}
	list, err := Sessions()
	if err != nil {
		return nil, err
	}
	console := windows.WTSGetActiveConsoleSessionId()
	var found *User
	for _, s := range list {
		if s.State != "Active" || s.User == "" || !sameAccount(name, s.User, s.Domain) {
			continue
		}
		if found == nil || s.ID == console {
			found = &User{Name: s.User, session: s.ID}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("%s is not logged in: %w", name, ErrNoSuchUser)
	}
	return found, nil
}

// CanRun reports whether the agent can start processes as u.
func (u *User) CanRun() error {
	if u.own || isSystem() {
		return nil
	}
	return ErrCannotSwitch
}

// Token returns a primary token for starting processes as u: the session
// user's (WTSQueryUserToken), or a copy of the agent's own. The caller
// closes it.
func (u *User) Token() (windows.Token, error) {
	if u.own {
		var own, tok windows.Token
		if err := windows.OpenProcessToken(windows.CurrentProcess(), windows.TOKEN_DUPLICATE|windows.TOKEN_QUERY|windows.TOKEN_ASSIGN_PRIMARY|windows.TOKEN_ADJUST_DEFAULT|windows.TOKEN_ADJUST_SESSIONID, &own); err != nil {
			return 0, fmt.Errorf("OpenProcessToken: %w", err)
		}
		defer own.Close()
		if err := windows.DuplicateTokenEx(own, windows.MAXIMUM_ALLOWED, nil, windows.SecurityImpersonation, windows.TokenPrimary, &tok); err != nil {
			return 0, fmt.Errorf("DuplicateTokenEx: %w", err)
		}
		return tok, nil
	}
	if !isSystem() {
		return 0, ErrCannotSwitch
	}
	var tok windows.Token
	if err := windows.WTSQueryUserToken(u.session, &tok); err != nil {
		return 0, fmt.Errorf("WTSQueryUserToken(session %d, %s): %w", u.session, u.Name, err)
	}
	return tok, nil
}

// Session is the Windows session u is logged in to.
func (u *User) Session() uint32 { return u.session }

// Env is u's environment as Windows builds it for a new logon process
// (CreateEnvironmentBlock of the user's token), nil when unavailable.
func (u *User) Env() []string {
	if u.own {
		return nil
	}
	tok, err := u.Token()
	if err != nil {
		return nil
	}
	defer tok.Close()
	env, err := tok.Environ(false)
	if err != nil {
		return nil
	}
	return env
}

// Apply makes cmd start as u: with u's session token, environment (plus
// extra) and profile directory. For the agent's own account it only adds
// extra to the environment.
func (u *User) Apply(cmd *exec.Cmd, extra ...string) error {
	if u.own {
		if len(extra) > 0 {
			if cmd.Env == nil {
				cmd.Env = cmd.Environ()
			}
			cmd.Env = append(cmd.Env, extra...)
		}
		return nil
	}
	tok, err := u.Token()
	if err != nil {
		return err
	}
	env, err := tok.Environ(false)
	if err != nil {
		tok.Close()
		return fmt.Errorf("environment of %s: %w", u.Name, err)
	}
	cmd.Env = append(env, extra...)
	if cmd.Dir == "" {
		if home, err := tok.GetUserProfileDirectory(); err == nil {
			cmd.Dir = home
		}
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Token = syscall.Token(tok)
	// The token must live until the process starts; it goes with cmd.
	runtime.AddCleanup(cmd, func(t windows.Token) { t.Close() }, tok)
	return nil
}

// SessionEnv is the user's environment as Windows builds it for a new
// logon process (Env); there is no separate desktop environment to find.
func SessionEnv(u *User) ([]string, error) {
	if env := u.Env(); env != nil {
		return env, nil
	}
	return os.Environ(), nil
}
