package desktop

import (
	"context"
	"fmt"

	"golang.org/x/sys/windows"
)

var procLockWorkStation = windows.NewLazySystemDLL("user32.dll").NewProc("LockWorkStation")

// LockScreen locks the workstation of the agent's own session
// (LockWorkStation); a service in session 0 cannot lock the user's, which
// needs the user-session worker. Cross-compiled only.
func LockScreen(context.Context) error {
	if r, _, err := procLockWorkStation.Call(); r == 0 {
		return fmt.Errorf("LockWorkStation: %w", err)
	}
	return nil
}
