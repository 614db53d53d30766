package sessionworker

import (
	"errors"
	"fmt"

	"github.com/meshgo/meshagent/agent/osuser"
)

// NoConsole is WTSGetActiveConsoleSessionId's answer while no session is
// attached to the physical console (during a session switch).
const NoConsole = 0xFFFFFFFF

// Target is where a worker runs and with which token.
type Target struct {
	// Session is the Windows session id.
	Session uint32
	// AsUser is true when the worker runs with the session user's own
	// token (WTSQueryUserToken); false means the service's SYSTEM token
	// with its session id set to Session, which is what the login screen
	// (no user logged in there) needs.
	AsUser bool
	// User names the account ("DOMAIN\\name") when AsUser.
	User string
}

// ErrNoSession means there is no session to run a worker in: the viewer
// chose one that does not exist (any more), or no session is attached to
// the console right now.
var ErrNoSession = errors.New("no such desktop session")

// Choose picks the worker's target: the session the viewer chose (tsid,
// from the userSessions picker) when there is one, else the session on
// the physical console. Session 0 (services) never gets a worker: it has
// no desktop anyone sees. A session with a logged-in user gets a worker
// with that user's token; one without (the login screen, a disconnected
// session's lock screen) gets SYSTEM's token moved into it.
func Choose(list []osuser.Session, console uint32, tsid *uint32) (Target, error) {
	want := console
	if tsid != nil {
		want = *tsid
	}
	if want == NoConsole {
		return Target{}, fmt.Errorf("%w: no session is attached to the console", ErrNoSession)
	}
	if want == 0 {
		return Target{}, fmt.Errorf("%w: session 0 runs services and has no user desktop", ErrNoSession)
	}
	for _, s := range list {
		if s.ID != want {
			continue
		}
		if tsid != nil && s.State != "Active" && s.State != "Connected" {
			return Target{}, fmt.Errorf("%w: session %d is %s", ErrNoSession, want, s.State)
		}
		t := Target{Session: want}
		if s.User != "" && s.State == "Active" {
			t.AsUser = true
			t.User = s.User
			if s.Domain != "" {
				t.User = s.Domain + `\` + s.User
			}
		}
		return t, nil
	}
	if tsid != nil {
		return Target{}, fmt.Errorf("%w: session %d", ErrNoSession, want)
	}
	// The console session is not listed (the list was taken a moment
	// earlier, or the enumeration left it out): the login screen.
	return Target{Session: want}, nil
}
