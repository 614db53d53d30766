//go:build !linux

package osuser

import (
	"context"
	"errors"
	"fmt"
)

// LogindSessions: there is no systemd-logind off Linux.
func LogindSessions(context.Context) ([]LogindSession, error) {
	return nil, fmt.Errorf("logind sessions: %w", errors.ErrUnsupported)
}
