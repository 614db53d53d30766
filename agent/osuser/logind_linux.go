package osuser

import (
	"context"
	"fmt"
	"time"

	"github.com/godbus/dbus/v5"
)

// LogindSessions asks systemd-logind on the system bus
// (DBUS_SYSTEM_BUS_ADDRESS when set) for its sessions; an error where
// logind is not there. A session whose properties cannot be read is left
// out (it closed between the list and the read).
func LogindSessions(ctx context.Context) ([]LogindSession, error) {
	// One bound for the whole exchange: the connection closes when ctx
	// ends, so a bus that hangs in its handshake cannot hold the caller
	// (the core asks every 10 s).
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := dbus.ConnectSystemBus(dbus.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("logind sessions: %w", err)
	}
	defer c.Close()
	var list []struct {
		ID   string
		UID  uint32
		User string
		Seat string
		Path dbus.ObjectPath
	}
	if err := c.Object("org.freedesktop.login1", "/org/freedesktop/login1").
		CallWithContext(ctx, "org.freedesktop.login1.Manager.ListSessions", 0).Store(&list); err != nil {
		return nil, fmt.Errorf("logind sessions: ListSessions: %w", err)
	}
	var out []LogindSession
	for _, e := range list {
		var props map[string]dbus.Variant
		if err := c.Object("org.freedesktop.login1", e.Path).CallWithContext(ctx,
			"org.freedesktop.DBus.Properties.GetAll", 0, "org.freedesktop.login1.Session").Store(&props); err != nil {
			continue
		}
		str := func(k string) string { v, _ := props[k].Value().(string); return v }
		boolean := func(k string) bool { v, _ := props[k].Value().(bool); return v }
		ls := LogindSession{ID: e.ID, UID: int(e.UID), User: e.User, Seat: e.Seat,
			Type: str("Type"), Class: str("Class"), State: str("State"), Display: str("Display"),
			Active: boolean("Active"), Remote: boolean("Remote"), Locked: boolean("LockedHint"),
			TTY: str("TTY"), RemoteHost: str("RemoteHost")}
		if us, ok := props["Timestamp"].Value().(uint64); ok && us > 0 {
			ls.Started = int(us / 1e6) // microseconds since the epoch
		}
		out = append(out, ls)
	}
	return out, nil
}
