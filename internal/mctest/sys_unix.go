//go:build unix

package mctest

import (
	"syscall"
)

// signalGroup sends sig to every process of the process group pgid, which is
// the group the harness created for a child it started (Setpgid). It reports
// whether the group still existed.
func signalGroup(pgid int, sig syscall.Signal) bool {
	if pgid <= 1 {
		return false
	}
	return syscall.Kill(-pgid, sig) == nil
}

const (
	sigInt  = syscall.SIGINT
	sigTerm = syscall.SIGTERM
	sigKill = syscall.SIGKILL
)
