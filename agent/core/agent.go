// Package core is the agent process: its settings (.msh), identity, the
// control connection to agent.ashx and its lifecycle, and the post-
// authentication binary commands that manage the script core. It knows
// nothing of how a terminal, a file or a screen works.
//
// Wire reference: ../shared/protocol/control.md.
package core

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/agent/portfwd"
	"github.com/meshgo/meshagent/proto/agentupdate"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/reconnect"
	"github.com/meshgo/meshagent/proto/session"
)

// ScriptHost runs the JavaScript core that speaks the JSON control protocol
// (agent/script implements it). The agent owns the core's lifecycle
// (commands 10, 11, 16); the host owns the script runtime.
type ScriptHost interface {
	// Start runs src, replacing whatever runs now.
	Start(name string, src []byte) error
	// Deliver hands one JSON object from the server to the running script.
	Deliver(msg []byte)
	// Stop stops the running script, if any.
	Stop()
	// Running names the running script, "" if none.
	Running() string
}

// Config configures an Agent.
type Config struct {
	Settings *MSH
	Identity *Identity
	DataDir  string
	Logger   *slog.Logger
	// Host runs script cores; nil means the agent connects and answers the
	// server's binary commands but runs no script.
	Host ScriptHost
	// DefaultCore is the embedded core run when the server sends 16 and no
	// pushed core is stored.
	DefaultCore []byte

	AgentID      uint32 // 0: the C agent's id for this platform
	PlatformType uint32 // 0: detected
	Hostname     string // "": os.Hostname
	Temporary    bool   // `connect` mode: the server deletes the device on disconnect
	CommitDate   string // message 30; "": not sent
	HostInfo     string // message 31; "": detected

	HandshakeTimeout time.Duration // default 30 s: the server never gives up by itself
	DialTimeout      time.Duration // default 20 s, as the C agent
	IdleTimeout      time.Duration // default 120 s or .msh controlChannelIdleTimeout
	PongTimeout      time.Duration // default 10 s
	CoreWait         time.Duration // run a stored core if no 16 arrives; default 60 s
	BackoffMin       time.Duration // default 1 s
	BackoffMax       time.Duration // default 5 min
	// BackoffSpread spreads the first retry after an authenticated
	// connection ends over [BackoffMin, BackoffMin+BackoffSpread), so a
	// restarting server does not get all its agents back within one
	// second (proto/reconnect); default 5 s, negative: none.
	BackoffSpread time.Duration
	// BackoffRefusedMax caps the backoff window while the server refuses
	// TCP outright (nothing listens: restarting or down), which costs it
	// nothing; default reconnect.DefaultRefusedMax (15 s).
	BackoffRefusedMax time.Duration
	MaxMessage        int64 // post-auth frame limit, default 64 MiB

	// Sessions maps relay protocol numbers (session.Proto*) to their
	// handlers and upgrade policies; a protocol without a handler is
	// refused.
	Sessions map[int]Session
	// UpgradeSession, if set, wraps the relay channel of sessions whose
	// policy allows it, so the client can move them to a WebRTC data
	// channel as the policy says.
	UpgradeSession func(relay session.Channel, policy session.UpgradePolicy) session.Channel
	// Forwarder serves port-forwarding tunnels (tcpport/udpport); nil
	// means a default portfwd.Forwarder with the agent's Logger.
	Forwarder *portfwd.Forwarder
	// ConsentUI shows consent prompts, session notifications and the
	// privacy bar to the local user (package consent's seam, one per
	// platform); nil means none can be shown, so a session whose consent
	// bits ask for a prompt is denied unless auto-accept applies.
	ConsentUI consent.UI
	// Presence answers consent's auto-accept conditions; nil means
	// consent.System.
	Presence consent.Presence

	// OnEvent, if set, observes connection life-cycle events (tests,
	// benchmarks, the service status).
	OnEvent func(Event)

	// Updates, if set, serves server-lite's self-update exchange
	// ("meshgoupdate" JSON and its command-14 blocks; agent/update).
	// MeshCentral's own update (12-14) is refused either way.
	Updates Updates
}

// Updates is the self-update exchange as the control connection sees it
// (agent/update implements it); the agent only routes its messages.
type Updates interface {
	HandleJSON(c UpdateConn, msg []byte)
	HandleBlock(c UpdateConn, msg []byte)
	Disconnected(c UpdateConn)
	Authenticated()
}

// UpdateConn is one authenticated connection, for Updates.
type UpdateConn = agentupdate.Conn

// EventKind names a connection life-cycle event.
type EventKind int

const (
	EventDialing        EventKind = iota // starting a connection attempt
	EventAuthenticated                   // server sent 4: the agent is online
	EventDisconnected                    // a connection ended (Err says why)
	EventCoreStarted                     // a core started (Name)
	EventSessionEnded                    // a relay session ended (Name: its kind)
	EventSessionStarted                  // a relay session passed its checks and is served (Name: its kind)
)

func (k EventKind) String() string {
	return [...]string{"dialing", "authenticated", "disconnected", "core-started", "session-ended", "session-started"}[k]
}

// Event describes one life-cycle step.
type Event struct {
	Kind  EventKind
	URL   string
	Skip  bool          // authenticated through the skip path
	Err   error         // why a connection ended
	Delay time.Duration // for EventDisconnected: wait before the next attempt
	Name  string        // for EventCoreStarted
}

// Agent keeps one authenticated control connection to the server alive.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	servers []Server
	meshID  [handshake.HashLen]byte
	state   *state

	mu   sync.Mutex
	conn *controlConn // current authenticated connection, nil when offline

	coreMu sync.Mutex // serialises core installs and starts

	runCtx   context.Context // lives as long as Run: relay sessions use it
	sessions registry        // open relay sessions
	desktops desktops        // open desktop sessions: privacy bar, viewer metadata
}

// New validates the configuration and prepares an agent.
func New(cfg Config) (*Agent, error) {
	if cfg.Settings == nil || cfg.Identity == nil {
		return nil, errors.New("agent: settings and identity are required")
	}
	servers, err := cfg.Settings.Servers()
	if err != nil {
		return nil, err
	}
	meshID, err := cfg.Settings.MeshID()
	if err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	setDefault(&cfg.HandshakeTimeout, 30*time.Second)
	setDefault(&cfg.DialTimeout, 20*time.Second)
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = 120 * time.Second
		if s, err := strconv.Atoi(cfg.Settings.Get(MSHIdleTimeout)); err == nil && s > 0 {
			cfg.IdleTimeout = time.Duration(s) * time.Second
		}
	}
	setDefault(&cfg.PongTimeout, 10*time.Second)
	setDefault(&cfg.CoreWait, 60*time.Second)
	setDefault(&cfg.BackoffMin, time.Second)
	setDefault(&cfg.BackoffMax, 5*time.Minute)
	setDefault(&cfg.BackoffSpread, 5*time.Second)
	cfg.BackoffSpread = max(cfg.BackoffSpread, 0)
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = 64 << 20
	}
	if cfg.AgentID == 0 {
		cfg.AgentID = DefaultAgentID()
	}
	if cfg.PlatformType == 0 {
		cfg.PlatformType = DetectPlatformType()
	}
	if cfg.Hostname == "" {
		cfg.Hostname, _ = os.Hostname()
	}
	if cfg.HostInfo == "" {
		cfg.HostInfo = DetectHostInfo()
	}
	st, err := loadState(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	return &Agent{cfg: cfg, log: cfg.Logger, servers: servers, meshID: meshID, state: st}, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

func (a *Agent) emit(e Event) {
	if a.cfg.OnEvent != nil {
		a.cfg.OnEvent(e)
	}
}

// Capabilities returns the bits sent in AuthInfo: console and JavaScript
// always (the server asks for the core hash only with 0x10), temporary in
// connect mode, plus the .msh AgentCapabilities value.
func (a *Agent) Capabilities() uint32 {
	c := handshake.CapConsole | handshake.CapJavaScript
	if a.cfg.Temporary {
		c |= handshake.CapTemporary
	}
	if v := a.cfg.Settings.Get(MSHCapabilities); v != "" {
		if n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 32); err == nil {
			c |= uint32(n)
		}
	}
	return c
}

// Run connects, authenticates and serves the control channel until ctx is
// done, reconnecting with capped exponential backoff and jitter. It returns
// only when ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	a.runCtx = ctx
	stopCoreWait := a.startCoreWait(ctx)
	defer stopCoreWait()
	next := rand.IntN(len(a.servers)) // start at a random server, as the C agent
	bo := reconnect.Backoff{Min: a.cfg.BackoffMin, Max: a.cfg.BackoffMax, Spread: a.cfg.BackoffSpread, RefusedMax: a.cfg.BackoffRefusedMax}
	for {
		srv := a.servers[next]
		next = (next + 1) % len(a.servers)
		a.emit(Event{Kind: EventDialing, URL: srv.URL})
		authenticated, err := a.session(ctx, srv)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if authenticated {
			bo.Connected()
		}
		// A server that refused us busy says when to come back (server-lite
		// does under a reconnect storm; MeshCentral never does).
		delay := bo.NextAfter(err)
		a.log.Warn("control channel ended", "server", srv.URL, "err", err, "retry_in", delay.Round(time.Millisecond))
		a.emit(Event{Kind: EventDisconnected, URL: srv.URL, Err: err, Delay: delay})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

// SendJSON sends one JSON object to the server as a text frame. It fails
// when no authenticated connection is up: JSON is never sent before the
// server has proven itself.
func (a *Agent) SendJSON(msg []byte) error {
	a.mu.Lock()
	c := a.conn
	a.mu.Unlock()
	if c == nil {
		return errors.New("agent: not connected")
	}
	if !handshake.IsJSON(msg) {
		return errors.New("agent: not a JSON object")
	}
	return c.write(websocket.TextMessage, msg)
}

// controlConn is one WebSocket to agent.ashx.
type controlConn struct {
	url      string
	serverID [handshake.HashLen]byte // pinned for this server in the .msh
	certHash [handshake.HashLen]byte // H: what this connection pinned
	certKey  any                     // the TLS certificate's public key
	ws       *websocket.Conn
	writeMu  sync.Mutex
	lastRead atomic.Int64 // unix nanos
	// hashAsks counts the server's core hash requests (command 11) on this
	// connection; only the read loop touches it.
	hashAsks int
}

func (c *controlConn) write(typ int, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if err := c.ws.WriteMessage(typ, data); err != nil {
		return fmt.Errorf("control channel write: %w", err)
	}
	return nil
}

// SendJSON, SendBinary and ServerID make a controlConn an UpdateConn.
func (c *controlConn) SendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return c.write(websocket.TextMessage, b)
}

func (c *controlConn) SendBinary(msg []byte) error { return c.write(websocket.BinaryMessage, msg) }

func (c *controlConn) ServerID() [handshake.HashLen]byte { return c.serverID }

func (c *controlConn) send(msgs [][]byte) error {
	for _, m := range msgs {
		typ := websocket.BinaryMessage
		if handshake.IsJSON(m) {
			typ = websocket.TextMessage
		}
		if err := c.write(typ, m); err != nil {
			return err
		}
	}
	return nil
}

// dial opens the WebSocket and returns it with H, the hash of the TLS
// certificate the server presented on this very connection.
func (a *Agent) dial(ctx context.Context, srv Server) (*websocket.Conn, *x509.Certificate, error) {
	validate := a.cfg.Settings.Get(MSHValidateCert)
	d := websocket.Dialer{
		// A server-lite under a reconnect storm may refuse before TLS, in
		// plain HTTP with a Retry-After: the detector turns that into the
		// refusal the backoff honours.
		NetDialContext:   dialDetecting,
		HandshakeTimeout: a.cfg.DialTimeout,
		TLSClientConfig: &tls.Config{
			// Trust comes from the in-band handshake, which pins the
			// certificate presented here (control.md §3.1, §2.3).
			InsecureSkipVerify: validate != "1" && validate != "true",
			ClientSessionCache: sessionCache,
		},
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
	}
	if p := a.cfg.Settings.Get(MSHWebProxy); p != "" {
		pu, err := url.Parse(p)
		if err != nil {
			return nil, nil, fmt.Errorf("WebProxy %q: %w", p, err)
		}
		d.Proxy = http.ProxyURL(pu)
	}
	ws, resp, err := d.DialContext(ctx, srv.URL, nil)
	if err != nil {
		if r := reconnect.Refused(resp); r != nil {
			err = fmt.Errorf("%w (%w)", err, r)
		}
		return nil, nil, fmt.Errorf("connect %s: %w", srv.URL, err)
	}
	tc, ok := ws.NetConn().(*tls.Conn)
	if !ok {
		ws.Close()
		return nil, nil, fmt.Errorf("connect %s: not a TLS connection", srv.URL)
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		ws.Close()
		return nil, nil, fmt.Errorf("connect %s: server presented no certificate", srv.URL)
	}
	return ws, certs[0], nil
}

// dialDetecting dials TCP and wraps the connection in
// reconnect.DetectPlainRefusal.
func dialDetecting(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return reconnect.DetectPlainRefusal(c), nil
}

// sessionCache lets reconnects resume TLS sessions, which makes the skip
// path cheap for servers that support resumption.
var sessionCache = tls.NewLRUClientSessionCache(8)

// session runs one connection: dial, authenticate, serve. It reports
// whether the server authenticated the agent, and why the session ended.
func (a *Agent) session(ctx context.Context, srv Server) (authenticated bool, err error) {
	ws, leaf, err := a.dial(ctx, srv)
	if err != nil {
		return false, err
	}
	h := handshake.CertHash(leaf.Raw)
	c := &controlConn{ws: ws, url: srv.URL, serverID: srv.ID, certHash: h, certKey: leaf.PublicKey}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { ws.Close() })
	defer stop()
	defer ws.Close()

	hs, err := handshake.NewAgent(handshake.AgentConfig{
		Key: a.cfg.Identity.Key, CertDER: a.cfg.Identity.CertDER,
		ServerID: srv.ID, TLSCertHash: h, Trusted: a.state.trusted(srv.URL),
		Info: handshake.AuthInfo{
			InfoVersion: 1, AgentID: a.cfg.AgentID, PlatformType: a.cfg.PlatformType,
			MeshID: a.meshID, Capabilities: a.Capabilities(), Hostname: a.cfg.Hostname,
		},
		CommitDate: a.cfg.CommitDate, HostInfo: a.cfg.HostInfo,
		AgentName: a.cfg.Settings.Get(MSHAgentName),
	})
	if err != nil {
		return false, err
	}
	// Until the server proves itself, accept only small frames and give it
	// a bounded time: MeshCentral holds failed handshakes open forever.
	ws.SetReadLimit(64 << 10)
	deadline := time.Now().Add(a.cfg.HandshakeTimeout)
	ws.SetReadDeadline(deadline)
	if err := c.send(hs.Start()); err != nil {
		return false, err
	}
	for !hs.Done() {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			if time.Now().After(deadline) {
				return false, fmt.Errorf("handshake timed out after %v: %w", a.cfg.HandshakeTimeout, err)
			}
			return false, fmt.Errorf("handshake read: %w", err)
		}
		out, err := hs.Handle(msg)
		if err != nil {
			return false, fmt.Errorf("server failed authentication: %w", err)
		}
		if err := c.send(out); err != nil {
			return false, err
		}
	}
	if t := hs.Trust(); t != nil {
		if err := a.state.setTrusted(srv.URL, t); err != nil {
			a.log.Warn("cannot remember the server's certificate; next start takes the full path", "err", err)
		}
	}
	a.log.Info("authenticated", "server", srv.URL, "skip_path", hs.Skip(), "node_id", a.cfg.Identity.NodeIDString())
	a.emit(Event{Kind: EventAuthenticated, URL: srv.URL, Skip: hs.Skip()})
	if a.cfg.Updates != nil {
		a.cfg.Updates.Authenticated()
		defer a.cfg.Updates.Disconnected(c)
	}

	if err := c.write(websocket.BinaryMessage, handshake.EncodeTag(a.state.tag())); err != nil {
		return true, err
	}
	a.mu.Lock()
	a.conn = c
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		if a.conn == c {
			a.conn = nil
		}
		a.mu.Unlock()
	}()
	return true, a.serve(ctx, c)
}

// serve handles the authenticated channel: keep-alive and commands.
func (a *Agent) serve(ctx context.Context, c *controlConn) error {
	ws := c.ws
	ws.SetReadLimit(a.cfg.MaxMessage)
	touch := func() {
		now := time.Now()
		c.lastRead.Store(now.UnixNano())
		ws.SetReadDeadline(now.Add(a.cfg.IdleTimeout + a.cfg.PongTimeout))
	}
	touch()
	ws.SetPongHandler(func(string) error { touch(); return nil })
	ws.SetPingHandler(func(data string) error {
		touch()
		c.writeMu.Lock()
		defer c.writeMu.Unlock()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	// A running core learns of this connection from the server's
	// serverInfo message, which MeshCentral and server-lite send on every
	// connection once the core is current.
	go a.keepAlive(ctx, c)
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return fmt.Errorf("control channel read: %w", err)
		}
		touch()
		if handshake.IsJSON(msg) {
			if a.cfg.Updates != nil && agentupdate.IsUpdateMessage(msg) {
				a.cfg.Updates.HandleJSON(c, msg)
				continue
			}
			if !a.nativeJSON(msg) && a.cfg.Host != nil {
				a.cfg.Host.Deliver(msg)
			}
			continue
		}
		if err := a.command(c, msg); err != nil {
			return err
		}
	}
}

// keepAlive sends a WebSocket ping after IdleTimeout without traffic, as
// the C agent does (control.md §9.1); the read deadline ends a connection
// whose pong does not come back.
func (a *Agent) keepAlive(ctx context.Context, c *controlConn) {
	for {
		last := time.Unix(0, c.lastRead.Load())
		wait := time.Until(last.Add(a.cfg.IdleTimeout))
		if wait <= 0 {
			c.writeMu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(5*time.Second))
			c.writeMu.Unlock()
			if err != nil {
				return
			}
			wait = a.cfg.IdleTimeout
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// nativeJSON serves the JSON requests the agent handles itself, whatever
// the script core does, and reports whether msg was one: msg/tunnel and
// msg/endtunnel. Relay sessions are native (URL check, certificate
// pinning, rights and consent all in OpenTunnel), so routing them through
// the script core would only add two JSON passes and make every session
// depend on a live core within its time budget; endtunnel acts on the
// session registry, which only the core has. Scripts can still open
// tunnels themselves (the script API's tunnel.open).
func (a *Agent) nativeJSON(msg []byte) bool {
	if !bytes.Contains(msg, []byte(`tunnel"`)) {
		return false // cheap: most messages are not tunnels
	}
	var m struct {
		Action string `json:"action"`
		Type   string `json:"type"`
	}
	if json.Unmarshal(msg, &m) != nil || m.Action != "msg" {
		return false
	}
	switch m.Type {
	case "tunnel":
		if err := a.OpenTunnel(msg); err != nil {
			a.log.Warn("tunnel request refused", "err", err)
		}
	case "endtunnel":
		if err := a.EndTunnel(msg); err != nil {
			a.log.Warn("endtunnel refused", "err", err)
		}
	default:
		return false
	}
	return true
}

var zeroHash [handshake.HashLen]byte

// command handles one post-authentication binary command (control.md §5).
// Malformed commands are logged and ignored, like the C agent; only write
// errors end the connection.
func (a *Agent) command(c *controlConn, msg []byte) error {
	cmd, req, payload, err := handshake.DecodeRequest(msg)
	if err != nil {
		a.log.Warn("ignoring malformed command", "err", err)
		return nil
	}
	reply := func(cmd uint16, payload []byte) error {
		return c.write(websocket.BinaryMessage, handshake.EncodeRequest(cmd, req, payload))
	}
	switch {
	case cmd < handshake.CmdCoreModule:
		a.log.Debug("ignoring handshake command after authentication", "cmd", cmd)
		return nil
	case cmd == handshake.CmdCoreModuleHash:
		h := a.coreHash()
		c.hashAsks++
		if c.hashAsks > 1 && string(h) == string(zeroHash[:]) {
			// MeshCentral asks once per connection; asking again means an
			// administrator pushed its default, recovery or tiny core
			// from the console menu. The zero hash keeps ours, as designed.
			a.errorLog(coreKeptText)
		}
		return reply(handshake.CmdCoreModuleHash, h)
	case cmd == handshake.CmdAgentHash:
		// All zero: never update this binary (control.md §5.4).
		return reply(handshake.CmdAgentHash, zeroHash[:])
	case cmd == handshake.CmdCoreModule:
		return reply(handshake.CmdCoreModuleHash, a.installCore(payload))
	case cmd == handshake.CmdCoreOK:
		a.runCore("server said the core is current")
		return nil
	case cmd == handshake.CmdAgentUpdateBlock && req == 1 && a.cfg.Updates != nil:
		// A block of server-lite's update, which only flows after this
		// agent requested it; the updater ignores any other.
		a.cfg.Updates.HandleBlock(c, msg)
		return nil
	case cmd == handshake.CmdAgentUpdate || cmd == handshake.CmdAgentUpdateBlock:
		a.log.Warn("ignoring agent update: MeshCentral would install its C agent over this one; this agent updates through server-lite or its installer", "cmd", cmd)
		return nil
	case cmd == handshake.CmdCompressedCore:
		a.log.Warn("ignoring compressed core (command 20): not supported, MeshCentral 1.1.55 never sends it")
		return nil
	default:
		a.log.Debug("ignoring unknown command", "cmd", cmd, "len", len(payload))
		return nil
	}
}

// coreKeptText is the agent error log's line for a core push that
// changes nothing.
const coreKeptText = "core update not applied: this agent runs its own core (meshgo) and reports a zero core hash by design, " +
	"so MeshCentral's default, recovery and tiny cores are not installed; a custom core must be written for this agent's script API (scripts/README.md)"

// errorLog sends one line to the server's agent error log
// ({"action":"errorlog"}, written by MeshCentral to agenterrorlogs.txt
// when its settings have agentLogDump) and to the local log.
func (a *Agent) errorLog(text string) {
	a.log.Warn(text)
	b, _ := json.Marshal(map[string]any{"action": "errorlog", "log": []map[string]any{{"t": time.Now().UnixMilli(), "m": text}}})
	a.SendJSON(b)
}

// coreHash answers command 11: the stored pushed core's hash, or 48 zero
// bytes meaning "I run my own core, do not replace it" (control.md §5.3).
func (a *Agent) coreHash() []byte {
	a.coreMu.Lock()
	defer a.coreMu.Unlock()
	return a.coreHashLocked()
}

func (a *Agent) coreHashLocked() []byte {
	if a.cfg.Settings.Get(MSHNoUpdateCore) == "" {
		if _, h, ok := a.state.core(); ok {
			return h[:]
		}
	}
	return zeroHash[:]
}

// installCore handles command 10: an empty payload clears the core; else
// the payload is a 48-byte hash and the core, which runs only if its
// SHA-384 matches. It returns the hash to report back.
func (a *Agent) installCore(payload []byte) []byte {
	a.coreMu.Lock()
	defer a.coreMu.Unlock()
	if len(payload) == 0 {
		if err := a.state.clearCore(); err != nil {
			a.log.Error("cannot delete the stored core", "err", err)
		}
		if a.cfg.Host != nil {
			a.cfg.Host.Stop()
		}
		a.log.Info("server cleared the core")
		return nil
	}
	if len(payload) < handshake.HashLen+4 {
		a.log.Warn("refusing core push: payload too short", "len", len(payload))
		return a.coreHashLocked()
	}
	want, core := payload[:handshake.HashLen], payload[handshake.HashLen:]
	got := sha512.Sum384(core)
	if string(got[:]) != string(want) {
		a.log.Warn("refusing core push: hash does not match its content", "announced", fmt.Sprintf("%x", want[:6]), "actual", fmt.Sprintf("%x", got[:6]))
		return a.coreHashLocked()
	}
	if _, h, ok := a.state.core(); ok && h == got && a.cfg.Host != nil && a.cfg.Host.Running() != "" {
		return got[:]
	}
	if err := a.state.setCore(core); err != nil {
		a.log.Error("cannot store the pushed core; running it anyway", "err", err)
	}
	a.startHost("pushed core "+fmt.Sprintf("%x", got[:6]), core[4:])
	return got[:]
}

// runCore starts the stored core, or the embedded one, unless a core runs.
func (a *Agent) runCore(why string) {
	a.log.Debug("core start requested", "why", why)
	a.coreMu.Lock()
	defer a.coreMu.Unlock()
	if a.cfg.Host == nil || a.cfg.Host.Running() != "" {
		return
	}
	if payload, h, ok := a.state.core(); ok && a.cfg.Settings.Get(MSHNoUpdateCore) == "" {
		a.startHost("stored core "+fmt.Sprintf("%x", h[:6]), payload[4:])
		return
	}
	if len(a.cfg.DefaultCore) > 0 {
		a.startHost("default core", a.cfg.DefaultCore)
	}
}

func (a *Agent) startHost(name string, src []byte) {
	if a.cfg.Host == nil {
		return
	}
	if err := a.cfg.Host.Start(name, src); err != nil {
		a.log.Error("core failed to start", "core", name, "err", err)
		return
	}
	a.log.Info("core started", "core", name)
	a.emit(Event{Kind: EventCoreStarted, Name: name})
}

// startCoreWait runs the core after CoreWait even if no server ever sends
// 16, as the C agent does with its cached core (control.md §5.3).
func (a *Agent) startCoreWait(ctx context.Context) func() {
	t := time.AfterFunc(a.cfg.CoreWait, func() {
		if ctx.Err() == nil {
			a.runCore("no word from the server")
		}
	})
	return func() { t.Stop() }
}
