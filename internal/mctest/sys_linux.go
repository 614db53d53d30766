//go:build linux

package mctest

import (
	"os/exec"
	"syscall"
)

// setupProc puts the child in its own process group (so that its children
// can be ended with it) and asks the kernel to send it sig if the test binary
// dies first.
func setupProc(cmd *exec.Cmd, deathSig syscall.Signal) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
}
