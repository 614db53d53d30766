package files

import (
	"context"
	"encoding/json"
	"log/slog"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/proto/session/sessiontest"
)

// client is the viewer end of a files session under test, with the files
// protocol's helpers on top of the shared session test client.
type client struct {
	*sessiontest.Client
	t  testing.TB
	ch session.Channel
}

// quiet keeps the audit log out of test and benchmark output.
var quiet = slog.New(slog.DiscardHandler)

type transport = sessiontest.Transport

var (
	pipeTransport = sessiontest.Pipe
	wsTransport   = sessiontest.WebSocket
)

var transports = []struct {
	name string
	tr   transport
}{{"pipe", pipeTransport}, {"websocket", wsTransport}}

func startFiles(t testing.TB, tr transport, info session.Info) *client {
	c := sessiontest.Serve(t, tr, func(ctx context.Context, ch session.Channel) error {
		return Serve(ctx, ch, info, Options{Logger: quiet})
	})
	return &client{Client: c, t: t, ch: c.Ch}
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
	c.Send(f)
}

// next returns the next frame, failing the test on timeout or close.
func (c *client) next() session.Frame {
	c.t.Helper()
	return c.Next()
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
	c.NoFrame(d)
}

func (c *client) waitClosed() {
	c.t.Helper()
	c.WaitClosed()
}

func (c *client) serveResult() error {
	c.t.Helper()
	return c.ServeResult()
}

// sync sends an ls and waits for its reply, so everything sent before has
// been processed (the handler is sequential).
func (c *client) sync(binary bool, dir string) reply {
	c.t.Helper()
	c.cmd(binary, map[string]any{"action": "ls", "reqid": "sync", "path": dir})
	return c.waitJSON(func(r reply) bool { return r.M["reqid"] == "sync" })
}
