package main

import (
	"log/slog"
	"runtime"

	"github.com/meshgo/meshagent/agent/desktop"
	"github.com/meshgo/meshagent/agent/script"
)

// nativeClipboard is the clipboard the script API (getclip/setclip) uses:
// on Linux the desktop's X11 clipboard, which discovers the display the
// way desktop sessions do and so works as a service with no DISPLAY;
// elsewhere nil, leaving the script host's platform tools.
func nativeClipboard(log *slog.Logger) script.Clipboard {
	if runtime.GOOS != "linux" {
		return nil
	}
	return desktop.Clipboard{Options: desktop.Options{Logger: log}}
}
