package consent

import (
	"fmt"

	"github.com/godbus/dbus/v5"
)

// lockedUsers lists the users with a locked login session, from
// systemd-logind's LockedHint (the screen locker sets it); none, with an
// error, where logind is not on the system bus.
func lockedUsers() ([]string, error) {
	c, err := dbus.ConnectSystemBus()
	if err != nil {
		return nil, fmt.Errorf("locked sessions: %w", err)
	}
	defer c.Close()
	var sessions []struct {
		ID   string
		UID  uint32
		User string
		Seat string
		Path dbus.ObjectPath
	}
	if err := c.Object("org.freedesktop.login1", "/org/freedesktop/login1").
		Call("org.freedesktop.login1.Manager.ListSessions", 0).Store(&sessions); err != nil {
		return nil, fmt.Errorf("locked sessions: ListSessions: %w", err)
	}
	var out []string
	for _, s := range sessions {
		v, err := c.Object("org.freedesktop.login1", s.Path).GetProperty("org.freedesktop.login1.Session.LockedHint")
		if err != nil {
			continue
		}
		if locked, ok := v.Value().(bool); ok && locked && !contains(out, s.User) {
			out = append(out, s.User)
		}
	}
	return out, nil
}
