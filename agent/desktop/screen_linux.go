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
// the machine is not shown instead. So it does for a root service told of
// neither when a user's GNOME compositor (gnome-shell, mutter) runs: that
// user's Wayland session is the desktop, not an X server found by its
// process (Xwayland is never one). Wayland means a wlroots compositor
// (screencopy) first, then GNOME (Mutter's RemoteDesktop over D-Bus).
func openScreen(opts Options, log *slog.Logger) (screen, string, error) {
	if waylandFirst(opts) {
		if s, name, err := openAnyWayland(opts, log); err == nil {
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
	ws, wname, werr := openAnyWayland(opts, log)
	if werr == nil {
		return ws, wname, nil
	}
	if errors.Is(werr, errNoDisplay) && len(discoverWayland(opts)) == 0 && len(discoverGNOME(opts)) == 0 && len(portalTargets(opts)) == 0 {
		return nil, "", err
	}
	return nil, "", errors.Join(err, werr)
}

// openAnyWayland tries wlroots compositors, then GNOME sessions, then the
// xdg-desktop-portal route for the others (KDE Plasma ...); with
// opts.Portal only the portal route.
func openAnyWayland(opts Options, log *slog.Logger) (screen, string, error) {
	if opts.Portal {
		return openPortal(opts, log)
	}
	s, name, err := openNativeWayland(opts, log)
	if err == nil {
		return s, name, nil
	}
	if len(portalTargets(opts)) == 0 {
		return nil, "", err
	}
	ps, pname, perr := openPortal(opts, log)
	if perr == nil {
		return ps, pname, nil
	}
	if errors.Is(err, errNoDisplay) && len(discoverWayland(opts)) == 0 && len(discoverGNOME(opts)) == 0 {
		return nil, "", perr
	}
	return nil, "", errors.Join(err, perr)
}

// openNativeWayland tries wlroots compositors, then GNOME sessions.
func openNativeWayland(opts Options, log *slog.Logger) (screen, string, error) {
	s, name, err := openWayland(opts, log)
	if err == nil {
		return s, name, nil
	}
	gs, gname, gerr := openGNOME(opts, log)
	if gerr == nil {
		return gs, gname, nil
	}
	if errors.Is(gerr, errNoDisplay) && len(discoverGNOME(opts)) == 0 {
		return nil, "", err
	}
	if errors.Is(err, errNoDisplay) && len(discoverWayland(opts)) == 0 {
		return nil, "", gerr
	}
	return nil, "", errors.Join(err, gerr)
}

func waylandFirst(opts Options) bool {
	if opts.WaylandDisplay != "" && opts.Display == "" {
		return true
	}
	if opts.Display != "" || os.Getenv("DISPLAY") != "" {
		return false
	}
	return os.Getenv("WAYLAND_DISPLAY") != "" || len(discoverGNOME(opts)) > 0 || len(portalTargets(opts)) > 0
}
