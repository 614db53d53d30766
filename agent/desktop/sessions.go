package desktop

// Session is a graphical login session the agent could show: who it is
// for, whether it is Wayland or X11, which compositor family runs it and
// where its display, runtime dir and session bus are. A root service has
// none of this in its own environment; Sessions finds it.
type Session struct {
	ID      string // logind session id; "" when found from processes
	Type    string // "wayland" or "x11"
	Desktop string // "gnome", "wlroots", "kde", "x11", or "" when unknown
	UID     int
	User    string
	Active  bool // logind: the active session of its seat
	Remote  bool
	Class   string // logind: "user" or "greeter"
	Seat    string
	// Display is the X display (x11 sessions, and Xwayland is not one).
	Display string
	// WaylandSocket is the compositor's socket path (wayland sessions).
	WaylandSocket string
	RuntimeDir    string // XDG_RUNTIME_DIR
	Bus           string // DBUS_SESSION_BUS_ADDRESS
	Source        string // "logind" or "process"
}
