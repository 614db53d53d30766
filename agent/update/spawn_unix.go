//go:build !windows

package update

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Detach starts exe with args so that it outlives this process and the
// service it runs in. Under systemd (INVOCATION_ID is set in a unit's
// processes) it runs as a transient unit of its own through systemd-run:
// stopping or restarting the agent's unit kills every process in that
// unit's cgroup, a detached child included. Elsewhere (launchd, or no
// service manager) a new session keeps it out of the service's process
// group, which launchd kills when the job exits.
func Detach(exe string, args []string) error {
	if os.Getenv("INVOCATION_ID") != "" {
		if run, err := exec.LookPath("systemd-run"); err == nil {
			unit := "meshagent-update-watchdog-" + strconv.FormatInt(time.Now().Unix(), 10)
			cmd := exec.Command(run, append([]string{"--unit=" + unit, "--description=meshagent update watchdog", "--collect", "--quiet", "--", exe}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("systemd-run: %w: %s", err, out)
			}
			return nil
		}
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	cmd := exec.Command(exe, args...)
	cmd.Dir = filepath.Dir(exe)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return err
	}
	return cmd.Process.Release()
}
