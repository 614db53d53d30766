//go:build !linux

package desktop

import (
	"context"
	"errors"
	"fmt"
)

// ReadClipboard returns the desktop's clipboard text. Only X11 is wired up.
func ReadClipboard(ctx context.Context, opts Options) (string, error) {
	return "", fmt.Errorf("clipboard: %w", errors.ErrUnsupported)
}

// WriteClipboard sets the desktop's clipboard text. Only X11 is wired up.
func WriteClipboard(ctx context.Context, opts Options, text string) error {
	return fmt.Errorf("clipboard: %w", errors.ErrUnsupported)
}
