package shells

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// powerShell prefers Windows PowerShell where Windows installs it (not
// whatever powershell.exe comes first on PATH, which a user can plant),
// then PowerShell 7's pwsh.exe from PATH.
func powerShell() (string, error) {
	root := os.Getenv("SystemRoot")
	if root == "" {
		root = `C:\Windows`
	}
	p := filepath.Join(root, "System32", "WindowsPowerShell", "v1.0", "powershell.exe")
	if _, err := os.Stat(p); err != nil {
		pwsh, lerr := exec.LookPath("pwsh.exe")
		if lerr != nil {
			return "", fmt.Errorf("%w: no %s and no pwsh.exe on PATH", ErrNoPowerShell, p)
		}
		p = pwsh
	}
	if err := checkNotWineStub(p); err != nil {
		return "", err
	}
	return p, nil
}
