package sessionworker

import (
	"os/exec"
	"syscall"
)

// hideWindow keeps a console command from flashing a window on the
// user's desktop.
func hideWindow(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: 0x08000000} // CREATE_NO_WINDOW
}
