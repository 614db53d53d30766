//go:build !windows

package osuser

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// SessionEnvKeys are the variables SessionEnv copies from a user's desktop
// session: where the display is, and where the user's choice of browser
// and desktop settings are kept (xdg-open reads mimeapps.list and .desktop files
// from the XDG directories, then BROWSER).
var SessionEnvKeys = []string{"DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS",
	"XDG_RUNTIME_DIR", "XDG_CURRENT_DESKTOP", "XDG_SESSION_TYPE", "DESKTOP_SESSION",
	"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_DATA_DIRS", "BROWSER", "GSETTINGS_BACKEND"}

// SessionEnv returns the desktop-session environment of u (KEY=value
// pairs of SessionEnvKeys): that of one of u's processes that has DISPLAY
// or WAYLAND_DISPLAY in its environment. It is how everything that must
// reach the console user's screen (open URL, consent prompts,
// notifications) finds it, so all of them pick the same display for the
// same user. On macOS there is no such environment: it fails there.
// Reading another user's /proc/PID/environ needs root, as switching to the
// user does.
func SessionEnv(u *User) ([]string, error) {
	return sessionEnvIn("/proc", u.uid)
}

func sessionEnvIn(procRoot string, uid uint32) ([]string, error) {
	dirs, _ := filepath.Glob(filepath.Join(procRoot, "[0-9]*"))
	for _, d := range dirs {
		var st syscall.Stat_t
		if syscall.Stat(d, &st) != nil || st.Uid != uid {
			continue
		}
		b, err := os.ReadFile(filepath.Join(d, "environ"))
		if err != nil {
			continue
		}
		vars := map[string]string{}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if k, v, ok := strings.Cut(string(kv), "="); ok {
				vars[k] = v
			}
		}
		if vars["DISPLAY"] == "" && vars["WAYLAND_DISPLAY"] == "" {
			continue
		}
		var env []string
		for _, k := range SessionEnvKeys {
			if v, ok := vars[k]; ok {
				env = append(env, k+"="+v)
			}
		}
		return env, nil
	}
	return nil, fmt.Errorf("no desktop session of uid %s found (no process of it has DISPLAY or WAYLAND_DISPLAY)", strconv.FormatUint(uint64(uid), 10))
}
