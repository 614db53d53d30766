//go:build linux

package wayland

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Handler receives the events of one object, on the client's reader
// goroutine, in order. It may send requests but must not wait for a
// Roundtrip (that needs the same goroutine).
type Handler func(m Message)

// Global is one interface the compositor advertises in wl_registry.
type Global struct {
	Name      uint32
	Interface string
	Version   uint32
}

// Client is one connection to a compositor. Requests may be sent from any
// goroutine; events go to the handler registered for their object.
type Client struct {
	conn *net.UnixConn
	wmu  sync.Mutex

	mu       sync.Mutex
	handlers map[uint32]Handler
	next     uint32
	globals  map[uint32]Global
	fds      []int // received, not yet taken by a handler
	err      error
	done     chan struct{}

	registry uint32
}

const displayID = 1

// SocketPath resolves a WAYLAND_DISPLAY value: absolute paths stay, names
// are relative to runtimeDir (XDG_RUNTIME_DIR).
func SocketPath(display, runtimeDir string) string {
	if display == "" {
		display = "wayland-0"
	}
	if filepath.IsAbs(display) {
		return display
	}
	return filepath.Join(runtimeDir, display)
}

// Dial connects to the compositor socket at path and reads its globals.
func Dial(path string) (*Client, error) {
	nc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("wayland dial: %w", err)
	}
	c := &Client{
		conn:     nc,
		handlers: map[uint32]Handler{},
		next:     displayID + 1,
		globals:  map[uint32]Global{},
		done:     make(chan struct{}),
	}
	c.handlers[displayID] = c.displayEvent
	go c.read()
	c.registry = c.NewID(c.registryEvent)
	if err := c.Send(displayID, 1, new(Writer).Uint(c.registry)); err != nil { // get_registry
		c.Close()
		return nil, err
	}
	if err := c.Roundtrip(5 * time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

func (c *Client) displayEvent(m Message) {
	r := NewReader(m)
	switch m.Opcode {
	case 0: // error(object, code, message)
		obj, code, msg := r.Uint(), r.Uint(), r.String()
		c.fail(fmt.Errorf("wayland: protocol error on object %d, code %d: %s", obj, code, msg))
	case 1: // delete_id(id): ids are never reused, only forgotten
		id := r.Uint()
		c.mu.Lock()
		delete(c.handlers, id)
		c.mu.Unlock()
	}
}

func (c *Client) registryEvent(m Message) {
	r := NewReader(m)
	switch m.Opcode {
	case 0: // global(name, interface, version)
		g := Global{Name: r.Uint(), Interface: r.String(), Version: r.Uint()}
		if r.Err() == nil {
			c.mu.Lock()
			c.globals[g.Name] = g
			c.mu.Unlock()
		}
	case 1: // global_remove(name)
		n := r.Uint()
		c.mu.Lock()
		delete(c.globals, n)
		c.mu.Unlock()
	}
}

// Globals returns the advertised interfaces, keyed by interface name; for
// interfaces advertised more than once (wl_output) use Outputs.
func (c *Client) Globals() []Global {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Global, 0, len(c.globals))
	for _, g := range c.globals {
		out = append(out, g)
	}
	return out
}

// Find returns the first global of an interface.
func (c *Client) Find(iface string) (Global, bool) {
	var best Global
	found := false
	for _, g := range c.Globals() {
		if g.Interface == iface && (!found || g.Name < best.Name) {
			best, found = g, true
		}
	}
	return best, found
}

// Bind creates an object for a global at min(version, advertised).
func (c *Client) Bind(g Global, version uint32, h Handler) (uint32, error) {
	version = min(version, g.Version)
	id := c.NewID(h)
	w := new(Writer).Uint(g.Name).String(g.Interface).Uint(version).Uint(id)
	if err := c.Send(c.registry, 0, w); err != nil {
		return 0, err
	}
	return id, nil
}

// NewID allocates an object id with its event handler (nil: ignore events).
func (c *Client) NewID(h Handler) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := c.next
	c.next++
	if h == nil {
		h = func(Message) {}
	}
	c.handlers[id] = h
	return id
}

// SetHandler replaces the event handler of an object.
func (c *Client) SetHandler(id uint32, h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		h = func(Message) {}
	}
	c.handlers[id] = h
}

// Send writes one request; the Writer's file descriptors go with it.
func (c *Client) Send(obj uint32, op uint16, w *Writer) error {
	msg, err := encode(obj, op, w)
	if err != nil {
		return err
	}
	var oob []byte
	if w != nil && len(w.fds) > 0 {
		oob = unix.UnixRights(w.fds...)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Err(); err != nil {
		return err
	}
	if _, _, err := c.conn.WriteMsgUnix(msg, oob, nil); err != nil {
		return fmt.Errorf("wayland send: %w", err)
	}
	return nil
}

// Roundtrip waits until the compositor has handled every request sent so
// far (wl_display.sync) and their events were dispatched.
func (c *Client) Roundtrip(timeout time.Duration) error {
	ch := make(chan struct{})
	var once sync.Once
	cb := c.NewID(func(Message) { once.Do(func() { close(ch) }) })
	if err := c.Send(displayID, 0, new(Writer).Uint(cb)); err != nil {
		return err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-ch:
		return nil
	case <-c.done:
		return c.Err()
	case <-t.C:
		return errors.New("wayland: roundtrip timed out")
	}
}

// TakeFD returns the next received file descriptor, for a handler decoding
// an fd argument; the caller owns it.
func (c *Client) TakeFD() (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.fds) == 0 {
		return -1, false
	}
	fd := c.fds[0]
	c.fds = c.fds[1:]
	return fd, true
}

// Done is closed when the connection ends; Err then says why.
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is the error that ended the connection, nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Client) fail(err error) {
	c.mu.Lock()
	first := c.err == nil
	if first {
		c.err = err
	}
	c.mu.Unlock()
	if first {
		close(c.done)
		c.conn.Close()
	}
}

// Close ends the connection.
func (c *Client) Close() error {
	c.fail(net.ErrClosed)
	c.mu.Lock()
	for _, fd := range c.fds {
		unix.Close(fd)
	}
	c.fds = nil
	c.mu.Unlock()
	return nil
}

// read receives the stream, collects passed fds and dispatches messages.
func (c *Client) read() {
	buf := make([]byte, 0, 2*maxMessage)
	chunk := make([]byte, maxMessage)
	oob := make([]byte, unix.CmsgSpace(4*28))
	for {
		n, oobn, _, _, err := c.conn.ReadMsgUnix(chunk, oob)
		if oobn > 0 {
			c.takeRights(oob[:oobn])
		}
		if err != nil {
			c.fail(fmt.Errorf("wayland read: %w", err))
			return
		}
		if n == 0 {
			c.fail(errors.New("wayland: compositor closed the connection"))
			return
		}
		buf = append(buf, chunk[:n]...)
		rest, err := c.dispatch(buf)
		if err != nil {
			c.fail(err)
			return
		}
		buf = append(buf[:0], rest...)
	}
}

// dispatch hands every complete message in b to its handler and returns the
// incomplete tail.
func (c *Client) dispatch(b []byte) ([]byte, error) {
	for {
		m, n, err := ParseHeader(b)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return b, nil
		}
		c.mu.Lock()
		h := c.handlers[m.Object]
		c.mu.Unlock()
		if h != nil {
			h(m)
		}
		b = b[n:]
	}
}

func (c *Client) takeRights(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, sm := range msgs {
		fds, err := unix.ParseUnixRights(&sm)
		if err != nil {
			continue
		}
		c.mu.Lock()
		c.fds = append(c.fds, fds...)
		c.mu.Unlock()
	}
}

// Memfd makes an anonymous shared-memory file of size bytes, the way
// buffers and keymaps are passed to the compositor.
func Memfd(name string, size int) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if err := f.Truncate(int64(size)); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd truncate: %w", err)
	}
	return f, nil
}
