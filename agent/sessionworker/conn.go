package sessionworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/meshgo/meshagent/agent/sessionworker/wire"
	"github.com/meshgo/meshagent/proto/session"
)

// Roles a Conn is opened with; they decide the parity of the ids each side
// allocates (wire's package documentation).
const (
	RoleService = "service"
	RoleWorker  = "worker"
)

// ErrConnClosed is returned by calls and streams once the pipe is gone:
// the worker exited, the session ended, or the service stopped.
var ErrConnClosed = errors.New("sessionworker: connection closed")

// Handler serves what the peer asks for. Nil maps serve nothing: the peer
// gets an error answer or a closed stream.
type Handler struct {
	// Requests answer the peer's requests by name; the result is sent
	// back as JSON, an error as its text.
	Requests map[string]func(ctx context.Context, body []byte) (any, error)
	// Streams serve streams the peer opens, by kind; body is the Open's
	// JSON. The stream is closed when the function returns.
	Streams map[string]func(ctx context.Context, s *Stream, body []byte) error
}

// Conn is one side of the service-worker pipe: requests and responses
// both ways, and any number of streams, each a session.Channel.
type Conn struct {
	rwc    io.ReadWriteCloser
	r      *wire.Reader
	h      Handler
	log    *slog.Logger
	wmu    sync.Mutex
	buf    []byte
	nextID atomic.Uint32
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	calls   map[uint32]chan wire.Frame
	serving map[uint32]context.CancelFunc // the peer's requests being answered
	streams map[uint32]*Stream
	err     error
	done    chan struct{}
}

// Open exchanges Hello on rwc as role and starts serving h. It fails when
// the peer speaks another version or does not answer before ctx ends.
func Open(ctx context.Context, rwc io.ReadWriteCloser, role string, h Handler, log *slog.Logger) (*Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &Conn{rwc: rwc, r: wire.NewReader(rwc), h: h, log: log, calls: map[uint32]chan wire.Frame{}, serving: map[uint32]context.CancelFunc{},
		streams: map[uint32]*Stream{}, done: make(chan struct{})}
	if role == RoleService {
		c.nextID.Store(1)
	} else {
		c.nextID.Store(2)
	}
	hello := make(chan error, 1)
	// Both ends send first and read second; a synchronous pipe (net.Pipe,
	// a byte-mode named pipe with no buffer) needs the two concurrent.
	sent := make(chan error, 1)
	go func() { sent <- c.send(wire.Frame{Type: wire.Hello, Version: wire.Version, Name: role}) }()
	go func() {
		f, err := c.r.Read()
		if err == nil {
			err = wire.CheckHello(f)
		}
		if err == nil {
			err = <-sent
		}
		hello <- err
	}()
	select {
	case err := <-hello:
		if err != nil {
			rwc.Close()
			return nil, fmt.Errorf("sessionworker hello: %w", err)
		}
	case <-ctx.Done():
		rwc.Close()
		<-hello
		return nil, fmt.Errorf("sessionworker hello: %w", ctx.Err())
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	go c.readLoop()
	return c, nil
}

// Done is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended (nil while it runs).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close ends the connection; the peer sees its pipe close.
func (c *Conn) Close() error {
	err := c.rwc.Close()
	<-c.done
	return err
}

func (c *Conn) id() uint32 { return c.nextID.Add(2) - 2 }

func (c *Conn) send(f wire.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	var err error
	if c.buf, err = wire.Append(c.buf[:0], f); err != nil {
		return err
	}
	if _, err := c.rwc.Write(c.buf); err != nil {
		return fmt.Errorf("%w: %w", ErrConnClosed, err)
	}
	if cap(c.buf) > 1<<20 {
		c.buf = nil // do not pin a jumbo frame's buffer
	}
	return nil
}

// Call sends a request and decodes its answer into resp (when non-nil).
func (c *Conn) Call(ctx context.Context, name string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("sessionworker %s: %w", name, err)
	}
	id := c.id()
	ch := make(chan wire.Frame, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return fmt.Errorf("sessionworker %s: %w", name, ErrConnClosed)
	}
	c.calls[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.calls, id)
		c.mu.Unlock()
	}()
	if err := c.send(wire.Frame{Type: wire.Request, ID: id, Name: name, Body: body}); err != nil {
		return fmt.Errorf("sessionworker %s: %w", name, err)
	}
	select {
	case f := <-ch:
		if !f.OK {
			return fmt.Errorf("sessionworker %s: %w", name, &RemoteError{Msg: string(f.Body)})
		}
		if resp != nil {
			if err := json.Unmarshal(f.Body, resp); err != nil {
				return fmt.Errorf("sessionworker %s answer: %w", name, err)
			}
		}
		return nil
	case <-c.done:
		return fmt.Errorf("sessionworker %s: %w", name, ErrConnClosed)
	case <-ctx.Done():
		// The peer's handler is cancelled too (a prompt is taken down).
		c.send(wire.Frame{Type: wire.Cancel, ID: id})
		return fmt.Errorf("sessionworker %s: %w", name, ctx.Err())
	}
}

// RemoteError is an error the peer's handler returned.
type RemoteError struct{ Msg string }

func (e *RemoteError) Error() string { return e.Msg }

// OpenStream opens a stream of kind on the peer, with body as its JSON
// parameters.
func (c *Conn) OpenStream(kind string, params any) (*Stream, error) {
	body, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("sessionworker open %s: %w", kind, err)
	}
	s := c.newStream(c.id())
	if s == nil {
		return nil, fmt.Errorf("sessionworker open %s: %w", kind, ErrConnClosed)
	}
	if err := c.send(wire.Frame{Type: wire.Open, ID: s.id, Name: kind, Body: body}); err != nil {
		c.drop(s.id)
		return nil, fmt.Errorf("sessionworker open %s: %w", kind, err)
	}
	return s, nil
}

func (c *Conn) newStream(id uint32) *Stream {
	s := &Stream{c: c, id: id, in: make(chan session.Frame, 64), closed: make(chan struct{})}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil
	}
	c.streams[id] = s
	return s
}

func (c *Conn) drop(id uint32) *Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.streams[id]
	delete(c.streams, id)
	return s
}

func (c *Conn) readLoop() {
	var err error
	for {
		var f wire.Frame
		if f, err = c.r.Read(); err != nil {
			break
		}
		if err = c.dispatch(f); err != nil {
			break
		}
	}
	if errors.Is(err, io.EOF) {
		err = ErrConnClosed
	}
	c.mu.Lock()
	c.err = fmt.Errorf("%w: %w", ErrConnClosed, err)
	streams := c.streams
	c.streams = map[uint32]*Stream{}
	c.mu.Unlock()
	c.cancel()
	c.rwc.Close()
	// Done first: whoever sees a stream end can then tell a worker that
	// went away from a stream closed on purpose (Relay restarts on it).
	close(c.done)
	for _, s := range streams {
		s.remoteClose("")
	}
}

// dispatch handles one frame; an error ends the connection (a peer that
// breaks the protocol is not trusted further).
func (c *Conn) dispatch(f wire.Frame) error {
	switch f.Type {
	case wire.Response:
		c.mu.Lock()
		ch := c.calls[f.ID]
		c.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	case wire.Request:
		ctx, cancel := context.WithCancel(c.ctx)
		c.mu.Lock()
		c.serving[f.ID] = cancel
		c.mu.Unlock()
		go c.serveRequest(ctx, f)
	case wire.Cancel:
		c.mu.Lock()
		cancel := c.serving[f.ID]
		c.mu.Unlock()
		if cancel != nil {
			cancel()
		}
	case wire.Open:
		c.serveOpen(f)
	case wire.Data:
		c.mu.Lock()
		s := c.streams[f.ID]
		c.mu.Unlock()
		if s == nil {
			return nil // data racing a close
		}
		select {
		case s.in <- session.Frame{Binary: f.Binary, Data: f.Body}:
		case <-s.closed:
		}
	case wire.Close:
		if s := c.drop(f.ID); s != nil {
			s.remoteClose(string(f.Body))
		}
	case wire.Ping:
		go c.send(wire.Frame{Type: wire.Pong, ID: f.ID})
	case wire.Pong:
	case wire.Hello:
		return fmt.Errorf("%w: second hello", wire.ErrMalformed)
	}
	return nil
}

func (c *Conn) serveRequest(ctx context.Context, f wire.Frame) {
	defer func() {
		c.mu.Lock()
		if cancel := c.serving[f.ID]; cancel != nil {
			cancel()
			delete(c.serving, f.ID)
		}
		c.mu.Unlock()
	}()
	h := c.h.Requests[f.Name]
	var res any
	err := fmt.Errorf("unknown request %q", f.Name)
	if h != nil {
		res, err = h(ctx, f.Body)
	}
	out := wire.Frame{Type: wire.Response, ID: f.ID, OK: err == nil}
	if err != nil {
		out.Body = []byte(err.Error())
	} else if out.Body, err = json.Marshal(res); err != nil {
		out.OK, out.Body = false, []byte(err.Error())
	}
	if err := c.send(out); err != nil {
		c.log.Debug("sessionworker: answer not sent", "request", f.Name, "err", err)
	}
}

func (c *Conn) serveOpen(f wire.Frame) {
	h := c.h.Streams[f.Name]
	s := c.newStream(f.ID)
	if s == nil {
		return
	}
	if h == nil {
		s.closeWith(fmt.Sprintf("unknown stream kind %q", f.Name))
		return
	}
	body := f.Body
	go func() {
		err := h(c.ctx, s, body)
		reason := ""
		if err != nil {
			reason = err.Error()
			c.log.Debug("sessionworker: stream ended", "kind", f.Name, "err", err)
		}
		s.closeWith(reason)
	}()
}

// Stream is one multiplexed channel on a Conn, e.g. a desktop session's
// KVM frames. It implements session.Channel.
type Stream struct {
	c      *Conn
	id     uint32
	in     chan session.Frame
	once   sync.Once
	closed chan struct{}

	mu     sync.Mutex
	reason string // the peer's close reason
	local  bool   // closed by us
}

var _ session.Channel = (*Stream)(nil)

// Read returns the peer's next frame; after the peer closed, the frames
// still buffered and then session.ErrClosed.
func (s *Stream) Read(ctx context.Context) (session.Frame, error) {
	select {
	case f := <-s.in:
		return f, nil
	default:
	}
	select {
	case f := <-s.in:
		return f, nil
	case <-s.closed:
		select {
		case f := <-s.in:
			return f, nil
		default:
		}
		return session.Frame{}, s.closeErr()
	case <-ctx.Done():
		return session.Frame{}, ctx.Err()
	}
}

// Write sends a frame to the peer. It blocks while the pipe is full, which
// is the back pressure a slow viewer puts on the capture loop.
func (s *Stream) Write(ctx context.Context, f session.Frame) error {
	select {
	case <-s.closed:
		return s.closeErr()
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	if err := s.c.send(wire.Frame{Type: wire.Data, ID: s.id, Binary: f.Binary, Body: f.Data}); err != nil {
		return fmt.Errorf("%w: %w", session.ErrClosed, err)
	}
	return nil
}

// Close ends the stream on both sides.
func (s *Stream) Close() error { s.closeWith(""); return nil }

// Reason is the peer's close reason ("" for a normal close or while open).
func (s *Stream) Reason() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reason
}

func (s *Stream) closeErr() error {
	if r := s.Reason(); r != "" {
		return fmt.Errorf("%w: %s", session.ErrClosed, r)
	}
	return session.ErrClosed
}

func (s *Stream) closeWith(reason string) {
	s.once.Do(func() {
		s.mu.Lock()
		s.local = true
		s.mu.Unlock()
		close(s.closed)
		if s.c.drop(s.id) != nil {
			s.c.send(wire.Frame{Type: wire.Close, ID: s.id, Body: []byte(reason)})
		}
	})
}

func (s *Stream) remoteClose(reason string) {
	s.once.Do(func() {
		s.mu.Lock()
		s.reason = reason
		s.mu.Unlock()
		close(s.closed)
	})
}
