//go:build !windows

package script

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/meshgo/meshagent/agent/osuser"
)

// openURLAs opens raw in the desktop session of the console user that
// detect names: xdg-open as that user with the session's display on
// Linux, `launchctl asuser UID open` on macOS. It waits up to 5 s for the
// opener to fail; one still running then has handed the URL over.
func openURLAs(raw string, detect func() (string, error)) error {
	if err := checkOpenURL(raw); err != nil {
		return err
	}
	name, err := detect()
	if err != nil {
		return fmt.Errorf("open URL: %w", err)
	}
	if name == "" {
		return fmt.Errorf("open URL: %w", errNoConsoleUser)
	}
	ru, err := lookupRunUser(name)
	if err != nil {
		return fmt.Errorf("open URL: %w", err)
	}
	var cmd *exec.Cmd
	if runtime.GOOS == "darwin" {
		cmd = exec.Command("/bin/launchctl", "asuser", ru.UID, "/usr/bin/open", raw)
	} else {
		tool := firstTool("xdg-open")
		if tool == "" {
			return fmt.Errorf("open URL: xdg-open is not installed")
		}
		senv, err := osuser.SessionEnv(ru)
		if err != nil {
			return fmt.Errorf("open URL as %s: %w", ru.Name, err)
		}
		cmd = exec.Command(tool, raw)
		if err := ru.Apply(cmd, senv...); err != nil {
			return fmt.Errorf("open URL: %w", err)
		}
	}
	var errb capBuf
	cmd.Stdout, cmd.Stderr = nil, &errb
	// Its own session, so the browser outlives nothing of the agent's.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open URL: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("open URL as %s: %v: %s", ru.Name, err, strings.TrimSpace(errb.String()))
		}
	case <-time.After(5 * time.Second):
		go func() { <-done }() // the browser runs on; reap it when it ends
	}
	return nil
}
