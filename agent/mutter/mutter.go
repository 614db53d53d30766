//go:build linux

package mutter

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"syscall"

	"github.com/godbus/dbus/v5"
)

const (
	rdName    = "org.gnome.Mutter.RemoteDesktop"
	rdPath    = "/org/gnome/Mutter/RemoteDesktop"
	rdSession = rdName + ".Session"
	scName    = "org.gnome.Mutter.ScreenCast"
	scPath    = "/org/gnome/Mutter/ScreenCast"
	scSession = scName + ".Session"
	scStream  = scName + ".Stream"
	dcName    = "org.gnome.Mutter.DisplayConfig"
	dcPath    = "/org/gnome/Mutter/DisplayConfig"
)

// Cursor modes of RecordMonitor's cursor-mode property.
const (
	CursorHidden   uint32 = 0
	CursorEmbedded uint32 = 1
	CursorMetadata uint32 = 2
)

// Dial connects to a session bus at addr as uid. Running as root and asked
// for another uid, it connects from a thread whose effective uid is
// switched to uid for the connect call only (SO_PEERCRED records the
// credentials at connect time, and the bus admits only its owner), then
// switches that thread back; the rest of the process stays root.
func Dial(addr string, uid int) (*dbus.Conn, error) {
	var c *dbus.Conn
	var err error
	if uid >= 0 && uid != syscall.Geteuid() {
		if syscall.Geteuid() != 0 {
			return nil, fmt.Errorf("session bus of uid %d: not root, cannot connect as that user", uid)
		}
		c, err = dialAsUID(addr, uid)
	} else {
		c, err = dbus.Dial(addr)
		uid = syscall.Geteuid()
	}
	if err != nil {
		return nil, fmt.Errorf("session bus %s: %w", addr, err)
	}
	if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(uid))}); err != nil {
		c.Close()
		return nil, fmt.Errorf("session bus %s auth as uid %d: %w", addr, uid, err)
	}
	if err := c.Hello(); err != nil {
		c.Close()
		return nil, fmt.Errorf("session bus %s hello: %w", addr, err)
	}
	return c, nil
}

// dialAsUID connects with this OS thread's effective uid set to uid. The
// raw setresuid changes only the calling thread (glibc's wrapper would
// change all of them). If switching back fails the thread stays locked, so
// the runtime retires it when the goroutine ends instead of reusing it.
func dialAsUID(addr string, uid int) (*dbus.Conn, error) {
	type result struct {
		c   *dbus.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			runtime.UnlockOSThread()
			ch <- result{nil, fmt.Errorf("setresuid %d: %w", uid, e)}
			return
		}
		c, err := dbus.Dial(addr)
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), 0, ^uintptr(0)); e != 0 {
			ch <- result{c, err} // thread stays locked and dies with this goroutine
			return
		}
		runtime.UnlockOSThread()
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// Available reports whether Mutter's RemoteDesktop and ScreenCast services
// are on the bus.
func Available(c *dbus.Conn) bool {
	for _, n := range []string{rdName, scName} {
		var has bool
		if err := c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, n).Store(&has); err != nil || !has {
			return false
		}
	}
	return true
}

// Stream is one recorded monitor of a Session.
type Stream struct {
	Path      dbus.ObjectPath
	Connector string // as asked ("" = the primary monitor)
	// Node is the PipeWire node id of the monitor's video.
	Node uint32
	// X, Y, W, H are the monitor's place in the stage (logical pixels),
	// from the stream's Parameters.
	X, Y, W, H int
}

// Session is one remote desktop session recording one or more monitors.
type Session struct {
	c       *dbus.Conn
	rd      dbus.BusObject
	Streams []Stream

	closed    chan struct{}
	closeOnce sync.Once
	sig       chan *dbus.Signal
}

// Start creates a RemoteDesktop session, a ScreenCast session bound to it,
// records each connector ("" = the primary monitor) with the cursor mode
// given, starts it and waits for every PipeWire stream. Mutter renders
// into a stream only while a PipeWire consumer reads it, so recording a
// monitor nobody watches costs nothing. The session ends when Close is
// called or the connection closes.
func Start(c *dbus.Conn, connectors []string, cursorMode uint32) (*Session, error) {
	if len(connectors) == 0 {
		connectors = []string{""}
	}
	s := &Session{c: c, closed: make(chan struct{}), sig: make(chan *dbus.Signal, 16)}
	var rdp dbus.ObjectPath
	if err := c.Object(rdName, rdPath).Call(rdName+".CreateSession", 0).Store(&rdp); err != nil {
		return nil, fmt.Errorf("mutter RemoteDesktop.CreateSession: %w", err)
	}
	s.rd = c.Object(rdName, rdp)
	fail := func(err error) (*Session, error) {
		s.rd.Call(rdSession+".Stop", 0)
		return nil, err
	}
	idv, err := s.rd.GetProperty(rdSession + ".SessionId")
	if err != nil {
		return fail(fmt.Errorf("mutter RemoteDesktop SessionId: %w", err))
	}
	id, _ := idv.Value().(string)
	var scp dbus.ObjectPath
	if err := c.Object(scName, scPath).Call(scName+".CreateSession", 0,
		map[string]dbus.Variant{"remote-desktop-session-id": dbus.MakeVariant(id)}).Store(&scp); err != nil {
		return fail(fmt.Errorf("mutter ScreenCast.CreateSession: %w", err))
	}
	c.Signal(s.sig)
	if err := c.AddMatchSignal(dbus.WithMatchObjectPath(rdp), dbus.WithMatchMember("Closed")); err != nil {
		return fail(fmt.Errorf("mutter match signals: %w", err))
	}
	for _, conn := range connectors {
		st := Stream{Connector: conn}
		if err := c.Object(scName, scp).Call(scSession+".RecordMonitor", 0, conn,
			map[string]dbus.Variant{"cursor-mode": dbus.MakeVariant(cursorMode)}).Store(&st.Path); err != nil {
			return fail(fmt.Errorf("mutter ScreenCast RecordMonitor %q: %w", conn, err))
		}
		if err := c.AddMatchSignal(dbus.WithMatchObjectPath(st.Path), dbus.WithMatchMember("PipeWireStreamAdded")); err != nil {
			return fail(fmt.Errorf("mutter match signals: %w", err))
		}
		s.Streams = append(s.Streams, st)
	}
	if err := s.rd.Call(rdSession+".Start", 0).Err; err != nil {
		return fail(fmt.Errorf("mutter RemoteDesktop Start: %w", err))
	}
	for waiting := len(s.Streams); waiting > 0; {
		sg, ok := <-s.sig
		if !ok {
			return fail(errors.New("mutter: bus closed before the PipeWire streams were added"))
		}
		switch {
		case sg.Path == rdp && sg.Name == rdSession+".Closed":
			return nil, errors.New("mutter closed the session before streaming")
		case sg.Name == scStream+".PipeWireStreamAdded" && len(sg.Body) == 1:
			for i := range s.Streams {
				if s.Streams[i].Path == sg.Path && s.Streams[i].Node == 0 {
					s.Streams[i].Node, _ = sg.Body[0].(uint32)
					waiting--
				}
			}
		}
	}
	for i := range s.Streams {
		st := &s.Streams[i]
		if pv, err := c.Object(scName, st.Path).GetProperty(scStream + ".Parameters"); err == nil {
			if p, ok := pv.Value().(map[string]dbus.Variant); ok {
				st.X, st.Y = pair(p["position"])
				st.W, st.H = pair(p["size"])
			}
		}
	}
	go s.watch(rdp)
	return s, nil
}

// Monitor is one logical monitor of the stage, as DisplayConfig reports
// it: the connector to record it by, its top-left corner, and whether it
// is the primary one.
type Monitor struct {
	Connector string
	X, Y      int
	Primary   bool
}

// Monitors lists the logical monitors from org.gnome.Mutter.DisplayConfig's
// GetCurrentState (one connector each: a mirrored logical monitor shows
// the same picture on all of its monitors).
func Monitors(c *dbus.Conn) ([]Monitor, error) {
	call := c.Object(dcName, dcPath).Call(dcName+".GetCurrentState", 0)
	if call.Err != nil {
		return nil, fmt.Errorf("mutter DisplayConfig.GetCurrentState: %w", call.Err)
	}
	mons := logicalMonitors(call.Body)
	if len(mons) == 0 {
		return nil, errors.New("mutter DisplayConfig: no logical monitors")
	}
	return mons, nil
}

// logicalMonitors reads GetCurrentState's reply (serial, monitors,
// logical_monitors a(iiduba(ssss)a{sv}), properties); malformed entries
// are skipped.
func logicalMonitors(body []any) []Monitor {
	if len(body) < 3 {
		return nil
	}
	var out []Monitor
	for _, lm := range anySlice(body[2]) {
		f := anySlice(lm)
		if len(f) < 6 {
			continue
		}
		x, ok1 := f[0].(int32)
		y, ok2 := f[1].(int32)
		primary, _ := f[4].(bool)
		phys := anySlice(f[5])
		if !ok1 || !ok2 || len(phys) == 0 {
			continue
		}
		spec := anySlice(phys[0])
		if len(spec) == 0 {
			continue
		}
		conn, _ := spec[0].(string)
		if conn == "" {
			continue
		}
		out = append(out, Monitor{Connector: conn, X: int(x), Y: int(y), Primary: primary})
	}
	return out
}

// anySlice views a decoded D-Bus array or struct as []any.
func anySlice(v any) []any {
	switch t := v.(type) {
	case []any:
		return t
	case [][]any:
		out := make([]any, len(t))
		for i := range t {
			out[i] = t[i]
		}
		return out
	}
	return nil
}

// pair reads an (ii) struct variant.
func pair(v dbus.Variant) (int, int) {
	switch t := v.Value().(type) {
	case []any:
		if len(t) == 2 {
			a, _ := t[0].(int32)
			b, _ := t[1].(int32)
			return int(a), int(b)
		}
	}
	return 0, 0
}

// watch closes Done when Mutter closes the session or the bus goes.
func (s *Session) watch(rdp dbus.ObjectPath) {
	for sg := range s.sig {
		if sg.Path == rdp && sg.Name == rdSession+".Closed" {
			break
		}
	}
	s.closeOnce.Do(func() { close(s.closed) })
}

// Done is closed when the session ended (Mutter closed it or the bus
// connection went away).
func (s *Session) Done() <-chan struct{} { return s.closed }

// Close stops the session; Mutter tears down the stream.
func (s *Session) Close() error {
	err := s.rd.Call(rdSession+".Stop", 0).Err
	s.c.RemoveSignal(s.sig)
	s.closeOnce.Do(func() { close(s.closed) })
	return err
}

// PointerMotionAbsolute moves the pointer to x, y in stream i's
// (monitor's) coordinates.
func (s *Session) PointerMotionAbsolute(i int, x, y float64) error {
	return s.rd.Call(rdSession+".NotifyPointerMotionAbsolute", 0, string(s.Streams[i].Path), x, y).Err
}

// PointerButton presses or releases an evdev button (BTN_LEFT 0x110 ...).
func (s *Session) PointerButton(code int32, down bool) error {
	return s.rd.Call(rdSession+".NotifyPointerButton", 0, code, down).Err
}

// PointerAxisDiscrete scrolls steps clicks on axis 0 (vertical; positive
// is down) or 1 (horizontal).
func (s *Session) PointerAxisDiscrete(axis uint32, steps int32) error {
	return s.rd.Call(rdSession+".NotifyPointerAxisDiscrete", 0, axis, steps).Err
}

// KeyboardKeysym presses or releases the key Mutter finds for an X keysym
// in the session's current keymap (adding Shift or AltGr levels itself).
func (s *Session) KeyboardKeysym(sym uint32, down bool) error {
	return s.rd.Call(rdSession+".NotifyKeyboardKeysym", 0, sym, down).Err
}

// KeyboardKeycode presses or releases an evdev keycode.
func (s *Session) KeyboardKeycode(code uint32, down bool) error {
	return s.rd.Call(rdSession+".NotifyKeyboardKeycode", 0, code, down).Err
}
