package power

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/godbus/dbus/v5"
	"golang.org/x/sys/unix"
)

// linuxSys is the Linux path: systemd-logind when it is on the system bus
// (DBUS_SYSTEM_BUS_ADDRESS or /run/dbus/system_bus_socket), else the
// kernel's reboot call (off, reset) or /sys/power/state (sleep).
type linuxSys struct {
	connect func() (*dbus.Conn, error)
	// reboot is reboot(2) with LINUX_REBOOT_CMD_POWER_OFF or _RESTART,
	// suspend writes "mem" to /sys/power/state: the last system calls.
	reboot  func(cmd int) error
	suspend func() error
	// sleepStates returns /sys/power/state; capEff /proc/self/status's
	// CapEff line's value; euid the effective uid.
	sleepStates func() (string, error)
	capEff      func() (uint64, error)
	euid        func() int
	// grace is how long the kernel path waits after answering before the
	// machine goes down, so the caller's event-log line reaches the
	// server (logind's own shutdown takes longer than that anyway).
	grace time.Duration
	// after runs f after d (time.AfterFunc); tests run it at once.
	after func(d time.Duration, f func())
	logf  func(msg string, err error)
}

type system = *linuxSys

func realSystem(log *slog.Logger) system {
	return &linuxSys{
		connect: func() (*dbus.Conn, error) { return dbus.ConnectSystemBus() },
		reboot: func(cmd int) error {
			unix.Sync()
			return unix.Reboot(cmd)
		},
		suspend: func() error { return os.WriteFile("/sys/power/state", []byte("mem"), 0) },
		sleepStates: func() (string, error) {
			b, err := os.ReadFile("/sys/power/state")
			return string(b), err
		},
		capEff: readCapEff,
		euid:   os.Geteuid,
		grace:  2 * time.Second,
		after:  func(d time.Duration, f func()) { time.AfterFunc(d, f) },
		logf:   func(msg string, err error) { log.Error(msg, "err", err) },
	}
}

// logind method names per action: the Can* query, then the call.
var logindMethods = map[Action][2]string{
	Off:   {"CanPowerOff", "PowerOff"},
	Reset: {"CanReboot", "Reboot"},
	Sleep: {"CanSuspend", "Suspend"},
}

const (
	logindDest = "org.freedesktop.login1"
	logindPath = "/org/freedesktop/login1"
	logindIfc  = "org.freedesktop.login1.Manager"
	capSysBoot = 22 // linux/capability.h
)

// errNoLogind: logind is not reachable; the kernel path is taken.
var errNoLogind = errors.New("systemd-logind is not reachable")

func do(s system, a Action, forced bool) (string, error) {
	how, err := s.logind(a)
	if !errors.Is(err, errNoLogind) {
		return how, err
	}
	return s.kernel(a, err)
}

// logind asks systemd-logind. It returns errNoLogind (wrapped) when there
// is no system bus or no logind on it.
func (s *linuxSys) logind(a Action) (string, error) {
	conn, err := s.connect()
	if err != nil {
		return "", fmt.Errorf("%w: system bus: %v", errNoLogind, err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obj := conn.Object(logindDest, logindPath)
	m := logindMethods[a]
	var can string
	if err := obj.CallWithContext(ctx, logindIfc+"."+m[0], 0).Store(&can); err != nil {
		return "", logindErr(m[0], err)
	}
	switch can {
	case "yes":
	case "challenge", "no":
		return "", fmt.Errorf("systemd-logind answers %s=%q (polkit would have to ask for a password or denies it): %w", m[0], can, ErrPrivilege)
	case "na":
		return "", fmt.Errorf("systemd-logind answers %s=%q, this machine cannot do it: %w", m[0], can, ErrUnsupported)
	default:
		return "", fmt.Errorf("systemd-logind answers %s=%q", m[0], can)
	}
	// interactive=false: an agent cannot answer a polkit prompt.
	if err := obj.CallWithContext(ctx, logindIfc+"."+m[1], 0, false).Err; err != nil {
		return "", logindErr(m[1], err)
	}
	return "systemd-logind " + m[1], nil
}

// logindErr maps a D-Bus error: no logind on the bus means fall back to
// the kernel; refusals are privilege errors.
func logindErr(method string, err error) error {
	var de dbus.Error
	if errors.As(err, &de) {
		switch de.Name {
		case "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner":
			return fmt.Errorf("%w: %s", errNoLogind, de.Name)
		case "org.freedesktop.DBus.Error.AccessDenied", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired":
			return fmt.Errorf("systemd-logind %s: %v: %w", method, err, ErrPrivilege)
		}
	}
	return fmt.Errorf("systemd-logind %s: %w", method, err)
}

// kernel is the path without logind. Off and reset sync the disks and
// call reboot(2) after the grace period; services are not stopped first,
// as on any system without a service manager to ask.
func (s *linuxSys) kernel(a Action, why error) (string, error) {
	if a == Sleep {
		states, err := s.sleepStates()
		if err != nil || !strings.Contains(" "+strings.TrimSpace(states)+" ", " mem ") {
			return "", fmt.Errorf("%v, and the kernel offers no suspend to RAM (/sys/power/state: %q %v): %w", why, strings.TrimSpace(states), err, ErrUnsupported)
		}
		if s.euid() != 0 {
			return "", fmt.Errorf("%v, and writing /sys/power/state needs root: %w", why, ErrPrivilege)
		}
		s.after(s.grace, func() {
			if err := s.suspend(); err != nil {
				s.logf("suspend through /sys/power/state failed", err)
			}
		})
		return fmt.Sprintf("kernel suspend (/sys/power/state) in %s; %v", s.grace, why), nil
	}
	capEff, err := s.capEff()
	if err != nil {
		return "", fmt.Errorf("%v, and the agent's capabilities are unknown: %w", why, err)
	}
	if capEff&(1<<capSysBoot) == 0 {
		return "", fmt.Errorf("%v, and the kernel's reboot call needs CAP_SYS_BOOT: %w", why, ErrPrivilege)
	}
	cmd := unix.LINUX_REBOOT_CMD_POWER_OFF
	if a == Reset {
		cmd = unix.LINUX_REBOOT_CMD_RESTART
	}
	s.after(s.grace, func() {
		if err := s.reboot(cmd); err != nil {
			s.logf("kernel reboot call failed", err)
		}
	})
	return fmt.Sprintf("kernel reboot call in %s; %v", s.grace, why), nil
}

// readCapEff returns the effective capability set of this process.
func readCapEff() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	return parseCapEff(string(b))
}

func parseCapEff(status string) (uint64, error) {
	for _, ln := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(ln, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("CapEff %q: %w", strings.TrimSpace(v), err)
			}
			return n, nil
		}
	}
	return 0, errors.New("no CapEff line in /proc/self/status")
}
