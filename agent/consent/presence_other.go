//go:build !linux

package consent

import (
	"errors"
	"fmt"
)

// lockedUsers is not known outside Linux yet.
func lockedUsers() ([]string, error) {
	return nil, fmt.Errorf("locked sessions: %w", errors.ErrUnsupported)
}
