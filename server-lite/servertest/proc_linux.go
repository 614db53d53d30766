package servertest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup gives the agent its own process group, killed with the
// test binary if it dies first.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killProcessGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }
