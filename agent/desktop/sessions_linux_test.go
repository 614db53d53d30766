package desktop

import (
	"path/filepath"
	"testing"

	"github.com/meshgo/meshagent/internal/logindtest"
	"github.com/meshgo/meshagent/internal/waylandtest"
)

// TestSessions: a root agent finds a user's GNOME session, from logind's
// session list when logind answers (ranked over an inactive greeter), and
// from the compositor's process when there is no logind, with its type,
// family, user, runtime dir, session bus and Wayland socket.
func TestSessions(t *testing.T) {
	m := waylandtest.StartMutter(t, 320, 240)
	check := func(t *testing.T, s Session, source string) {
		t.Helper()
		if s.Type != "wayland" || s.Desktop != "gnome" || s.UID != m.UID || s.User != waylandtest.UserName ||
			s.RuntimeDir != m.Runtime || s.Bus != m.Bus || s.WaylandSocket != m.Socket || s.Source != source {
			t.Fatalf("session %+v; want wayland/gnome uid %d runtime %s bus %s socket %s from %s", s, m.UID, m.Runtime, m.Bus, m.Socket, source)
		}
	}
	t.Run("no logind", func(t *testing.T) {
		t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path="+filepath.Join(t.TempDir(), "none"))
		var found []Session
		for _, s := range Sessions(Options{}) {
			if s.Type == "wayland" && s.UID == m.UID && s.RuntimeDir == m.Runtime {
				found = append(found, s)
			}
		}
		if len(found) != 1 {
			t.Fatalf("sessions of the mutter user: %+v, want one", found)
		}
		check(t, found[0], "process")
	})
	t.Run("logind", func(t *testing.T) {
		l := logindtest.Start(t)
		t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", l.Address)
		l.AddSession(t, logindtest.Session{ID: "c1", UID: 120, User: "gdm", Seat: "seat0", Type: "x11", Class: "greeter", Display: ":1024"})
		l.AddSession(t, logindtest.Session{ID: "3", UID: 0, User: "root", Type: "tty", Class: "user", Active: true})
		l.AddSession(t, logindtest.Session{ID: "7", UID: uint32(m.UID), User: waylandtest.UserName, Seat: "seat0", Type: "wayland", Class: "user", Active: true})
		got := Sessions(Options{})
		if len(got) != 2 {
			t.Fatalf("sessions %+v, want the wayland one and the x11 greeter (not the tty)", got)
		}
		check(t, got[0], "logind")
		if got[0].ID != "7" || !got[0].Active || got[0].Seat != "seat0" {
			t.Fatalf("first session %+v, want logind session 7, active on seat0", got[0])
		}
		if g := got[1]; g.Type != "x11" || g.Class != "greeter" || g.Display != ":1024" || g.Desktop != "x11" || g.Active {
			t.Fatalf("second session %+v, want the inactive x11 greeter on :1024", g)
		}
	})
}
