package script

import (
	"fmt"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// prepareCmd kills the whole child tree on timeout with taskkill /T.
func prepareCmd(cmd *exec.Cmd) {
	cmd.SysProcAttr = &windows.SysProcAttr{HideWindow: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		_ = exec.Command("taskkill", "/F", "/T", "/PID", strconv.Itoa(cmd.Process.Pid)).Run()
		return cmd.Process.Kill()
	}
}

const servicesSupported = true

type service struct {
	Name        string         `json:"name"`
	DisplayName string         `json:"displayName"`
	Status      map[string]any `json:"status"`
}

var stateNames = map[svc.State]string{svc.Stopped: "STOPPED", svc.StartPending: "START_PENDING", svc.StopPending: "STOP_PENDING",
	svc.Running: "RUNNING", svc.ContinuePending: "CONTINUE_PENDING", svc.PausePending: "PAUSE_PENDING", svc.Paused: "PAUSED"}

func listServices() ([]service, error) {
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	defer m.Disconnect()
	names, err := m.ListServices()
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	out := make([]service, 0, len(names))
	for _, n := range names {
		s, err := m.OpenService(n)
		if err != nil {
			continue
		}
		e := service{Name: n, DisplayName: n, Status: map[string]any{}}
		if c, err := s.Config(); err == nil && c.DisplayName != "" {
			e.DisplayName = c.DisplayName
		}
		if st, err := s.Query(); err == nil {
			e.Status["state"] = stateNames[st.State]
			e.Status["pid"] = st.ProcessId
		}
		s.Close()
		out = append(out, e)
	}
	return out, nil
}

func controlService(name, action string) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return fmt.Errorf("open service %s: %w", name, err)
	}
	defer s.Close()
	stop := func() error {
		if _, err := s.Control(svc.Stop); err != nil {
			return err
		}
		for i := 0; i < 60; i++ {
			if st, err := s.Query(); err == nil && st.State == svc.Stopped {
				return nil
			}
			time.Sleep(500 * time.Millisecond)
		}
		return fmt.Errorf("service %s did not stop", name)
	}
	switch action {
	case "start":
		err = s.Start()
	case "stop":
		err = stop()
	case "restart":
		if err = stop(); err == nil {
			err = s.Start()
		}
	default:
		return fmt.Errorf("unknown service action %q", action)
	}
	if err != nil {
		return fmt.Errorf("service %s %s: %w", action, name, err)
	}
	return nil
}

// cpuUsage returns the process's user and system CPU time in µs.
func cpuUsage() (user, sys int64) {
	var c, e, k, u windows.Filetime
	if windows.GetProcessTimes(windows.CurrentProcess(), &c, &e, &k, &u) != nil {
		return 0, 0
	}
	ft := func(f windows.Filetime) int64 { return (int64(f.HighDateTime)<<32 | int64(f.LowDateTime)) / 10 }
	return ft(u), ft(k)
}
