package consent

import (
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
	got, err := lockedUsers()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("locked users %q, want [alice]", got)
	}
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
	if _, err := lockedUsers(); err == nil {
		t.Fatal("no error without a bus")
	}
}
