package script

import (
	"errors"
	"fmt"
)

// toggleBackground is not done on Windows yet: the wallpaper belongs to
// the user's session (the user-session worker's job).
func toggleBackground(func() (string, error)) (string, error) {
	return "", fmt.Errorf("desktop background: %w", errors.ErrUnsupported)
}
