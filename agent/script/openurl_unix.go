//go:build !windows

package script

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// sessionEnvKeys are copied from the user's desktop session into the
// URL opener's environment: where the display is, and where the user's
// choice of browser is kept (xdg-open reads mimeapps.list and .desktop
// files from the XDG directories, then BROWSER).
var sessionEnvKeys = []string{"DISPLAY", "XAUTHORITY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS",
	"XDG_RUNTIME_DIR", "XDG_CURRENT_DESKTOP", "XDG_SESSION_TYPE", "DESKTOP_SESSION",
	"XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_DATA_DIRS", "BROWSER"}

// userSessionEnv finds a process of uid with a display in its environment
// (its desktop session) and returns those variables. Reading another
// user's /proc/PID/environ needs root, as switching to the user does.
func userSessionEnv(uid uint32) ([]string, error) {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
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
		for _, k := range sessionEnvKeys {
			if v, ok := vars[k]; ok {
				env = append(env, k+"="+v)
			}
		}
		return env, nil
	}
	return nil, fmt.Errorf("no desktop session of uid %d found (no process of it has DISPLAY or WAYLAND_DISPLAY)", uid)
}

// openURLAs opens raw in the desktop session of the console user that
// detect names: xdg-open as that user with the session's display on
// Linux, `launchctl asuser UID open` on macOS. It waits up to 5 s for the
// opener to fail; one still running then has handed the URL over.
func openURLAs(raw string, detect func() (string, error)) error {
	if err := checkOpenURL(raw); err != nil {
		return err
	}
	name, err := detect()
	if err != nil {
		return fmt.Errorf("open URL: %w", err)
	}
	if name == "" {
		return fmt.Errorf("open URL: %w", errNoConsoleUser)
	}
	ru, err := lookupRunUser(name)
	if err != nil {
		return fmt.Errorf("open URL: %w", err)
	}
	uid, err := strconv.ParseUint(ru.UID, 10, 32)
	if err != nil {
		return fmt.Errorf("open URL as %s: uid %q: %w", ru.Name, ru.UID, err)
	}
	var cmd *exec.Cmd
	if runtime.GOOS == "darwin" {
		cmd = exec.Command("/bin/launchctl", "asuser", ru.UID, "/usr/bin/open", raw)
	} else {
		tool := firstTool("xdg-open")
		if tool == "" {
			return fmt.Errorf("open URL: xdg-open is not installed")
		}
		senv, err := userSessionEnv(uint32(uid))
		if err != nil {
			return fmt.Errorf("open URL as %s: %w", ru.Name, err)
		}
		cmd = exec.Command(tool, raw)
		if err := ru.Apply(cmd, senv...); err != nil {
			return fmt.Errorf("open URL: %w", err)
		}
	}
	var errb capBuf
	cmd.Stdout, cmd.Stderr = nil, &errb
	// Its own session, so the browser outlives nothing of the agent's.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("open URL: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("open URL as %s: %v: %s", ru.Name, err, strings.TrimSpace(errb.String()))
		}
	case <-time.After(5 * time.Second):
		go func() { <-done }() // the browser runs on; reap it when it ends
	}
	return nil
}
