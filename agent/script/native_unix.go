//go:build !windows

package script

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// prepareCmd puts children in their own process group so a timeout kill
// takes the whole tree (a runcommands `sleep` under sh included).
func prepareCmd(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}

var servicesSupported = runtime.GOOS == "linux" && firstTool("systemctl") != "" || runtime.GOOS == "darwin"

type service struct {
	Name        string         `json:"name"`
	DisplayName string         `json:"displayName"`
	Status      map[string]any `json:"status"`
}

func listServices() ([]service, error) {
	switch {
	case runtime.GOOS == "darwin":
		r := runCmd("launchctl", []string{"list"}, "", 30*time.Second, "")
		var out []service
		for i, ln := range strings.Split(r["stdout"].(string), "\n") {
			f := strings.Fields(ln)
			if i == 0 || len(f) < 3 {
				continue
			}
			state := "STOPPED"
			if f[0] != "-" {
				state = "RUNNING"
			}
			out = append(out, service{Name: f[2], DisplayName: f[2], Status: map[string]any{"state": state, "pid": f[0]}})
		}
		return out, nil
	case firstTool("systemctl") != "":
		r := runCmd("systemctl", []string{"list-units", "--type=service", "--all", "--no-pager", "--plain", "--no-legend"}, "", 30*time.Second, "")
		if r["code"].(int64) != 0 {
			return nil, fmt.Errorf("systemctl: %s", strings.TrimSpace(r["stderr"].(string)))
		}
		var out []service
		for _, ln := range strings.Split(r["stdout"].(string), "\n") {
			f := strings.Fields(ln)
			if len(f) < 4 {
				continue
			}
			state := "STOPPED"
			if f[3] == "running" {
				state = "RUNNING"
			}
			out = append(out, service{Name: strings.TrimSuffix(f[0], ".service"), DisplayName: strings.Join(f[4:], " "),
				Status: map[string]any{"state": state, "active": f[2], "sub": f[3]}})
		}
		return out, nil
	}
	return nil, errors.New("no service manager available (systemd or launchd)")
}

func controlService(name, action string) error {
	switch action {
	case "start", "stop", "restart":
	default:
		return fmt.Errorf("unknown service action %q", action)
	}
	var r map[string]any
	if runtime.GOOS == "darwin" {
		verb := map[string]string{"start": "start", "stop": "stop", "restart": "kickstart"}[action]
		r = runCmd("launchctl", []string{verb, name}, "", time.Minute, "")
	} else {
		r = runCmd("systemctl", []string{action, name}, "", time.Minute, "")
	}
	if r["code"].(int64) != 0 {
		return fmt.Errorf("service %s %s: %s", action, name, strings.TrimSpace(r["stderr"].(string)))
	}
	return nil
}

// cpuUsage returns the process's user and system CPU time in µs.
func cpuUsage() (user, sys int64) {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0, 0
	}
	return ru.Utime.Nano() / 1000, ru.Stime.Nano() / 1000
}
