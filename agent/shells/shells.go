// Package shells finds the shells that runcommands and terminal sessions
// start, so both give the same clear error when one is missing: a
// PowerShell request on a machine without PowerShell must come back to
// MeshCentral as "PowerShell is not available", never as an empty result.
package shells

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
)

// ErrNoPowerShell is wrapped by PowerShell's error when no working
// PowerShell is installed.
var ErrNoPowerShell = errors.New("PowerShell is not available")

// PowerShell returns the path of the PowerShell executable to start, or
// an error wrapping ErrNoPowerShell that says why there is none.
func PowerShell() (string, error) { return powerShell() }

// wineMarkers are the texts wine writes at offset 0x40 of the files it
// puts in system32 for its own built-in programs (where a real PE file
// has its DOS stub). wine's powershell.exe is such a program, and a stub:
// it logs its arguments as a FIXME, runs nothing and exits 0, so a
// script sent to it would "succeed" with no output.
var wineMarkers = [][]byte{[]byte("Wine builtin DLL"), []byte("Wine placeholder DLL")}

// isWineBuiltin reports whether the PE file read from r is one of wine's
// built-in placeholders.
func isWineBuiltin(r io.Reader) bool {
	var head [0x60]byte
	n, _ := io.ReadFull(r, head[:])
	if n < 0x40+len("Wine builtin DLL") || head[0] != 'M' || head[1] != 'Z' {
		return false
	}
	for _, m := range wineMarkers {
		if bytes.HasPrefix(head[0x40:n], m) {
			return true
		}
	}
	return false
}

// checkNotWineStub returns an error wrapping ErrNoPowerShell when path is
// wine's built-in powershell.exe.
func checkNotWineStub(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrNoPowerShell, err)
	}
	defer f.Close()
	if isWineBuiltin(f) {
		return fmt.Errorf("%w: %s is wine's built-in stub, which runs no command", ErrNoPowerShell, path)
	}
	return nil
}
