//go:build !windows

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// startDetached starts exe with args so that it survives the agent's
// service being stopped. Under systemd, stopping a unit kills every
// process in its cgroup, a new session included, so the uninstaller runs
// as a transient unit of its own (systemd-run). Elsewhere (launchd, SysV
// init, no service manager) a new session is enough: the manager stops the
// service's process (group), not a process in another session. Its output
// goes to logPath. It returns how it was started.
func startDetached(exe string, args []string, service, logPath string) (string, error) {
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		if run, err := exec.LookPath("systemd-run"); err == nil {
			unit := fmt.Sprintf("%s-uninstall-%d", strings.ReplaceAll(service, " ", "_"), time.Now().UnixNano())
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, run, append([]string{"--quiet", "--collect", "--unit=" + unit, "--", exe}, args...)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return "", fmt.Errorf("systemd-run: %w: %s", err, strings.TrimSpace(string(out)))
			}
			return "systemd-run --unit=" + unit, nil
		}
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reaped if the agent outlives it
	return fmt.Sprintf("new session, pid %d, log %s", pid, logPath), nil
}
