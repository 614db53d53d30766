package desktop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshgo/meshagent/agent/mutter"
	"github.com/meshgo/meshagent/agent/portal"
)

// portalGrantWait bounds how long a session waits for the user to answer
// the portal's dialog.
const portalGrantWait = 2 * time.Minute

// portalDeclineQuiet is how long a user's "no" is respected before the
// portal is asked again (discovery retries every few seconds; each retry
// would otherwise put the dialog back on the user's screen).
const portalDeclineQuiet = 5 * time.Minute

var (
	declinedMu sync.Mutex
	declined   = map[int]time.Time{}
)

// portalTargets are the Wayland compositors the portal route is for:
// those without a route of their own (KDE Plasma's kwin_wayland), or all
// with opts.Portal.
func portalTargets(opts Options) []compositorProc {
	var out []compositorProc
	for _, p := range scanCompositors(opts) {
		if !opts.Portal && (p.family == "gnome" || p.family == "wlroots") {
			continue
		}
		out = append(out, p)
	}
	return out
}

// openPortal starts a portal session on the first compositor whose
// user's portal grants one.
func openPortal(opts Options, log *slog.Logger) (screen, string, error) {
	var errs []error
	for _, t := range portalTargets(opts) {
		s, err := newPortalScreen(t, opts, log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		name := fmt.Sprintf("portal:%d", t.pid)
		log.Info("desktop: using the xdg-desktop-portal remote desktop", "pid", t.pid, "uid", t.uid,
			"width", s.w, "height", s.h)
		return s, name, nil
	}
	if len(errs) == 0 {
		return nil, "", errNoDisplay
	}
	return nil, "", fmt.Errorf("%w: %w", errNoDisplay, errors.Join(errs...))
}

// newPortalScreen asks t's user's portal for a remote desktop session
// (view only when the portal offers no input), with the user's stored
// restore token, and keeps the token the portal hands back. Whether the
// user must answer a dialog is logged and told to the viewer.
func newPortalScreen(t compositorProc, opts Options, log *slog.Logger) (*gnomeScreen, error) {
	declinedMu.Lock()
	when, no := declined[t.uid]
	declinedMu.Unlock()
	if no && time.Since(when) < portalDeclineQuiet {
		return nil, fmt.Errorf("portal: uid %d declined remote control %s ago; not asking again before %s", t.uid,
			time.Since(when).Round(time.Second), portalDeclineQuiet)
	}
	bus := t.bus
	if bus == "" {
		bus = "unix:path=" + filepath.Join(t.runtime, "bus")
	}
	c, err := portal.DialAs(bus, t.uid, t.gid)
	if err != nil {
		return nil, fmt.Errorf("portal: session bus of uid %d: %w", t.uid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), portalGrantWait)
	defer cancel()
	v, err := portal.Probe(ctx, c)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("portal: uid %d: %w", t.uid, err)
	}
	devices := portal.DeviceKeyboard | portal.DevicePointer
	kind, persist := "remote-desktop", v.CanPersistInput()
	if v.RemoteDesktop == 0 || v.Devices&devices != devices {
		log.Warn("desktop: the portal offers no keyboard and pointer (RemoteDesktop): the session is view only",
			"uid", t.uid, "remote_desktop_version", v.RemoteDesktop, "devices", v.Devices)
		devices, kind, persist = 0, "screencast", v.CanPersistView()
	}
	tokens := portal.Tokens{Dir: opts.StateDir}
	tok, err := tokens.Load(t.uid, kind)
	if err != nil {
		log.Warn("desktop: portal restore token unreadable; asking the user again", "uid", t.uid, "err", err)
	}
	var ask string
	switch {
	case !persist:
		ask = fmt.Sprintf("This desktop's portal (RemoteDesktop version %d, ScreenCast version %d) cannot keep a grant: "+
			"the user at the screen must allow every remote session in its dialog", v.RemoteDesktop, v.ScreenCast)
	case opts.StateDir == "":
		ask = "No state directory to keep the portal's grant in: the user at the screen must allow every remote session in its dialog"
	case tok == "":
		ask = "First remote session for this user: the user at the screen must allow it once in the portal's dialog; later sessions start without asking"
	default:
		log.Info("desktop: portal restore token found: the session should start without a dialog", "uid", t.uid, "kind", kind)
	}
	start := time.Now()
	sess, err := portal.Start(ctx, c, v, portal.Options{Devices: devices, RestoreToken: tok, Persist: persist,
		CursorMode: portal.CursorHidden, // as the Mutter route: the viewer draws its own pointer
		OnPending: func() {
			if ask == "" {
				return
			}
			log.Warn("desktop: waiting for the user's grant in the portal's dialog", "uid", t.uid, "why", ask, "wait", portalGrantWait)
			if opts.notice != nil {
				opts.notice("Waiting for the user to allow remote control: " + ask)
			}
		}})
	if tok != "" {
		// The portal uses a token up whether or not the session starts.
		if err := tokens.Save(t.uid, kind, ""); err != nil {
			log.Warn("desktop: portal restore token not removed", "err", err)
		}
	}
	if err != nil {
		c.Close()
		if errors.Is(err, portal.ErrCancelled) {
			declinedMu.Lock()
			declined[t.uid] = time.Now()
			declinedMu.Unlock()
			log.Warn("desktop: the user declined remote control in the portal's dialog", "uid", t.uid)
		}
		return nil, fmt.Errorf("portal: uid %d: %w", t.uid, err)
	}
	log.Info("desktop: portal session granted", "uid", t.uid, "devices", sess.Devices, "restore_token_used", tok != "",
		"waited", time.Since(start).Round(time.Millisecond), "kept_for_later", sess.RestoreToken != "")
	if sess.RestoreToken != "" {
		if err := tokens.Save(t.uid, kind, sess.RestoreToken); err != nil {
			log.Warn("desktop: portal grant not kept: the next session asks the user again", "err", err)
		}
	}
	// One monitor: the first stream (the portal's dialog may grant more;
	// input coordinates refer to the first), at the stage's origin, its
	// size the stream's when the portal gives none. Each watch opens its
	// own PipeWire connection: the portal's fd sees only this session's
	// streams.
	st := sess.Streams[0]
	mon := &gnomeMon{idx: 0, w: st.W, h: st.H, primary: true}
	if st.W <= 0 || st.H <= 0 {
		mon.w, mon.h = 0, 0
	}
	cred, env := userCred(t.uid, t.gid), userEnv(t.runtime)
	frames := func(idx int) (*mutter.Frames, error) {
		fd, err := sess.OpenPipeWireRemote()
		if err != nil {
			return nil, err
		}
		defer fd.Close()
		return mutter.StartFramesRemote(sess.Streams[idx].Node, fd, cred, env)
	}
	log.Info("desktop: portal streams", "uid", t.uid, "streams", len(sess.Streams), "pipewire_node", st.Node)
	return newPipeWireScreen(log, "portal", c, sess, []*gnomeMon{mon}, frames)
}
