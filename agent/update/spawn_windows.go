package update

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
)

const (
	detachedProcess        = 0x00000008
	createNewProcessGroup  = 0x00000200
	createBreakawayFromJob = 0x01000000
)

// Detach starts exe with args so that it outlives this process: the SCM
// does not stop a service's other processes when the service exits, and
// breaking away from any job object keeps a job's kill-on-close from
// taking the watchdog along.
func Detach(exe string, args []string) error {
	cmd := exec.Command(exe, args...)
	cmd.Dir = filepath.Dir(exe)
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: detachedProcess | createNewProcessGroup | createBreakawayFromJob, HideWindow: true}
	if err := cmd.Start(); err != nil {
		// Not every job allows breaking away.
		cmd = exec.Command(exe, args...)
		cmd.Dir = filepath.Dir(exe)
		cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: detachedProcess | createNewProcessGroup, HideWindow: true}
		if err := cmd.Start(); err != nil {
			return err
		}
	}
	return cmd.Process.Release()
}

var _ = os.Getpid
