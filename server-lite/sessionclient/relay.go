// Package sessionclient is the user (viewer) end of MeshCentral's data
// sessions: it opens a relay session the way the web UI and meshctrl do
// (control.ashx authcookie and tunnel, then meshrelay.ashx) and speaks the
// terminal, files and desktop protocols over a session.Channel
// (shared/protocol/sessions.md §1-4).
//
// It lives apart from server-lite's CLI so that tests and benchmarks drive
// agents exactly as the CLI does, and so the same clients run over the
// relay or over a WebRTC data channel (proto/webrtc.Offerer), which both
// implement session.Channel.
//
// Every client owns the channel's Read side from one goroutine started by
// its constructor: cancelling a Read's context closes a WebSocket channel,
// so per-call contexts must never reach Read.
package sessionclient

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
)

// Control sends one control.ashx request and returns its reply (the
// message carrying the request's responseid). The CLI's control client
// implements it; so can a test's.
type Control interface {
	Call(ctx context.Context, req map[string]any) (map[string]any, error)
}

// Relay describes the session to open.
type Relay struct {
	// URL is the server's base URL: wss://host:port (https:// also works).
	URL string
	// TLS configures the relay WebSocket's TLS (pinning); nil skips
	// verification, which only suits tests against a self-signed server.
	TLS *tls.Config
	// NodeID is the device, with or without the node// prefix.
	NodeID string
	// Protocol is the relay protocol number (session.ProtoTerminal, ...).
	Protocol int
	// Options, when set, is sent as the options control message before the
	// protocol number (terminal size, for instance).
	Options map[string]any
	// PairTimeout bounds the wait for the agent's end; zero means 20 s (the
	// relay itself gives up after 15 s).
	PairTimeout time.Duration
}

// ErrUnableToRoute is the server's refusal to pass the tunnel request to
// the device: offline, unknown, or no rights.
var ErrUnableToRoute = errors.New("unable to route the session to the device (offline, unknown or no rights)")

// Open asks the server for a relay cookie, sends the tunnel request that
// makes the agent connect its end, connects the user end of
// meshrelay.ashx, waits for the relay's "c", and sends the options and the
// protocol number. The returned channel carries the protocol; closing it
// ends the session.
func Open(ctx context.Context, ctl Control, r Relay) (*Counted, error) {
	nodeID := r.NodeID
	if !strings.HasPrefix(nodeID, "node/") {
		nodeID = handshake.NodeIDPrefix + nodeID
	}
	base, err := wsBase(r.URL)
	if err != nil {
		return nil, err
	}
	ck, err := ctl.Call(ctx, map[string]any{"action": "authcookie"})
	if err != nil {
		return nil, fmt.Errorf("relay cookie: %w", err)
	}
	cookie, _ := ck["cookie"].(string)
	rcookie, _ := ck["rcookie"].(string)
	if cookie == "" {
		return nil, fmt.Errorf("relay cookie: server sent none (%v)", ck["result"])
	}
	idb := make([]byte, 8)
	rand.Read(idb)
	id := hex.EncodeToString(idb)

	// Dial the relay first: the server holds whichever end arrives first,
	// and our end being there makes the agent's arrival pair at once.
	q := url.Values{"browser": {"1"}, "p": {fmt.Sprint(r.Protocol)}, "nodeid": {nodeID}, "id": {id}, "auth": {cookie}}
	tlsCfg := r.TLS
	if tlsCfg == nil {
		tlsCfg = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // caller chose no pinning
	}
	d := websocket.Dialer{TLSClientConfig: tlsCfg, HandshakeTimeout: 20 * time.Second,
		ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}
	ws, resp, err := d.DialContext(ctx, base+"/meshrelay.ashx?"+q.Encode(), nil)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("connect relay: HTTP %s", resp.Status)
		}
		return nil, fmt.Errorf("connect relay: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	ch := Count(session.WebSocket(ws))

	value := fmt.Sprintf("*/meshrelay.ashx?p=%d&nodeid=%s&id=%s&rauth=%s", r.Protocol, nodeID, id, rcookie)
	rep, err := ctl.Call(ctx, map[string]any{"action": "msg", "type": "tunnel", "nodeid": nodeID, "value": value, "usage": r.Protocol})
	if err != nil {
		ch.Close()
		return nil, fmt.Errorf("tunnel request: %w", err)
	}
	if res, _ := rep["result"].(string); res != "" && !strings.EqualFold(res, "ok") {
		ch.Close()
		if res == "Unable to route" {
			return nil, ErrUnableToRoute
		}
		return nil, fmt.Errorf("tunnel request: %s", res)
	}

	pt := r.PairTimeout
	if pt == 0 {
		pt = 20 * time.Second
	}
	// Read with a background context: a cancelled Read context would close
	// the socket. A timer closes it instead when the agent never comes.
	timer := time.AfterFunc(pt, func() { ch.Close() })
	stop := context.AfterFunc(ctx, func() { ch.Close() })
	defer stop()
	for {
		f, err := ch.Read(context.Background())
		if err != nil {
			timer.Stop()
			if ctx.Err() != nil {
				return nil, fmt.Errorf("waiting for the agent: %w", ctx.Err())
			}
			return nil, fmt.Errorf("the agent did not join the relay session: %w", err)
		}
		if !f.Binary && (string(f.Data) == "c" || string(f.Data) == "cr") {
			break
		}
	}
	timer.Stop()
	if r.Options != nil {
		o := map[string]any{"ctrlChannel": session.CtrlChannel, "type": "options"}
		for k, v := range r.Options {
			o[k] = v
		}
		b, _ := json.Marshal(o)
		if err := ch.Write(ctx, session.Frame{Data: b}); err != nil {
			ch.Close()
			return nil, fmt.Errorf("send options: %w", err)
		}
	}
	if err := ch.Write(ctx, session.Frame{Data: []byte(fmt.Sprint(r.Protocol))}); err != nil {
		ch.Close()
		return nil, fmt.Errorf("send protocol: %w", err)
	}
	return ch, nil
}

func wsBase(base string) (string, error) {
	base = strings.TrimRight(base, "/")
	switch {
	case strings.HasPrefix(base, "https://"):
		return "wss://" + strings.TrimPrefix(base, "https://"), nil
	case strings.HasPrefix(base, "http://"):
		return "ws://" + strings.TrimPrefix(base, "http://"), nil
	case strings.HasPrefix(base, "wss://"), strings.HasPrefix(base, "ws://"):
		return base, nil
	}
	return "", fmt.Errorf("server URL %q: want wss://host:port", base)
}

// Counted is a session.Channel that counts the payload bytes it carries,
// so a caller can tell how much of a session crossed the relay after a
// WebRTC switch-over.
type Counted struct {
	session.Channel
	in, out atomic.Int64
}

// Count wraps ch.
func Count(ch session.Channel) *Counted { return &Counted{Channel: ch} }

// Read implements session.Channel.
func (c *Counted) Read(ctx context.Context) (session.Frame, error) {
	f, err := c.Channel.Read(ctx)
	c.in.Add(int64(len(f.Data)))
	return f, err
}

// Write implements session.Channel.
func (c *Counted) Write(ctx context.Context, f session.Frame) error {
	c.out.Add(int64(len(f.Data)))
	return c.Channel.Write(ctx, f)
}

// Bytes returns the payload bytes read and written so far.
func (c *Counted) Bytes() (in, out int64) { return c.in.Load(), c.out.Load() }

// reader owns a channel's Read side: frames go to a queue that the
// protocol clients consume with their own contexts.
type reader struct {
	ch     session.Channel
	frames chan session.Frame
	done   chan struct{}
	quit   chan struct{}
	once   sync.Once
	err    error // set before done closes
}

func newReader(ch session.Channel, depth int) *reader {
	r := &reader{ch: ch, frames: make(chan session.Frame, depth), done: make(chan struct{}), quit: make(chan struct{})}
	go func() {
		defer close(r.done)
		for {
			f, err := ch.Read(context.Background())
			if err != nil {
				r.err = err
				return
			}
			select {
			case r.frames <- f:
			case <-r.quit:
				return
			}
		}
	}()
	return r
}

// close closes the channel and stops the reader.
func (r *reader) close() error {
	r.once.Do(func() { close(r.quit) })
	return r.ch.Close()
}

// next returns the next frame, or the error that ended the channel.
func (r *reader) next(ctx context.Context) (session.Frame, error) {
	select {
	case f := <-r.frames:
		return f, nil
	default:
	}
	select {
	case f := <-r.frames:
		return f, nil
	case <-r.done:
		select {
		case f := <-r.frames:
			return f, nil
		default:
		}
		return session.Frame{}, fmt.Errorf("session ended: %w", r.err)
	case <-ctx.Done():
		return session.Frame{}, ctx.Err()
	}
}

// isCtrl reports whether a text frame is the control message of type typ.
func isCtrl(b []byte, typ string) bool {
	if len(b) < 2 || b[0] != '{' {
		return false
	}
	var m struct {
		CtrlChannel any    `json:"ctrlChannel"`
		Type        string `json:"type"`
	}
	return json.Unmarshal(b, &m) == nil && m.CtrlChannel != nil && m.Type == typ
}

// ConsoleMessage returns the text of an agent "console" control message
// (sessions.md §1.8), for error reports.
func ConsoleMessage(b []byte) (string, bool) {
	if len(b) < 2 || b[0] != '{' {
		return "", false
	}
	var m struct {
		CtrlChannel any    `json:"ctrlChannel"`
		Type        string `json:"type"`
		Msg         string `json:"msg"`
	}
	if json.Unmarshal(b, &m) != nil || m.Type != "console" || m.Msg == "" {
		return "", false
	}
	return m.Msg, true
}
