package desktop

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"

	"github.com/godbus/dbus/v5"
	"github.com/meshgo/meshagent/agent/osuser"
)

// LockScreen locks the local sessions as meshcore.js does on Linux
// (loginctl lock-sessions): logind's LockSessions on the system bus
// (DBUS_SYSTEM_BUS_ADDRESS or the default socket). Without logind it runs
// xdg-screensaver lock as the console user in their desktop session.
func LockScreen(ctx context.Context) error {
	err := logindLock()
	if err == nil {
		return nil
	}
	u, cerr := osuser.Console()
	if cerr != nil {
		return fmt.Errorf("lock: logind: %w; no console user: %w", err, cerr)
	}
	env, eerr := osuser.SessionEnv(u)
	if eerr != nil {
		return fmt.Errorf("lock: logind: %w; %w", err, eerr)
	}
	cmd := exec.CommandContext(ctx, "xdg-screensaver", "lock")
	if aerr := u.Apply(cmd, env...); aerr != nil {
		return fmt.Errorf("lock: logind: %w; %w", err, aerr)
	}
	if out, xerr := cmd.CombinedOutput(); xerr != nil {
		return fmt.Errorf("lock: logind: %w; xdg-screensaver: %w: %s", err, xerr, strings.TrimSpace(string(out)))
	}
	return nil
}

func logindLock() error {
	c, err := dbus.ConnectSystemBus()
	if err != nil {
		return err
	}
	defer c.Close()
	call := c.Object("org.freedesktop.login1", "/org/freedesktop/login1").Call("org.freedesktop.login1.Manager.LockSessions", 0)
	if call.Err != nil {
		var de dbus.Error
		if errors.As(call.Err, &de) {
			return fmt.Errorf("LockSessions: %s", de.Name)
		}
		return call.Err
	}
	return nil
}
