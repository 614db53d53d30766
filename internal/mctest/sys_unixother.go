//go:build unix && !linux

package mctest

import (
	"os/exec"
	"syscall"
)

// setupProc puts the child in its own process group so that its children can
// be ended with it.
func setupProc(cmd *exec.Cmd, _ syscall.Signal) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}
