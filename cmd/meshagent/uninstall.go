package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// uninstallSelf returns the script host's Uninstall: MeshCentral's
// `uninstallagent` (and the console command) remove the agent's own
// service as `meshagent -uninstall` does (service and binary; the settings
// and identity stay, as with the C agent's uninstallService). Stopping
// the service stops this process, so the uninstaller runs in a process the
// service manager does not stop with it (startDetached, per platform).
func uninstallSelf(log *slog.Logger) func() error {
	return func() error {
		name := runningAsService
		if name == "" {
			return errors.New("this instance is not the service instance")
		}
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("uninstall: locate the executable: %w", err)
		}
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		args := []string{"-uninstall", "--meshServiceName=" + name}
		logPath := filepath.Join(os.TempDir(), fmt.Sprintf("meshagent-uninstall-%d.log", time.Now().Unix()))
		how, err := startDetached(exe, args, name, logPath)
		if err != nil {
			return fmt.Errorf("uninstall: %w", err)
		}
		log.Warn("uninstalling the agent service at the server's request", "service", name, "how", how)
		return nil
	}
}
