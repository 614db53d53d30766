package desktop

import (
	"os"
	"path/filepath"
	"runtime"
)

// Available reports whether this machine has a desktop to serve, for the
// capabilities the agent announces (MeshCentral's web UI shows the Desktop
// tab only then): on Linux an X server socket or a DISPLAY (Serve then
// finds the display and its cookie), elsewhere always.
func Available() bool {
	if runtime.GOOS != "linux" {
		return true
	}
	if os.Getenv("DISPLAY") != "" {
		return true
	}
	sockets, _ := filepath.Glob("/tmp/.X11-unix/X*")
	return len(sockets) > 0
}
