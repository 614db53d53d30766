package script

import (
	"fmt"
	"os/exec"

	"golang.org/x/sys/windows"
)

// openURLAs opens raw with the shell's URL handler in the agent's own
// session. A service runs in session 0, which no user sees, so there it
// fails rather than claim success (the user-session route is the Windows
// user-session issue's).
func openURLAs(raw string, _ func() (string, error)) error {
	if err := checkOpenURL(raw); err != nil {
		return err
	}
	var sid uint32
	if err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &sid); err == nil && sid == 0 {
		return fmt.Errorf("open URL: the agent runs in session 0 (a service), which no user sees")
	}
	if err := exec.Command("rundll32.exe", "url.dll,FileProtocolHandler", raw).Start(); err != nil {
		return fmt.Errorf("open URL: %w", err)
	}
	return nil
}
