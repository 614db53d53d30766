//go:build !linux && !windows

package desktop

import (
	"context"
	"errors"
	"fmt"
)

// LockScreen is not done on this platform, as the C agent's lockDesktop
// does nothing on macOS.
func LockScreen(context.Context) error {
	return fmt.Errorf("locking the screen: %w", errors.ErrUnsupported)
}
