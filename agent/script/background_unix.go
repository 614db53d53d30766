//go:build !windows

package script

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"github.com/meshgo/meshagent/agent/osuser"
)

const backgroundKey = "org.gnome.desktop.background"

// toggleBackground serves the desktop toolbar's background button as the
// C agent does on Linux: the console user's GNOME background
// (gsettings picture-uri, run as that user in their desktop session) is
// removed and kept, or put back when it was removed. It returns the
// reply's data: "" when removed, the picture when restored.
func toggleBackground(detect func() (string, error)) (string, error) {
	if runtime.GOOS != "linux" {
		return "", fmt.Errorf("desktop background: %w", errors.ErrUnsupported)
	}
	name, err := detect()
	if err != nil {
		return "", fmt.Errorf("desktop background: %w", err)
	}
	if name == "" {
		return "", fmt.Errorf("desktop background: %w", errNoConsoleUser)
	}
	ru, err := lookupRunUser(name)
	if err != nil {
		return "", fmt.Errorf("desktop background: %w", err)
	}
	env, err := osuser.SessionEnv(ru)
	if err != nil {
		return "", fmt.Errorf("desktop background: %w", err)
	}
	tool := firstTool("gsettings")
	if tool == "" {
		return "", errors.New("desktop background: gsettings is not installed")
	}
	run := func(args ...string) (string, error) {
		cmd := exec.Command(tool, args...)
		if err := ru.Apply(cmd, env...); err != nil {
			return "", err
		}
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("gsettings %s: %w: %s", args[0], err, strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fmt.Errorf("gsettings %s: %w", args[0], err)
		}
		return string(out), nil
	}
	out, err := run("get", backgroundKey, "picture-uri")
	if err != nil {
		return "", fmt.Errorf("desktop background: %w", err)
	}
	cur := gsettingsValue(out)
	savedBackground.Lock()
	defer savedBackground.Unlock()
	if !backgroundRemoved(cur) {
		if _, err := run("set", backgroundKey, "picture-uri", ""); err != nil {
			return "", fmt.Errorf("desktop background: %w", err)
		}
		savedBackground.uri = cur
		return "", nil
	}
	if savedBackground.uri == "" {
		return "", errors.New("desktop background: none was removed to put back")
	}
	if _, err := run("set", backgroundKey, "picture-uri", savedBackground.uri); err != nil {
		return "", fmt.Errorf("desktop background: %w", err)
	}
	return savedBackground.uri, nil
}
