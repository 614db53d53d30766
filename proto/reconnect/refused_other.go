//go:build !windows

package reconnect

import (
	"errors"
	"syscall"
)

// connRefused reports whether err is a TCP connection refused outright
// (nothing listening at the address), not a timeout, reset or HTTP refusal.
func connRefused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
