//go:build !linux && !windows

package terminal

import (
	"errors"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// killSession kills the session's process group; there is no portable way
// to enumerate other groups of the session outside Linux.
func killSession(sid int) {
	if sid > 1 {
		_ = syscall.Kill(-sid, syscall.SIGKILL)
	}
}

// consoleUser returns the owner of /dev/console, which macOS and the BSDs
// hand to the user logged in at the console.
func consoleUser() (*user.User, error) {
	st, err := os.Stat("/dev/console")
	if err != nil {
		return nil, errors.New("cannot tell who is logged in at the console")
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok || sys.Uid == 0 {
		return nil, errors.New("no user is logged in at the console")
	}
	return user.LookupId(strconv.FormatUint(uint64(sys.Uid), 10))
}
