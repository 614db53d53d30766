//go:build linux

// Package logindtest runs a private D-Bus system bus (the real dbus-daemon)
// with a stand-in for systemd-logind's power methods on it, for tests of
// power actions, its session list (ListSessions and the sessions'
// properties, LockedHint among them) for tests of desktop session discovery
// and consent, and LockSessions for the desktop lock. A real logind would really power the machine off: the
// stand-in is the one fake, at the last call, and it only records what
// it was asked.
package logindtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// Logind is the stand-in on its own bus.
type Logind struct {
	// Address is the bus address, for DBUS_SYSTEM_BUS_ADDRESS.
	Address string

	mu    sync.Mutex
	calls []string
	can   string
	deny  string
	conn  *dbus.Conn

	sessions []Session
	props    map[string]*prop.Properties // by session ID
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// Start runs dbus-daemon on a socket in a fresh directory and claims
// org.freedesktop.login1 on it. Everything ends with the test.
func Start(t testing.TB) *Logind {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Fatalf("dbus-daemon is needed (apt-get install dbus-daemon): %v", err)
	}
	dir, err := os.MkdirTemp("", "logindtest")
	if err != nil {
		t.Fatal(err)
	}
	// Reachable by agents the test runs as other users.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "system_bus_socket")
	cfg := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(busConfig, sock)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+cfg, "--nofork", "--nopidfile", "--nosyslog")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("dbus-daemon: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	l := &Logind{Address: "unix:path=" + sock, can: "yes"}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if l.conn, err = dbus.Connect(l.Address); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect to the test bus: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() { l.conn.Close() })
	if err := l.conn.Export(manager{l}, "/org/freedesktop/login1", "org.freedesktop.login1.Manager"); err != nil {
		t.Fatal(err)
	}
	r, err := l.conn.RequestName("org.freedesktop.login1", dbus.NameFlagDoNotQueue)
	if err != nil || r != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("claim org.freedesktop.login1: %v (reply %d)", err, r)
	}
	return l
}

// SetCan sets what the Can* methods answer ("yes", "challenge", "no",
// "na"); "yes" at start.
func (l *Logind) SetCan(s string) { l.mu.Lock(); l.can = s; l.mu.Unlock() }

// Deny makes the power methods fail with the D-Bus error name (e.g.
// org.freedesktop.DBus.Error.InteractiveAuthorizationRequired, as logind
// answers an unprivileged caller); "" accepts again.
func (l *Logind) Deny(errName string) { l.mu.Lock(); l.deny = errName; l.mu.Unlock() }

// Calls returns the power calls accepted so far, as "PowerOff(false)".
func (l *Logind) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.calls...)
}

// WaitCalls waits until n calls were accepted and returns them.
func (l *Logind) WaitCalls(n int, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		c := l.Calls()
		if len(c) >= n || time.Now().After(deadline) {
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type manager struct{ l *Logind }

func (m manager) answer() (string, *dbus.Error) {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	return m.l.can, nil
}

func (m manager) call(name string, interactive bool) *dbus.Error {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	if m.l.deny != "" {
		return dbus.NewError(m.l.deny, []any{"Interactive authentication required."})
	}
	m.l.calls = append(m.l.calls, fmt.Sprintf("%s(%v)", name, interactive))
	return nil
}

func (m manager) CanPowerOff() (string, *dbus.Error) { return m.answer() }
func (m manager) CanReboot() (string, *dbus.Error)   { return m.answer() }
func (m manager) CanSuspend() (string, *dbus.Error)  { return m.answer() }
func (m manager) PowerOff(i bool) *dbus.Error        { return m.call("PowerOff", i) }
func (m manager) Reboot(i bool) *dbus.Error          { return m.call("Reboot", i) }
func (m manager) Suspend(i bool) *dbus.Error         { return m.call("Suspend", i) }

// LockSessions records "LockSessions()": what loginctl lock-sessions asks.
func (m manager) LockSessions() *dbus.Error {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	if m.l.deny != "" {
		return dbus.NewError(m.l.deny, []any{"Access denied."})
	}
	m.l.calls = append(m.l.calls, "LockSessions()")
	return nil
}

// String is for test logs.
func (l *Logind) String() string {
	return "logind stand-in at " + l.Address + ": " + strings.Join(l.Calls(), ", ")
}

// Session is a login session the stand-in lists (ListSessions) and
// exports at /org/freedesktop/login1/session/_ID with the properties a
// desktop discovery reads.
type Session struct {
	ID      string
	UID     uint32
	User    string
	Seat    string
	Type    string // "wayland", "x11", "tty"
	Class   string // "user", "greeter"
	Active  bool
	Remote  bool
	Display string // X display for x11 sessions
	Leader  uint32
	Locked  bool // LockedHint (a screen locker sets it)
}

func (s Session) path() dbus.ObjectPath {
	return dbus.ObjectPath("/org/freedesktop/login1/session/_" + s.ID)
}

// AddSession exports s and lists it in ListSessions.
func (l *Logind) AddSession(t testing.TB, s Session) {
	t.Helper()
	seatPath := dbus.ObjectPath("/") // logind's "no seat"
	if s.Seat != "" {
		seatPath = dbus.ObjectPath("/org/freedesktop/login1/seat/" + s.Seat)
	}
	props := map[string]map[string]*prop.Prop{
		"org.freedesktop.login1.Session": {
			"Id":         {Value: s.ID},
			"Name":       {Value: s.User},
			"User":       {Value: userRef{s.UID, dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/login1/user/_%d", s.UID))}},
			"Seat":       {Value: seatRef{s.Seat, seatPath}},
			"Type":       {Value: s.Type},
			"Class":      {Value: s.Class},
			"Active":     {Value: s.Active},
			"Remote":     {Value: s.Remote},
			"Display":    {Value: s.Display},
			"Leader":     {Value: s.Leader},
			"State":      {Value: map[bool]string{true: "active", false: "online"}[s.Active]},
			"LockedHint": {Value: s.Locked},
		},
	}
	p, err := prop.Export(l.conn, s.path(), props)
	if err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.sessions = append(l.sessions, s)
	if l.props == nil {
		l.props = map[string]*prop.Properties{}
	}
	l.props[s.ID] = p
	l.mu.Unlock()
}

// SetLocked changes session id's LockedHint, as a screen locker does
// through logind's SetLockedHint (the stand-in emits no
// PropertiesChanged: readers see it on their next read).
func (l *Logind) SetLocked(t testing.TB, id string, locked bool) {
	t.Helper()
	l.mu.Lock()
	p := l.props[id]
	l.mu.Unlock()
	if p == nil {
		t.Fatalf("logindtest: no session %q", id)
	}
	p.SetMust("org.freedesktop.login1.Session", "LockedHint", locked)
}

type userRef struct {
	UID  uint32
	Path dbus.ObjectPath
}

type seatRef struct {
	ID   string
	Path dbus.ObjectPath
}

type sessionEntry struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}

func (m manager) ListSessions() ([]sessionEntry, *dbus.Error) {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	out := []sessionEntry{}
	for _, s := range m.l.sessions {
		out = append(out, sessionEntry{s.ID, s.UID, s.User, s.Seat, s.path()})
	}
	return out, nil
}
