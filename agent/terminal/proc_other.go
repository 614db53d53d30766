//go:build !linux && !windows

package terminal

import (
	"syscall"
)

// killSession kills the session's process group; there is no portable way
// to enumerate other groups of the session outside Linux.
func killSession(sid int) {
	if sid > 1 {
		_ = syscall.Kill(-sid, syscall.SIGKILL)
	}
}
