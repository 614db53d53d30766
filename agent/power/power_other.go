//go:build !linux && !windows && !darwin

package power

import (
	"fmt"
	"log/slog"
	"runtime"
)

type otherSys struct{}

type system = *otherSys

func realSystem(*slog.Logger) system { return &otherSys{} }

func do(system, Action, bool) (string, error) {
	return "", fmt.Errorf("no power manager on %s: %w", runtime.GOOS, ErrUnsupported)
}
