// Package sessiontest runs a session handler under test and plays the
// viewer end, in the spirit of net/http/httptest: a handler is served over
// an in-memory pipe or a real WebSocket, and a Client reads every frame on
// its own goroutine so tests can wait with timeouts without cancelling a
// channel read (a cancelled read closes a WebSocket).
//
// It is for tests only; handler packages (agent/files, agent/terminal)
// build their protocol-specific helpers on top of Client.
package sessiontest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/proto/session"
)

// Transport connects a handler to a test's end of a channel: serve runs the
// handler's end (on its own goroutine or the server's), the returned
// channel is the viewer's.
type Transport func(t testing.TB, serve func(session.Channel)) session.Channel

// Pipe connects the two ends in memory (session.Pipe).
func Pipe(t testing.TB, serve func(session.Channel)) session.Channel {
	a, b := session.Pipe(64)
	go serve(a)
	return b
}

// WebSocket connects the two ends through a real WebSocket on a loopback
// httptest server, as the relay carries sessions.
func WebSocket(t testing.TB, serve func(session.Channel)) session.Channel {
	up := websocket.Upgrader{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		serve(session.WebSocket(conn))
	}))
	t.Cleanup(srv.Close)
	d := websocket.Dialer{ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	conn, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	ch := session.WebSocket(conn)
	t.Cleanup(func() { ch.Close() })
	return ch
}

// Timeouts of the Client's waits.
const (
	FrameTimeout = 20 * time.Second // Next
	CloseTimeout = 10 * time.Second // WaitClosed
	ServeTimeout = 15 * time.Second // ServeResult
)

// Client is the viewer end of a session under test.
type Client struct {
	T      testing.TB
	Ch     session.Channel
	frames chan session.Frame
	closed chan struct{}
	done   <-chan error
}

// Serve runs serve (the handler under test) over tr and returns the
// viewer's Client; ServeResult then reports what serve returned. The
// viewer's channel is closed when the test ends.
func Serve(t testing.TB, tr Transport, serve func(ctx context.Context, ch session.Channel) error) *Client {
	done := make(chan error, 1)
	ch := tr(t, func(ch session.Channel) { done <- serve(context.Background(), ch) })
	c := NewClient(t, ch, done)
	t.Cleanup(func() { c.Ch.Close() })
	return c
}

// NewClient starts reading ch. done, if not nil, carries the handler's
// result for ServeResult.
func NewClient(t testing.TB, ch session.Channel, done <-chan error) *Client {
	c := &Client{T: t, Ch: ch, frames: make(chan session.Frame, 4096), closed: make(chan struct{}), done: done}
	go func() {
		defer close(c.closed)
		for {
			f, err := ch.Read(context.Background())
			if err != nil {
				return
			}
			c.frames <- f
		}
	}()
	return c
}

// Frames yields every frame in arrival order.
func (c *Client) Frames() <-chan session.Frame { return c.frames }

// Closed is closed once the channel has ended (frames may still be queued
// in Frames).
func (c *Client) Closed() <-chan struct{} { return c.closed }

// Send writes one frame, failing the test on error.
func (c *Client) Send(f session.Frame) {
	c.T.Helper()
	if err := c.Ch.Write(context.Background(), f); err != nil {
		c.T.Fatalf("send %q: %v", f.Data, err)
	}
}

// Next returns the next frame, failing the test on timeout or when the
// channel closed with nothing left.
func (c *Client) Next() session.Frame {
	c.T.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.T.Fatal("channel closed while waiting for a frame")
	case <-time.After(FrameTimeout):
		c.T.Fatal("timeout waiting for a frame")
	}
	return session.Frame{}
}

// NoFrame checks that nothing arrives for d.
func (c *Client) NoFrame(d time.Duration) {
	c.T.Helper()
	select {
	case f := <-c.frames:
		c.T.Fatalf("unexpected frame %q", f.Data)
	case <-time.After(d):
	}
}

// WaitClosed waits for the channel to end.
func (c *Client) WaitClosed() {
	c.T.Helper()
	select {
	case <-c.closed:
	case <-time.After(CloseTimeout):
		c.T.Fatal("channel not closed")
	}
}

// ServeResult waits for the handler to return and gives its error.
func (c *Client) ServeResult() error {
	c.T.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(ServeTimeout):
		c.T.Fatal("Serve did not return")
		return nil
	}
}
