// Package power carries out MeshCentral's agent power actions (the server's
// `poweraction` message, control.md 6.7): power off, reset and sleep.
//
// Each platform asks the operating system's own power manager first
// (systemd-logind over D-Bus on Linux, ExitWindowsEx/SetSuspendState on
// Windows, shutdown/pmset on macOS), so services stop cleanly and the
// system's policy applies. A request the agent has no right to make fails
// with an error wrapping ErrPrivilege before anything happens, never
// silently: the caller writes what was done, or why not, to the device's
// event log.
package power

import (
	"errors"
	"fmt"
	"log/slog"
)

// Action is a MeshCentral agent power action number (actiontype).
type Action int

// The actions MeshCentral's device page and meshctrl devicepower send to
// an agent (views/default.handlebars power menu; meshctrl.js devicepower).
const (
	Off   Action = 2 // power off
	Reset Action = 3 // reboot
	Sleep Action = 4 // suspend to RAM
)

func (a Action) String() string {
	switch a {
	case Off:
		return "power off"
	case Reset:
		return "reset"
	case Sleep:
		return "sleep"
	}
	return fmt.Sprintf("power action %d", int(a))
}

var (
	// ErrPrivilege: the agent runs without the right to change the power
	// state (not root, no CAP_SYS_BOOT, no SeShutdownPrivilege, or the
	// power manager's policy asks for interactive authentication).
	ErrPrivilege = errors.New("the agent lacks the privilege to change the power state")
	// ErrUnsupported: the action has no meaning or no implementation here
	// (an unknown action number, sleep on a machine that cannot suspend).
	ErrUnsupported = errors.New("power action not supported")
)

// Controller performs power actions. The zero value is ready to use.
type Controller struct {
	Logger *slog.Logger
	// sys is the platform's last step; nil = the real one. Only tests of
	// this package replace it: a real shutdown cannot run in a test.
	sys system
}

// Do performs action a; forced asks to close applications without
// waiting (Windows EWX_FORCE). It returns once the operating system has
// accepted the request (the machine goes down shortly after) and says
// how, or an error when nothing was done.
func (c *Controller) Do(a Action, forced bool) (string, error) {
	switch a {
	case Off, Reset, Sleep:
	default:
		return "", fmt.Errorf("%v: %w", a, ErrUnsupported)
	}
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	s := c.sys
	if s == nil {
		s = realSystem(log)
	}
	how, err := do(s, a, forced)
	if err != nil {
		log.Warn("power action failed", "action", a.String(), "err", err)
		return "", fmt.Errorf("%v: %w", a, err)
	}
	log.Info("power action accepted", "action", a.String(), "via", how)
	return how, nil
}
