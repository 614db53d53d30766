package desktop

import (
	"errors"
	"log/slog"
)

// openScreen prefers X (Xorg, Xvfb, a user's X session); when no X display
// works it tries a Wayland compositor.
func openScreen(opts Options, log *slog.Logger) (screen, string, error) {
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
