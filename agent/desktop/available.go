package desktop

import (
	"os"
	"path/filepath"
	"runtime"
)

// Available reports whether this machine has a desktop to serve, for the
// capabilities the agent announces (MeshCentral's web UI shows the Desktop
// tab only then): on Linux an X server socket or a DISPLAY (Serve then
// finds the display and its cookie), or a Wayland compositor we can
// capture (WAYLAND_DISPLAY or a user's /run/user/UID/wayland-N whose
// compositor offers wlr-screencopy: GNOME and KDE do not, and their tab
// would only show a black screen), elsewhere always.
func Available() bool {
	if runtime.GOOS != "linux" {
		return true
	}
	if os.Getenv("DISPLAY") != "" {
		return true
	}
	sockets, _ := filepath.Glob("/tmp/.X11-unix/X*")
	if len(sockets) > 0 {
		return true
	}
	return waylandAvailable()
}
