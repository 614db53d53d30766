package osuser

import (
	"context"
	"slices"
)

// LogindSession is one session systemd-logind lists, with the properties
// the agent uses: MeshCentral's logged-in users (class "user") and locked
// users (LockedHint, which the screen locker sets), and what the desktop
// handler needs to pick and reach a graphical session (type, seat, X
// display, active, remote). One reader serves both, so they agree on what
// logind said.
type LogindSession struct {
	ID      string
	UID     int
	User    string
	Seat    string // "seat0"; "" for a session on no seat (ssh)
	Type    string // "x11", "wayland", "tty", "mir", "unspecified"
	Class   string // "user", "greeter", "lock-screen", "background", "manager"
	State   string // "active", "online", "closing"
	Display string // the X display of an x11 session (":0")
	Active  bool
	Remote  bool
	Locked  bool // LockedHint
	// TTY and RemoteHost are as logind has them ("" when none); Started is
	// the login time in Unix seconds (0 when unknown).
	TTY, RemoteHost string
	Started         int
}

// LockedUsers lists, once each in logind's order, the users with a
// locked session (LockedHint); an error where logind is not on the bus.
func LockedUsers(ctx context.Context) ([]string, error) {
	list, err := LogindSessions(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range list {
		if s.Locked && s.User != "" && !slices.Contains(out, s.User) {
			out = append(out, s.User)
		}
	}
	return out, nil
}
