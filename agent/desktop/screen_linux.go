package desktop

import (
	"errors"
	"log/slog"
	"os"
)

// openScreen prefers X (Xorg, Xvfb, a user's X session) and tries a
// Wayland compositor when no X display works. A process told only of a
// Wayland display (Options.WaylandDisplay without Options.Display, or
// WAYLAND_DISPLAY without DISPLAY in its environment) is in a Wayland
// session: Wayland comes first then, so an unrelated X server elsewhere on
// the machine is not shown instead.
func openScreen(opts Options, log *slog.Logger) (screen, string, error) {
	if waylandFirst(opts) {
		if s, name, err := openWayland(opts, log); err == nil {
			return s, name, nil
		} else if s, name, xerr := openX(opts, log); xerr == nil {
			return s, name, nil
		} else {
			return nil, "", errors.Join(err, xerr)
		}
	}
	s, name, err := openX(opts, log)
	if err == nil {
		return s, name, nil
	}
	ws, wname, werr := openWayland(opts, log)
	if werr == nil {
		return ws, wname, nil
	}
	if errors.Is(werr, errNoDisplay) && len(discoverWayland(opts)) == 0 {
		return nil, "", err
	}
	return nil, "", errors.Join(err, werr)
}

func waylandFirst(opts Options) bool {
	if opts.WaylandDisplay != "" && opts.Display == "" {
		return true
	}
	return opts.Display == "" && os.Getenv("WAYLAND_DISPLAY") != "" && os.Getenv("DISPLAY") == ""
}
