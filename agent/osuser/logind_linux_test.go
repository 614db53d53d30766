package osuser

import (
	"context"
	"slices"
	"testing"

	"github.com/meshgo/meshagent/internal/logindtest"
)

// Locked users come from logind's LockedHint (a stand-in logind on a
// private system bus, answering ListSessions and the property).
func TestLockedUsersFromLogind(t *testing.T) {
	ld := logindtest.Start(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", ld.Address)
	ld.AddSession(t, logindtest.Session{ID: "2", UID: 1000, User: "alice", Seat: "seat0", Locked: true})
	ld.AddSession(t, logindtest.Session{ID: "3", UID: 1001, User: "bob", Seat: "seat0", Locked: false})
	ld.AddSession(t, logindtest.Session{ID: "4", UID: 1000, User: "alice", Locked: true})
	got, err := LockedUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("locked users %q, want [alice]", got)
	}
	ld.SetLocked(t, "2", false)
	ld.SetLocked(t, "3", true)
	if got, err := LockedUsers(context.Background()); err != nil || !slices.Equal(got, []string{"bob", "alice"}) {
		t.Fatalf("after the flips: locked users %q (%v), want [bob alice]", got, err)
	}
	ld.AddSession(t, logindtest.Session{ID: "c1", UID: 0, User: "gdm", Class: "greeter", Active: true})
	ld.AddSession(t, logindtest.Session{ID: "5", UID: 1002, User: "carol", Seat: "seat0", Type: "x11", Class: "user", Display: ":7", Remote: true})
	list, err := LogindSessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The fields the desktop handler picks a session by come through too.
	if len(list) != 5 || list[3] != (LogindSession{ID: "c1", User: "gdm", Class: "greeter", State: "active", Active: true}) ||
		list[4] != (LogindSession{ID: "5", UID: 1002, User: "carol", Seat: "seat0", Type: "x11", Class: "user", State: "online", Display: ":7", Remote: true}) {
		t.Errorf("sessions %+v", list)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	if _, err := LockedUsers(context.Background()); err == nil {
		t.Fatal("no error without a bus")
	}
}
