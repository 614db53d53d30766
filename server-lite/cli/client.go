package cli

import (
	"context"
	"crypto/sha512"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// client is one control.ashx session.
type client struct {
	ws         *websocket.Conn
	serverInfo map[string]any
	userInfo   map[string]any
	events     chan map[string]any // live {action:"event"} payloads
	replies    chan map[string]any
	readErr    chan error
	seq        int
}

// tlsConfig skips CA verification (server-lite's certificate is
// self-signed) unless pin is given: then the certificate's SHA-384 (the
// "TLS cert" line server-lite prints, or serverinfo's tlshash) must match.
func tlsConfig(pin string) *tls.Config {
	pin = strings.ToLower(strings.TrimSpace(pin))
	cfg := &tls.Config{InsecureSkipVerify: true} //nolint:gosec // pinned below when asked
	if pin != "" {
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no server certificate")
			}
			h := sha512.Sum384(cs.PeerCertificates[0].Raw)
			if hex.EncodeToString(h[:]) != pin {
				return errors.New("server certificate does not match --tlshash")
			}
			return nil
		}
	}
	return cfg
}

// controlURL turns a base URL (wss://host:port, https://host:port) into
// the control.ashx URL.
func controlURL(base string) (string, error) {
	base = strings.TrimRight(base, "/")
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	case strings.HasPrefix(base, "wss://"), strings.HasPrefix(base, "ws://"):
	default:
		return "", fmt.Errorf("--url %q: want wss://host:port", base)
	}
	return base + "/control.ashx", nil
}

// httpsURL turns the base URL into its https:// form for plain GETs.
func httpsURL(base string) string {
	base = strings.TrimRight(base, "/")
	if s, ok := strings.CutPrefix(base, "wss://"); ok {
		return "https://" + s
	}
	if s, ok := strings.CutPrefix(base, "ws://"); ok {
		return "http://" + s
	}
	return base
}

func dial(ctx context.Context, o *opts) (*client, error) {
	u, err := controlURL(o.url)
	if err != nil {
		return nil, err
	}
	d := websocket.Dialer{TLSClientConfig: tlsConfig(o.tlsHash), HandshakeTimeout: 15 * time.Second}
	h := http.Header{}
	auth := base64.StdEncoding.EncodeToString([]byte(o.user)) + "," + base64.StdEncoding.EncodeToString([]byte(o.pass))
	if o.token != "" {
		auth += "," + base64.StdEncoding.EncodeToString([]byte(o.token))
	}
	h.Set("X-Meshauth", auth)
	ws, resp, err := d.DialContext(ctx, u, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("connect %s: HTTP %s", u, resp.Status)
		}
		return nil, fmt.Errorf("connect %s: %w", u, err)
	}
	c := &client{ws: ws, events: make(chan map[string]any, 256), replies: make(chan map[string]any, 16), readErr: make(chan error, 1)}
	// The server sends serverinfo and userinfo first, or a close on failure.
	for c.serverInfo == nil || c.userInfo == nil {
		m, err := c.read()
		if err != nil {
			ws.Close()
			return nil, err
		}
		switch m["action"] {
		case "close":
			ws.Close()
			if m["msg"] == "tokenrequired" {
				return nil, errors.New("login needs a second factor: give its code with --token (a messaging code has just been sent, if you have a verified handle)")
			}
			return nil, fmt.Errorf("login refused (%v)", m["msg"])
		case "serverinfo":
			c.serverInfo, _ = m["serverinfo"].(map[string]any)
		case "userinfo":
			c.userInfo, _ = m["userinfo"].(map[string]any)
		}
	}
	go c.readLoop()
	return c, nil
}

func (c *client) read() (map[string]any, error) {
	_, b, err := c.ws.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("bad message from server: %w", err)
	}
	return m, nil
}

func (c *client) readLoop() {
	for {
		m, err := c.read()
		if err != nil {
			c.readErr <- err
			return
		}
		switch {
		case m["action"] == "event":
			if ev, ok := m["event"].(map[string]any); ok {
				select {
				case c.events <- ev:
				default: // a slow reader loses live events rather than stalling replies
				}
			}
		case m["responseid"] != nil:
			c.replies <- m
		}
	}
}

// call sends a request and waits for the reply carrying its responseid
// (server-lite echoes it on every reply, unlike MeshCentral).
func (c *client) call(ctx context.Context, req map[string]any) (map[string]any, error) {
	c.seq++
	id := fmt.Sprintf("cli-%d", c.seq)
	req["responseid"] = id
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	for {
		select {
		case m := <-c.replies:
			if m["responseid"] == id {
				return m, nil
			}
		case err := <-c.readErr:
			return nil, err
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for %v reply: %w", req["action"], ctx.Err())
		}
	}
}

// callAll is call for requests answered once per device; it collects n replies.
func (c *client) callAll(ctx context.Context, req map[string]any, n int) ([]map[string]any, error) {
	c.seq++
	id := fmt.Sprintf("cli-%d", c.seq)
	req["responseid"] = id
	b, _ := json.Marshal(req)
	if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, fmt.Errorf("send: %w", err)
	}
	var out []map[string]any
	for len(out) < n {
		select {
		case m := <-c.replies:
			if m["responseid"] == id {
				out = append(out, m)
			}
		case err := <-c.readErr:
			return out, err
		case <-ctx.Done():
			return out, fmt.Errorf("waiting for %v replies: %w", req["action"], ctx.Err())
		}
	}
	return out, nil
}

func (c *client) close() {
	c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	c.ws.Close()
}
