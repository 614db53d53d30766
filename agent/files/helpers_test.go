package files

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/proto/session"
)

// client is the viewer end of a files session under test; a goroutine reads
// every frame so waits can time out without cancelling channel reads.
type client struct {
	t      testing.TB
	ch     session.Channel
	frames chan session.Frame
	closed chan struct{}
	done   chan error
}

func newClient(t testing.TB, ch session.Channel, done chan error) *client {
	c := &client{t: t, ch: ch, frames: make(chan session.Frame, 4096), closed: make(chan struct{}), done: done}
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

// quiet keeps the audit log out of test and benchmark output.
var quiet = slog.New(slog.DiscardHandler)

type transport func(t testing.TB, serve func(session.Channel)) session.Channel

func pipeTransport(t testing.TB, serve func(session.Channel)) session.Channel {
	a, b := session.Pipe(64)
	go serve(a)
	return b
}

func wsTransport(t testing.TB, serve func(session.Channel)) session.Channel {
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

var transports = []struct {
	name string
	tr   transport
}{{"pipe", pipeTransport}, {"websocket", wsTransport}}

func startFiles(t testing.TB, tr transport, info session.Info) *client {
	done := make(chan error, 1)
	ch := tr(t, func(ch session.Channel) {
		done <- Serve(context.Background(), ch, info, Options{Logger: quiet})
	})
	c := newClient(t, ch, done)
	t.Cleanup(func() { c.ch.Close() })
	return c
}

func adminInfo() session.Info {
	return session.Info{Protocol: session.ProtoFiles, Rights: session.RightAdmin, UserID: "user//test"}
}

// cmd sends a request the way the web UI does (JSON in a binary frame) or
// meshctrl does (text frame).
func (c *client) cmd(binary bool, v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.ch.Write(context.Background(), session.Frame{Binary: binary, Data: b}); err != nil {
		c.t.Fatalf("send %s: %v", b, err)
	}
}

func (c *client) sendRaw(f session.Frame) {
	c.t.Helper()
	if err := c.ch.Write(context.Background(), f); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next frame, failing the test on timeout or close.
func (c *client) next() session.Frame {
	c.t.Helper()
	select {
	case f := <-c.frames:
		return f
	case <-c.closed:
		select {
		case f := <-c.frames:
			return f
		default:
		}
		c.t.Fatal("channel closed while waiting for a frame")
	case <-time.After(20 * time.Second):
		c.t.Fatal("timeout waiting for a frame")
	}
	return session.Frame{}
}

type reply struct {
	Binary bool
	Raw    string
	M      map[string]any
}

// nextJSON returns the next JSON reply (skipping nothing).
func (c *client) nextJSON() reply {
	c.t.Helper()
	f := c.next()
	r := reply{Binary: f.Binary, Raw: string(f.Data)}
	if err := json.Unmarshal(f.Data, &r.M); err != nil {
		c.t.Fatalf("reply is not JSON: %q", f.Data)
	}
	return r
}

// waitJSON skips replies until one matches.
func (c *client) waitJSON(match func(reply) bool) reply {
	c.t.Helper()
	for i := 0; i < 10000; i++ {
		f := c.next()
		r := reply{Binary: f.Binary, Raw: string(f.Data)}
		if json.Unmarshal(f.Data, &r.M) != nil {
			continue
		}
		if match(r) {
			return r
		}
	}
	c.t.Fatal("no matching reply")
	return reply{}
}

func action(a string) func(reply) bool {
	return func(r reply) bool { return r.M["action"] == a }
}

// noReply checks nothing arrives for a short while (commands without reply).
func (c *client) noReply(d time.Duration) {
	c.t.Helper()
	select {
	case f := <-c.frames:
		c.t.Fatalf("unexpected reply %q", f.Data)
	case <-time.After(d):
	}
}

func (c *client) waitClosed() {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(10 * time.Second):
		c.t.Fatal("channel not closed")
	}
}

func (c *client) serveResult() error {
	c.t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(15 * time.Second):
		c.t.Fatal("Serve did not return")
		return nil
	}
}

// sync sends an ls and waits for its reply, so everything sent before has
// been processed (the handler is sequential).
func (c *client) sync(binary bool, dir string) reply {
	c.t.Helper()
	c.cmd(binary, map[string]any{"action": "ls", "reqid": "sync", "path": dir})
	return c.waitJSON(func(r reply) bool { return r.M["reqid"] == "sync" })
}
