package osuser

import (
	"context"
	"slices"
)

// LogindSession is one session systemd-logind lists, with the properties
// the agent reports: MeshCentral's logged-in users (class "user") and
// locked users (LockedHint, which the screen locker sets).
type LogindSession struct {
	ID     string
	User   string
	Class  string // "user", "greeter", "lock-screen", "background", "manager"
	State  string // "active", "online", "closing"
	Locked bool   // LockedHint
	// TTY, Seat and RemoteHost are as logind has them ("" when none);
	// Started is the login time in Unix seconds (0 when unknown).
	TTY, Seat, RemoteHost string
	Started               int
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
