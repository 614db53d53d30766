//go:build !windows

package script

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// systemdShowProps are the unit properties the details need.
var systemdShowProps = []string{"Id", "Description", "LoadState", "ActiveState", "SubState", "MainPID",
	"UnitFileState", "User", "Restart", "RestartUSec", "FragmentPath"}

// systemdStartTypes maps UnitFileState to the Windows-style names the
// dialog shows for the C agent too; other states are shown as they are.
var systemdStartTypes = map[string]string{"enabled": "AUTO_START", "enabled-runtime": "AUTO_START",
	"disabled": "DEMAND_START", "masked": "DISABLED", "masked-runtime": "DISABLED"}

func serviceDetails(name string) (*serviceDetail, error) {
	if err := validServiceName(name); err != nil {
		return nil, err
	}
	if runtime.GOOS == "darwin" {
		l, err := listServices()
		if err != nil {
			return nil, err
		}
		for _, s := range l {
			if s.Name == name {
				return &serviceDetail{Name: s.Name, DisplayName: s.DisplayName, Status: s.Status}, nil
			}
		}
		return nil, fmt.Errorf("service %s not found", name)
	}
	if firstTool("systemctl") == "" {
		return nil, errors.New("no service manager available (systemd or launchd)")
	}
	unit := name
	if !strings.Contains(unit, ".") {
		unit += ".service"
	}
	r := runCmd("systemctl", []string{"show", "--property=" + strings.Join(systemdShowProps, ","), "--", unit}, "", 30*time.Second, "")
	if r["code"].(int64) != 0 {
		return nil, fmt.Errorf("systemctl show %s: %s", unit, strings.TrimSpace(r["stderr"].(string)))
	}
	return parseSystemdShow(name, r["stdout"].(string))
}

// parseSystemdShow turns `systemctl show` key=value lines into the
// details; mtime of the unit file stands in for the install date.
func parseSystemdShow(name, out string) (*serviceDetail, error) {
	p := map[string]string{}
	for _, ln := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimRight(ln, "\r"), "="); ok {
			p[k] = v
		}
	}
	if p["LoadState"] == "not-found" || p["LoadState"] == "" {
		return nil, fmt.Errorf("service %s not found", name)
	}
	state := "STOPPED"
	if p["SubState"] == "running" {
		state = "RUNNING"
	} else if p["ActiveState"] == "activating" {
		state = "START_PENDING"
	} else if p["ActiveState"] == "deactivating" {
		state = "STOP_PENDING"
	}
	d := &serviceDetail{Name: name, DisplayName: p["Description"],
		Status: map[string]any{"state": state, "active": p["ActiveState"], "sub": p["SubState"]}}
	if pid, err := strconv.Atoi(p["MainPID"]); err == nil && pid > 0 {
		d.Status["pid"] = pid
	}
	d.StartType = p["UnitFileState"]
	if t, ok := systemdStartTypes[d.StartType]; ok {
		d.StartType = t
	}
	d.User = p["User"]
	if d.User == "" {
		d.User = "root" // system units run as root unless User= says otherwise
	}
	if rs := p["Restart"]; rs != "" && rs != "no" {
		delay := parseSystemdUSec(p["RestartUSec"]).Milliseconds()
		op := failureOp{Type: "SERVICE_RESTART (" + rs + ")", Delay: delay}
		d.FailureActions = &failureAct{Actions: []failureOp{op, op, op}}
	}
	if fp := p["FragmentPath"]; fp != "" {
		if fi, err := os.Stat(fp); err == nil {
			d.InstalledDate = fi.ModTime().UTC().Format(time.RFC3339)
		}
	}
	return d, nil
}

// parseSystemdUSec reads systemd time spans as `show` prints them
// ("100ms", "1min 30s", "5s", "0"); unknown forms give 0.
func parseSystemdUSec(s string) time.Duration {
	var total time.Duration
	for _, f := range strings.Fields(s) {
		f = strings.Replace(f, "min", "m", 1)
		if d, err := time.ParseDuration(f); err == nil {
			total += d
		}
	}
	return total
}

// restartSelf queues a restart of the agent's own service and returns
// before it happens (systemctl --no-block; launchctl kickstart -k).
func restartSelf(name string) error {
	var r map[string]any
	switch {
	case runtime.GOOS == "darwin":
		r = runCmd("launchctl", []string{"kickstart", "-k", "system/" + name}, "", 30*time.Second, "")
	case firstTool("systemctl") != "":
		r = runCmd("systemctl", []string{"--no-block", "restart", "--", name}, "", 30*time.Second, "")
	default:
		return errors.New("no service manager available (systemd or launchd)")
	}
	if r["code"].(int64) != 0 {
		return fmt.Errorf("restart %s: %s", name, strings.TrimSpace(r["stderr"].(string)))
	}
	return nil
}
