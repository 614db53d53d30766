package script

import (
	"fmt"
	"os/exec"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc/mgr"
)

var winStartTypes = map[uint32]string{windows.SERVICE_BOOT_START: "BOOT_START", windows.SERVICE_SYSTEM_START: "SYSTEM_START",
	windows.SERVICE_AUTO_START: "AUTO_START", windows.SERVICE_DEMAND_START: "DEMAND_START", windows.SERVICE_DISABLED: "DISABLED"}

var winRecovery = map[int]string{mgr.NoAction: "NONE", mgr.ServiceRestart: "SERVICE_RESTART", mgr.ComputerReboot: "REBOOT", mgr.RunCommand: "RUN_COMMAND"}

func serviceDetails(name string) (*serviceDetail, error) {
	if err := validServiceName(name); err != nil {
		return nil, err
	}
	m, err := mgr.Connect()
	if err != nil {
		return nil, fmt.Errorf("service manager: %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(name)
	if err != nil {
		return nil, fmt.Errorf("open service %s: %w", name, err)
	}
	defer s.Close()
	d := &serviceDetail{Name: name, Status: map[string]any{}}
	if c, err := s.Config(); err == nil {
		d.DisplayName = c.DisplayName
		d.StartType = winStartTypes[c.StartType]
		if c.StartType == windows.SERVICE_AUTO_START && c.DelayedAutoStart {
			d.StartType = "AUTO_START (DELAYED)"
		}
		d.User = c.ServiceStartName
		d.Status["isOwnProcess"] = c.ServiceType&windows.SERVICE_WIN32_OWN_PROCESS != 0
		d.Status["isSharedProcess"] = c.ServiceType&windows.SERVICE_WIN32_SHARE_PROCESS != 0
		d.Status["isKernelDriver"] = c.ServiceType&windows.SERVICE_KERNEL_DRIVER != 0
		d.Status["isFileSystemDriver"] = c.ServiceType&windows.SERVICE_FILE_SYSTEM_DRIVER != 0
		d.Status["isInteractive"] = c.ServiceType&windows.SERVICE_INTERACTIVE_PROCESS != 0
	}
	if st, err := s.Query(); err == nil {
		d.Status["state"] = stateNames[st.State]
		d.Status["pid"] = st.ProcessId
	}
	if acts, err := s.RecoveryActions(); err == nil && len(acts) > 0 {
		fa := &failureAct{}
		if rp, err := s.ResetPeriod(); err == nil {
			fa.ResetPeriod = uint64(rp)
		}
		for _, a := range acts {
			fa.Actions = append(fa.Actions, failureOp{Type: winRecovery[a.Type], Delay: a.Delay.Milliseconds()})
		}
		d.FailureActions = fa
	}
	return d, nil
}

// restartSelf restarts the agent's own service from a detached cmd.exe:
// the SCM stops this process on the way, so the stop and the start
// cannot both be waited for from here.
func restartSelf(name string) error {
	cmd := exec.Command("cmd.exe", "/c", fmt.Sprintf(`net stop "%s" & net start "%s"`, name, name))
	cmd.SysProcAttr = &windows.SysProcAttr{HideWindow: true, CreationFlags: windows.DETACHED_PROCESS | windows.CREATE_NEW_PROCESS_GROUP}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("restart %s: %w", name, err)
	}
	return cmd.Process.Release()
}
