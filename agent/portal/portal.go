package portal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/godbus/dbus/v5"
)

const (
	busName   = "org.freedesktop.portal.Desktop"
	objPath   = dbus.ObjectPath("/org/freedesktop/portal/desktop")
	ifRD      = "org.freedesktop.portal.RemoteDesktop"
	ifSC      = "org.freedesktop.portal.ScreenCast"
	ifRequest = "org.freedesktop.portal.Request"
	ifSession = "org.freedesktop.portal.Session"
)

// Device types of SelectDevices and of Start's "devices" result.
const (
	DeviceKeyboard    uint32 = 1
	DevicePointer     uint32 = 2
	DeviceTouchscreen uint32 = 4
)

// Source types of SelectSources.
const (
	SourceMonitor uint32 = 1
	SourceWindow  uint32 = 2
)

// Cursor modes of SelectSources.
const (
	CursorHidden   uint32 = 1
	CursorEmbedded uint32 = 2
	CursorMetadata uint32 = 4
)

// persistUntilRevoked is persist_mode 2: the grant lasts until the user
// revokes it, across restarts of the portal and of the agent.
const persistUntilRevoked uint32 = 2

// ErrCancelled is returned when the user (or the backend for them)
// declined the request: response code 1.
var ErrCancelled = errors.New("portal: the request was cancelled (the user declined)")

// Versions are the interface versions the portal reports.
type Versions struct {
	RemoteDesktop uint32 // 0: the interface is missing
	ScreenCast    uint32
	// Devices and Sources are the backend's available device and source
	// type masks.
	Devices, Sources uint32
}

// Probe reads the portal's RemoteDesktop and ScreenCast versions and what
// their backend offers; an error means no portal answers on the bus.
func Probe(ctx context.Context, c *dbus.Conn) (Versions, error) {
	var v Versions
	o := c.Object(busName, objPath)
	get := func(iface, prop string) (uint32, error) {
		var x dbus.Variant
		if err := o.CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, iface, prop).Store(&x); err != nil {
			return 0, err
		}
		n, _ := x.Value().(uint32)
		return n, nil
	}
	var err error
	if v.ScreenCast, err = get(ifSC, "version"); err != nil {
		return v, fmt.Errorf("portal ScreenCast version: %w", err)
	}
	v.Sources, _ = get(ifSC, "AvailableSourceTypes")
	if n, err := get(ifRD, "version"); err == nil {
		v.RemoteDesktop = n
		v.Devices, _ = get(ifRD, "AvailableDeviceTypes")
	}
	return v, nil
}

// CanPersistInput reports whether a session with input can be granted once
// for later sessions: RemoteDesktop version 2 takes persist_mode.
func (v Versions) CanPersistInput() bool { return v.RemoteDesktop >= 2 }

// CanPersistView reports whether a ScreenCast-only session can persist.
func (v Versions) CanPersistView() bool { return v.ScreenCast >= 4 }

// Options say what session to ask for.
type Options struct {
	// Devices is the input to ask for (DeviceKeyboard|DevicePointer); 0
	// asks for a ScreenCast-only session (view only).
	Devices uint32
	// RestoreToken is the token a previous session's Start returned; ""
	// for none. The portal takes it out of its store on use and Start
	// hands back the token to keep (1.16 returns the same one for a
	// persistent grant; keep whatever comes back).
	RestoreToken string
	// Persist asks for a grant that lasts until revoked (persist_mode 2),
	// where the portal's version allows it for this kind of session.
	Persist bool
	// CursorMode is one of the Cursor* values; 0 leaves the portal's
	// default.
	CursorMode uint32
	// OnPending, when set, is called once the portal has been asked to
	// start the session (the moment a dialog may be on the user's screen).
	OnPending func()
}

// Stream is one PipeWire stream of a started session.
type Stream struct {
	Node       uint32
	X, Y, W, H int
	SourceType uint32
}

// Session is a started portal session.
type Session struct {
	c      *dbus.Conn
	handle dbus.ObjectPath
	// Streams are the granted PipeWire streams, the first being the one
	// input coordinates refer to.
	Streams []Stream
	// Devices is the input the user granted (0 for a view-only session).
	Devices uint32
	// RestoreToken is the token for the next session, "" when the portal
	// gave none (persistence not asked for or not available).
	RestoreToken string
	// Persisted says persist_mode was sent: whether the grant was asked to
	// last.
	Persisted bool

	closed    chan struct{}
	closeOnce sync.Once
	sig       chan *dbus.Signal
}

// senderPath is the unique name as the portal's request and session
// paths spell it: ":1.42" becomes "1_42".
func senderPath(c *dbus.Conn) string {
	return strings.ReplaceAll(strings.TrimPrefix(c.Names()[0], ":"), ".", "_")
}

func newToken() string {
	var b [8]byte
	rand.Read(b[:])
	return "meshagent_" + hex.EncodeToString(b[:])
}

// request calls a portal method that answers through a Request object's
// Response signal and returns the results. The signal is subscribed to on
// the request's predictable path before the call, so a fast answer is not
// missed.
func request(ctx context.Context, c *dbus.Conn, method string, args ...any) (map[string]dbus.Variant, error) {
	tok := newToken()
	path := dbus.ObjectPath("/org/freedesktop/portal/desktop/request/" + senderPath(c) + "/" + tok)
	opts := args[len(args)-1].(map[string]dbus.Variant)
	opts["handle_token"] = dbus.MakeVariant(tok)
	ch := make(chan *dbus.Signal, 4)
	c.Signal(ch)
	defer c.RemoveSignal(ch)
	match := []dbus.MatchOption{dbus.WithMatchObjectPath(path), dbus.WithMatchInterface(ifRequest), dbus.WithMatchMember("Response")}
	if err := c.AddMatchSignalContext(ctx, match...); err != nil {
		return nil, fmt.Errorf("portal %s: match Response: %w", method, err)
	}
	defer c.RemoveMatchSignal(match...)
	var got dbus.ObjectPath
	if err := c.Object(busName, objPath).CallWithContext(ctx, method, 0, args...).Store(&got); err != nil {
		return nil, fmt.Errorf("portal %s: %w", method, err)
	}
	if got != path {
		// An old portal may pick its own path: listen there too.
		m2 := []dbus.MatchOption{dbus.WithMatchObjectPath(got), dbus.WithMatchInterface(ifRequest), dbus.WithMatchMember("Response")}
		if err := c.AddMatchSignalContext(ctx, m2...); err == nil {
			defer c.RemoveMatchSignal(m2...)
		}
	}
	for {
		select {
		case <-ctx.Done():
			c.Object(busName, got).Call(ifRequest+".Close", 0)
			return nil, fmt.Errorf("portal %s: no answer: %w", method, ctx.Err())
		case sg, ok := <-ch:
			if !ok {
				return nil, fmt.Errorf("portal %s: bus closed before the answer", method)
			}
			if (sg.Path != path && sg.Path != got) || sg.Name != ifRequest+".Response" {
				continue
			}
			code, res, err := parseResponse(sg.Body)
			if err != nil {
				return nil, fmt.Errorf("portal %s: %w", method, err)
			}
			switch code {
			case 0:
				return res, nil
			case 1:
				return nil, fmt.Errorf("portal %s: %w", method, ErrCancelled)
			default:
				return nil, fmt.Errorf("portal %s: the request failed (response %d)", method, code)
			}
		}
	}
}

// parseResponse reads a Response signal's (u a{sv}) body.
func parseResponse(body []any) (uint32, map[string]dbus.Variant, error) {
	if len(body) != 2 {
		return 0, nil, fmt.Errorf("Response with %d values, want 2", len(body))
	}
	code, ok := body[0].(uint32)
	if !ok {
		return 0, nil, fmt.Errorf("Response code is %T, want uint32", body[0])
	}
	res, ok := body[1].(map[string]dbus.Variant)
	if !ok {
		return 0, nil, fmt.Errorf("Response results are %T, want a{sv}", body[1])
	}
	return code, res, nil
}

// Start creates a session, selects input devices (when asked for) and the
// monitor sources, and starts it: the step where the portal shows its
// dialog unless a valid restore token lets it skip it. It returns when the
// user answered (or ctx ends; then the request is closed). The session
// ends when Close is called, the portal closes it, or c closes.
func Start(ctx context.Context, c *dbus.Conn, v Versions, o Options) (*Session, error) {
	s := &Session{c: c, closed: make(chan struct{}), sig: make(chan *dbus.Signal, 16)}
	iface := ifSC
	if o.Devices != 0 {
		if v.RemoteDesktop == 0 {
			return nil, errors.New("portal: no RemoteDesktop interface (input asked for)")
		}
		iface = ifRD
	}
	stok := newToken()
	res, err := request(ctx, c, iface+".CreateSession", map[string]dbus.Variant{"session_handle_token": dbus.MakeVariant(stok)})
	if err != nil {
		return nil, err
	}
	h, _ := res["session_handle"].Value().(string)
	if h == "" {
		return nil, errors.New("portal CreateSession: no session_handle in the answer")
	}
	s.handle = dbus.ObjectPath(h)
	c.Signal(s.sig)
	if err := c.AddMatchSignalContext(ctx, dbus.WithMatchObjectPath(s.handle), dbus.WithMatchInterface(ifSession), dbus.WithMatchMember("Closed")); err != nil {
		s.Close()
		return nil, fmt.Errorf("portal: match Session.Closed: %w", err)
	}
	fail := func(err error) (*Session, error) {
		s.Close()
		return nil, err
	}
	persistOpts := func(m map[string]dbus.Variant) {
		if o.Persist {
			m["persist_mode"] = dbus.MakeVariant(persistUntilRevoked)
			s.Persisted = true
		}
		if o.RestoreToken != "" {
			m["restore_token"] = dbus.MakeVariant(o.RestoreToken)
		}
	}
	if o.Devices != 0 {
		m := map[string]dbus.Variant{"types": dbus.MakeVariant(o.Devices)}
		// RemoteDesktop version 1 has no persistence, and ScreenCast
		// refuses persist_mode on a remote desktop session at any version:
		// a session with input persists through SelectDevices only.
		if v.CanPersistInput() {
			persistOpts(m)
		}
		if _, err := request(ctx, c, ifRD+".SelectDevices", s.handle, m); err != nil {
			return fail(err)
		}
	}
	m := map[string]dbus.Variant{"types": dbus.MakeVariant(SourceMonitor), "multiple": dbus.MakeVariant(false)}
	if o.CursorMode != 0 && v.ScreenCast >= 2 {
		m["cursor_mode"] = dbus.MakeVariant(o.CursorMode)
	}
	if o.Devices == 0 && v.CanPersistView() {
		persistOpts(m)
	}
	if _, err := request(ctx, c, ifSC+".SelectSources", s.handle, m); err != nil {
		return fail(err)
	}
	if o.OnPending != nil {
		o.OnPending()
	}
	res, err = request(ctx, c, iface+".Start", s.handle, "", map[string]dbus.Variant{})
	if err != nil {
		return fail(err)
	}
	if err := s.parseStart(res); err != nil {
		return fail(err)
	}
	if o.Devices != 0 && s.Devices == 0 {
		return fail(errors.New("portal Start: no input devices granted"))
	}
	go s.watch()
	return s, nil
}

// parseStart reads Start's results: streams a(ua{sv}), devices u,
// restore_token s.
func (s *Session) parseStart(res map[string]dbus.Variant) error {
	s.Devices, _ = res["devices"].Value().(uint32)
	s.RestoreToken, _ = res["restore_token"].Value().(string)
	var raw []struct {
		Node  uint32
		Props map[string]dbus.Variant
	}
	if v, ok := res["streams"]; ok {
		if err := dbus.Store([]any{v.Value()}, &raw); err != nil {
			return fmt.Errorf("portal Start: streams: %w", err)
		}
	}
	for _, r := range raw {
		st := Stream{Node: r.Node}
		st.X, st.Y = pair(r.Props["position"])
		st.W, st.H = pair(r.Props["size"])
		st.SourceType, _ = r.Props["source_type"].Value().(uint32)
		s.Streams = append(s.Streams, st)
	}
	if len(s.Streams) == 0 {
		return errors.New("portal Start: no streams granted")
	}
	return nil
}

// pair reads an (ii) struct variant.
func pair(v dbus.Variant) (int, int) {
	if t, ok := v.Value().([]any); ok && len(t) == 2 {
		a, _ := t[0].(int32)
		b, _ := t[1].(int32)
		return int(a), int(b)
	}
	return 0, 0
}

func (s *Session) watch() {
	for sg := range s.sig {
		if sg.Path == s.handle && sg.Name == ifSession+".Closed" {
			break
		}
	}
	s.closeOnce.Do(func() { close(s.closed) })
}

// Done is closed when the session ended.
func (s *Session) Done() <-chan struct{} { return s.closed }

// OpenPipeWireRemote returns an fd of a PipeWire connection that sees only
// this session's streams (what pipewiresrc's fd property takes).
func (s *Session) OpenPipeWireRemote() (*os.File, error) {
	var fd dbus.UnixFD
	if err := s.c.Object(busName, objPath).Call(ifSC+".OpenPipeWireRemote", 0, s.handle, map[string]dbus.Variant{}).Store(&fd); err != nil {
		return nil, fmt.Errorf("portal OpenPipeWireRemote: %w", err)
	}
	if fd < 0 {
		return nil, errors.New("portal OpenPipeWireRemote: no fd (the bus connection cannot pass fds)")
	}
	return os.NewFile(uintptr(fd), "pipewire-remote"), nil
}

// Close ends the session.
func (s *Session) Close() error {
	var err error
	if s.handle != "" {
		err = s.c.Object(busName, s.handle).Call(ifSession+".Close", 0).Err
	}
	s.c.RemoveSignal(s.sig)
	s.closeOnce.Do(func() { close(s.closed) })
	return err
}

func (s *Session) notify(method string, args ...any) error {
	if s.Devices == 0 {
		return errors.New("portal: view-only session (no input granted)")
	}
	a := append([]any{s.handle, map[string]dbus.Variant{}}, args...)
	if err := s.c.Object(busName, objPath).Call(ifRD+"."+method, 0, a...).Err; err != nil {
		return fmt.Errorf("portal %s: %w", method, err)
	}
	return nil
}

func state(down bool) uint32 {
	if down {
		return 1
	}
	return 0
}

// PointerMotionAbsolute moves the pointer to x, y in stream i's
// coordinates (i indexes Streams).
func (s *Session) PointerMotionAbsolute(i int, x, y float64) error {
	if i < 0 || i >= len(s.Streams) {
		return fmt.Errorf("portal: no stream %d (%d granted)", i, len(s.Streams))
	}
	return s.notify("NotifyPointerMotionAbsolute", s.Streams[i].Node, x, y)
}

// PointerButton presses or releases an evdev button (BTN_LEFT 0x110 ...).
func (s *Session) PointerButton(code int32, down bool) error {
	return s.notify("NotifyPointerButton", code, state(down))
}

// PointerAxisDiscrete scrolls steps clicks on axis 0 (vertical; positive
// is down) or 1 (horizontal).
func (s *Session) PointerAxisDiscrete(axis uint32, steps int32) error {
	return s.notify("NotifyPointerAxisDiscrete", axis, steps)
}

// KeyboardKeysym presses or releases the key for an X keysym.
func (s *Session) KeyboardKeysym(sym uint32, down bool) error {
	return s.notify("NotifyKeyboardKeysym", int32(sym), state(down))
}

// KeyboardKeycode presses or releases an evdev keycode.
func (s *Session) KeyboardKeycode(code uint32, down bool) error {
	return s.notify("NotifyKeyboardKeycode", int32(code), state(down))
}
