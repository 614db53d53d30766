//go:build !linux

package cli

import (
	"errors"
	"os"
)

// Raw mode and window sizes are implemented for Linux only; elsewhere the
// shell runs in line mode, as with a non-terminal stdin.

func isTTY(*os.File) bool { return false }

func makeRaw(*os.File) (func(), error) {
	return nil, errors.New("raw terminal mode not supported here")
}

func termSize(*os.File) (int, int, bool) { return 0, 0, false }

func notifyResize() (<-chan os.Signal, func()) { return nil, func() {} }
