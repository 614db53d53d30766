//go:build linux

package interop

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/logindtest"
	"github.com/meshgo/meshagent/internal/mctest"
)

// TestLockedUsers: a user session on (a stand-in) logind shows in
// MeshCentral's device record as logged in, as locked once its LockedHint
// is set (the screen locker's flag) and as unlocked again when it is
// cleared: our agent re-sends coreinfo's users and lusers on change.
func TestLockedUsers(t *testing.T) {
	l := logindtest.Start(t)
	const user = "meshgo-lockee"
	l.AddSession(t, logindtest.Session{ID: "7", UID: 4242, User: user, Seat: "seat0", Type: "x11", Class: "user", Active: true})
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "lusers-test")
	_, node := startLogindAgent(t, srv, mesh, l)
	list := func(d mctest.Device, k string) []string {
		var out []string
		v, _ := d.Raw[k].([]any)
		for _, e := range v {
			out = append(out, fmt.Sprint(e))
		}
		return out
	}
	// Each state within two of the agent's 10 s checks and meshctrl's polls.
	wait := func(what string, locked bool) {
		t.Helper()
		d := srv.WaitDevice(t, func(d mctest.Device) bool {
			return d.ShortID() == node && d.Online() && slices.Contains(list(d, "users"), user) &&
				slices.Contains(list(d, "lusers"), user) == locked
		}, 60*time.Second)
		t.Logf("%s: users %q, lusers %q", what, list(d, "users"), list(d, "lusers"))
	}
	wait("unlocked session", false)
	l.SetLocked(t, "7", true)
	wait("LockedHint set", true)
	l.SetLocked(t, "7", false)
	wait("LockedHint cleared", false)
}
