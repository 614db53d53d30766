//go:build !windows

package shells

import (
	"fmt"
	"os/exec"
)

// powerShell is PowerShell 7 (pwsh) from PATH: the only PowerShell for
// Linux and macOS.
func powerShell() (string, error) {
	p, err := exec.LookPath("pwsh")
	if err != nil {
		return "", fmt.Errorf("%w: no pwsh on PATH", ErrNoPowerShell)
	}
	return p, nil
}
