// Package osuser is the one place the agent decides who "the logged-in
// user" is and starts processes as a local account. Terminals (protocol 8
// and 9 user shells), runcommands' runAsUser and the script API's
// proc.shell user option and proc.consoleUser all go through it, so a
// terminal "as the logged-in user" and a command run "as the logged-in
// user" always pick the same account and get the same credentials.
//
// # The console user rule
//
// Console picks, first match wins, and never root (running "as the user"
// must not silently mean as root):
//
//  1. macOS: the owner of /dev/console, which the window server gives to
//     the user at the GUI; root there means the login window is showing,
//     i.e. nobody is logged in, and the rule stops.
//  2. systemd-logind: the active session's user on seat0 (ACTIVE_UID in
//     /run/systemd/seats/seat0), the person at the physical seat.
//  3. Login records (utmp): a graphical session, one whose terminal or
//     host is an X display ":N".
//  4. The owner of a local X display socket (/tmp/.X11-unix/XN, lowest N
//     first): an X server a user started without a login record (Xvfb,
//     Xvnc, rootless Xorg).
//  5. The owner of a Wayland compositor socket (/run/user/UID/wayland-N,
//     newest first): a Wayland session without a login record or logind
//     (a compositor started by hand or by a test).
//  6. Login records: a session on a local text console or seat (ttyN,
//     console, seatN) with no remote host.
//  7. Login records: any other logged-in user (e.g. over ssh), as a last
//     resort.
//
// Within one login-record step the most recent login wins, then the
// smallest name, so the choice is deterministic. Names that cannot be
// account names are ignored. A candidate whose account no longer exists
// is skipped. When nothing matches, Console returns ErrNoConsoleUser.
//
// # Running as a user
//
// User.Apply sets an exec.Cmd's uid, gid and supplementary groups (when
// the agent is not already that user), a clean environment (HOME, USER,
// LOGNAME, SHELL, PATH, LANG/LC_ALL/TZ from the agent, XDG_RUNTIME_DIR
// when it exists) and the home directory as working directory. It fails,
// never falls back to the agent's own identity, when the agent cannot
// switch (it is not root).
//
// # Windows
//
// The console user is the user logged in to the session attached to the
// physical console (WTSGetActiveConsoleSessionId), or the agent's own
// account when the agent is not LocalSystem (run by a user from a
// console: it already is that user). Lookup finds an account among the
// Active sessions' users. Apply gives the command the user's session token
// (WTSQueryUserToken, which only LocalSystem may call; os/exec then starts
// it with CreateProcessAsUser), the user's environment block and profile
// directory, on the session's interactive desktop; for the agent's own
// account it changes nothing. An agent that is neither LocalSystem nor
// that user gets ErrCannotSwitch.
package osuser

import (
	"errors"
	"os"
)

// DefaultPath is the PATH a process started as another user gets.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var (
	// ErrNoConsoleUser means nobody (other than root) is logged in at the
	// console by the rule in the package documentation.
	ErrNoConsoleUser = errors.New("no user is logged in at the console")
	// ErrNoSuchUser means the account named does not exist.
	ErrNoSuchUser = errors.New("no such user")
	// ErrCannotSwitch means the agent is not root and so cannot start a
	// process as another account.
	ErrCannotSwitch = errors.New("the agent is not running as root and cannot switch users")
)

// User is a local account resolved for starting processes as it.
type User struct {
	Name  string // account name
	UID   string // decimal uid
	GID   string // decimal primary gid
	Home  string // home directory as the account database says
	Shell string // login shell; /bin/sh when the database has none

	uid, gid uint32
	groups   []uint32 // supplementary groups, the primary one included

	// Windows: the terminal-services session the user is logged in to,
	// and whether the user is the agent's own account (then no token
	// switch is needed).
	session uint32
	own     bool
}

// Dir is the working directory a process started as u gets: the home, or
// "/" when the home is missing (system accounts such as nobody).
func (u *User) Dir() string {
	if u.Home != "" {
		if fi, err := os.Stat(u.Home); err == nil && fi.IsDir() {
			return u.Home
		}
	}
	return "/"
}

// Console finds the console user by the package's rule on this machine.
func Console() (*User, error) { return (&Detector{}).Console() }

// Detector reads the facts Console's rule uses. The zero value reads the
// real system; tests point it at fixtures.
type Detector struct {
	// SeatFile is logind's seat0 state; "" means /run/systemd/seats/seat0.
	SeatFile string
	// Logins lists the login records; nil means the system's utmp, or
	// logind's sessions where there is no utmp (LoginRecords).
	Logins func() ([]Login, error)
	// XSocketDir holds the X display sockets; "" means /tmp/.X11-unix.
	XSocketDir string
	// RuntimeRoot holds the users' runtime dirs with their Wayland
	// sockets (UID/wayland-N); "" means /run/user.
	RuntimeRoot string
	// ConsoleDevice is the device whose owner is the macOS console user;
	// "" means /dev/console. Only consulted on macOS.
	ConsoleDevice string
}

// Login is one login record (a utmp entry).
type Login struct {
	User     string
	Terminal string // tty line: "tty1", "pts/0", ":0", "console", "seat0"
	Host     string // remote host, or the X display for some display managers
	Started  int    // login time, Unix seconds
}
