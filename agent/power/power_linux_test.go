package power

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/meshgo/meshagent/internal/logindtest"
)

// kernelStub replaces the kernel's last calls; everything else is real.
type kernelStub struct {
	reboots  []int
	suspends int
}

func testSystem(t *testing.T, busAddr string, k *kernelStub) *linuxSys {
	s := realSystem(slog.Default())
	s.connect = func() (*dbus.Conn, error) { return dbus.Connect(busAddr) }
	s.reboot = func(cmd int) error { k.reboots = append(k.reboots, cmd); return nil }
	s.suspend = func() error { k.suspends++; return nil }
	s.after = func(_ time.Duration, f func()) { f() }
	return s
}

// The D-Bus path against a logind stand-in on a real private bus: each
// action reaches its logind method with interactive=false, and refusals
// come back as ErrPrivilege or ErrUnsupported with nothing done.
func TestLogind(t *testing.T) {
	l := logindtest.Start(t)
	k := &kernelStub{}
	c := &Controller{sys: testSystem(t, l.Address, k)}
	for _, tc := range []struct {
		a    Action
		call string
	}{{Off, "PowerOff(false)"}, {Reset, "Reboot(false)"}, {Sleep, "Suspend(false)"}} {
		before := len(l.Calls())
		how, err := c.Do(tc.a, false)
		if err != nil {
			t.Fatalf("%v: %v", tc.a, err)
		}
		calls := l.Calls()
		if len(calls) != before+1 || calls[before] != tc.call {
			t.Errorf("%v: logind got %v, want one more %s", tc.a, calls, tc.call)
		}
		if !strings.Contains(how, "systemd-logind") {
			t.Errorf("%v: reported %q", tc.a, how)
		}
	}
	for _, tc := range []struct {
		name, can, deny string
		want            error
	}{
		{"challenge", "challenge", "", ErrPrivilege},
		{"policy says no", "no", "", ErrPrivilege},
		{"not available", "na", "", ErrUnsupported},
		{"interactive auth required", "yes", "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired", ErrPrivilege},
		{"access denied", "yes", "org.freedesktop.DBus.Error.AccessDenied", ErrPrivilege},
		{"other failure", "yes", "org.freedesktop.login1.OperationInProgress", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l.SetCan(tc.can)
			l.Deny(tc.deny)
			defer func() { l.SetCan("yes"); l.Deny("") }()
			before := len(l.Calls())
			_, err := c.Do(Off, false)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Errorf("error %v, want %v", err, tc.want)
			}
			if tc.want == nil && (errors.Is(err, ErrPrivilege) || errors.Is(err, ErrUnsupported)) {
				t.Errorf("error %v should be neither privilege nor unsupported", err)
			}
			if len(l.Calls()) != before || len(k.reboots) != 0 {
				t.Errorf("something was done: logind %v, kernel %v", l.Calls(), k.reboots)
			}
		})
	}
}

// Without logind the kernel path runs, only with CAP_SYS_BOOT (off,
// reset) or as root with "mem" offered (sleep).
func TestKernelFallback(t *testing.T) {
	noBus := "unix:path=/nonexistent/meshgo-test-bus"
	for _, tc := range []struct {
		name   string
		a      Action
		capEff uint64
		euid   int
		states string
		want   error
		reboot []int
		susp   int
	}{
		{"off as root", Off, 1 << capSysBoot, 0, "", nil, []int{0x4321fedc}, 0},
		{"reset as root", Reset, 1<<capSysBoot | 1, 0, "", nil, []int{0x01234567}, 0},
		{"off without CAP_SYS_BOOT", Off, 0x3fffff, 0, "", ErrPrivilege, nil, 0},
		{"reset as a user", Reset, 0, 1000, "", ErrPrivilege, nil, 0},
		{"sleep as root", Sleep, 0, 0, "freeze mem disk\n", nil, nil, 1},
		{"sleep as a user", Sleep, 0, 1000, "freeze mem disk\n", ErrPrivilege, nil, 0},
		{"sleep without mem", Sleep, 0, 0, "freeze disk\n", ErrUnsupported, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &kernelStub{}
			s := testSystem(t, noBus, k)
			s.capEff = func() (uint64, error) { return tc.capEff, nil }
			s.euid = func() int { return tc.euid }
			s.sleepStates = func() (string, error) { return tc.states, nil }
			how, err := (&Controller{sys: s}).Do(tc.a, false)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err == nil && !strings.Contains(how, "kernel") {
				t.Errorf("reported %q", how)
			}
			if err != nil && !strings.Contains(err.Error(), "logind is not reachable") {
				t.Errorf("error does not say logind is missing: %v", err)
			}
			if len(k.reboots) != len(tc.reboot) || len(tc.reboot) > 0 && k.reboots[0] != tc.reboot[0] || k.suspends != tc.susp {
				t.Errorf("kernel calls %x, %d suspends; want %x, %d", k.reboots, k.suspends, tc.reboot, tc.susp)
			}
		})
	}
}

func TestUnknownAction(t *testing.T) {
	k := &kernelStub{}
	for _, a := range []Action{0, 1, 5, 302, -1} {
		if _, err := (&Controller{sys: testSystem(t, "unix:path=/nonexistent", k)}).Do(a, false); !errors.Is(err, ErrUnsupported) {
			t.Errorf("action %d: %v", a, err)
		}
	}
	if len(k.reboots) != 0 {
		t.Error("kernel called")
	}
}

func TestParseCapEff(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001fffeffffff\n", 0x1fffeffffff, true},
		{"CapEff:\t0000000000000000", 0, true},
		{"CapPrm:\t00ff\n", 0, false},
		{"CapEff:\tzz\n", 0, false},
	} {
		got, err := parseCapEff(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %x %v", tc.in, got, err)
		}
	}
}
