package reconnect

import (
	"errors"
	"syscall"
)

// wsaeconnrefused is Winsock's WSAECONNREFUSED, which connectex returns
// (syscall.ECONNREFUSED is an invented Errno on Windows that the net
// package never returns).
const wsaeconnrefused = syscall.Errno(10061)

// connRefused reports whether err is a TCP connection refused outright
// (nothing listening at the address), not a timeout, reset or HTTP refusal.
func connRefused(err error) bool {
	return errors.Is(err, wsaeconnrefused) || errors.Is(err, syscall.ECONNREFUSED)
}
