package desktop

import (
	"os"
	"path/filepath"
	"runtime"
)

// Available reports whether this machine has a desktop to serve, for the
// capabilities the agent announces (MeshCentral's web UI shows the Desktop
// tab only then): on Linux an X server socket or a DISPLAY (Serve then
// finds the display and its cookie), or a Wayland compositor socket
// (WAYLAND_DISPLAY, or wayland-N in a user's /run/user directory: Serve
// then checks it is wlroots-based), elsewhere always.
func Available() bool {
	if runtime.GOOS != "linux" {
		return true
	}
	if os.Getenv("DISPLAY") != "" {
		return true
	}
	if os.Getenv("WAYLAND_DISPLAY") != "" {
		return true
	}
	sockets, _ := filepath.Glob("/tmp/.X11-unix/X*")
	if len(sockets) > 0 {
		return true
	}
	wl, _ := filepath.Glob("/run/user/*/wayland-[0-9]*")
	for _, p := range wl {
		if filepath.Ext(p) != ".lock" {
			return true
		}
	}
	return false
}
