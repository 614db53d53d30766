//go:build linux

// Package logindtest runs a private D-Bus system bus (the real dbus-daemon)
// with a stand-in for systemd-logind's power methods on it, for tests of
// power actions (and of LockSessions, ListSessions and a session's
// LockedHint, for the desktop lock and consent). A real logind would really power the machine off: the
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
	// sessions listed by ListSessions, by id
	sessions []Session
}

// Session is a login session the stand-in lists (ListSessions) and whose
// LockedHint it answers.
type Session struct {
	ID     string
	UID    uint32
	User   string
	Seat   string
	Locked bool
}

// AddSession lists s from now on, with its object on the bus.
func (l *Logind) AddSession(t testing.TB, s Session) {
	t.Helper()
	path := dbus.ObjectPath("/org/freedesktop/login1/session/_" + s.ID)
	if err := l.conn.Export(sessionProps{l, s.ID}, path, "org.freedesktop.DBus.Properties"); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	l.sessions = append(l.sessions, s)
	l.mu.Unlock()
}

type sessionProps struct {
	l  *Logind
	id string
}

// Get answers org.freedesktop.login1.Session's LockedHint, Name and Active.
func (p sessionProps) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	for _, s := range p.l.sessions {
		if s.ID != p.id || iface != "org.freedesktop.login1.Session" {
			continue
		}
		switch name {
		case "LockedHint":
			return dbus.MakeVariant(s.Locked), nil
		case "Name":
			return dbus.MakeVariant(s.User), nil
		case "Active":
			return dbus.MakeVariant(true), nil
		}
	}
	return dbus.Variant{}, dbus.NewError("org.freedesktop.DBus.Error.UnknownProperty", []any{name})
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

// ListSessions lists the sessions AddSession added, as logind does:
// id, uid, user name, seat and object path.
func (m manager) ListSessions() ([]struct {
	ID   string
	UID  uint32
	User string
	Seat string
	Path dbus.ObjectPath
}, *dbus.Error) {
	m.l.mu.Lock()
	defer m.l.mu.Unlock()
	var out []struct {
		ID   string
		UID  uint32
		User string
		Seat string
		Path dbus.ObjectPath
	}
	for _, s := range m.l.sessions {
		out = append(out, struct {
			ID   string
			UID  uint32
			User string
			Seat string
			Path dbus.ObjectPath
		}{s.ID, s.UID, s.User, s.Seat, dbus.ObjectPath("/org/freedesktop/login1/session/_" + s.ID)})
	}
	return out, nil
}

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
