// Package agentconn is server-lite's agent.ashx: the TLS WebSocket where
// agents (the C MeshAgent and ours) authenticate with the server role of
// proto/handshake, get their core, and exchange JSON with the server.
//
// It is also the registry of connected agents: the admin API lists them,
// sends them JSON (SendJSON), subscribes to what they send (Subscribe) and
// pushes scripts (PushCore, PushCoreAll).
//
// Unlike MeshCentral, which holds a misbehaving connection open forever
// (control.md §4.14), every handshake error, timeout or oversized frame
// disconnects with a logged reason, and a duplicate agent's old socket is
// actually closed (§9.4).
package agentconn

import (
	"bytes"
	"context"
	"crypto/sha512"
	"crypto/subtle"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/store"
)

//go:embed tinycore.js
var builtinCore []byte

// BuiltinCore returns the small core pushed when no other is configured.
func BuiltinCore() []byte { return append([]byte(nil), builtinCore...) }

// Defaults for Config's zero values.
const (
	DefaultHandshakeTimeout = 30 * time.Second
	// DefaultIdleTimeout is how long an authenticated agent may stay silent.
	// The C agent pings after 120 s of silence (control.md §9.1).
	DefaultIdleTimeout  = 180 * time.Second
	DefaultPreAuthLimit = 64 << 10
	DefaultMaxMessage   = 16 << 20
	writeTimeout        = 30 * time.Second
	// maxCorePushes stops a push loop with a core that never reports the
	// announced hash, as MeshCentral does (control.md §5.3).
	maxCorePushes = 5
)

// Config configures the agent endpoint.
type Config struct {
	Certs *certs.Set
	Store *store.Store
	Log   *slog.Logger
	// DefaultCore is the script pushed to agents whose core hash differs
	// (without the 4-byte prefix; the server adds it). nil = BuiltinCore.
	DefaultCore      []byte
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	PreAuthLimit     int64 // largest frame accepted before authentication
	MaxMessage       int64 // largest frame accepted afterwards
}

// Kind of event delivered to subscribers.
type Kind int

const (
	Connected Kind = iota + 1
	Disconnected
	Message // a JSON message from the agent
)

// Event is what subscribers receive.
type Event struct {
	Kind   Kind
	NodeID string
	Agent  AgentInfo       // snapshot at the time of the event
	Action string          // Message: the JSON "action"
	Data   json.RawMessage // Message: the agent's JSON object, not to be modified
	Reason string          // Disconnected: why
}

// AgentInfo describes one connected agent.
type AgentInfo struct {
	NodeID    string
	GroupID   string
	Name      string
	Hostname  string
	AgentID   uint32 // ARCHID from AuthInfo
	Caps      uint32
	Remote    string
	Connected time.Time
	Skip      bool // authenticated on the skip path
	// CoreHash is the hex hash the agent reported for its core: "" before it
	// answered or when it has none, 96 zeros for a local core it will not
	// let us replace (our Go agent's embedded core).
	CoreHash string
	CoreName string // from coreinfo "value"
	// Flavor is a guess from what the agent sent: "local-core" when it
	// reports the zero core hash (our agent), "js-core" when it takes
	// pushed cores (the C agent), "" until known.
	Flavor string
}

// Server is the agent endpoint and registry.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	corePayload []byte // 4 zero bytes + script
	coreHash    [handshake.HashLen]byte

	wg     sync.WaitGroup // serve goroutines
	mu     sync.RWMutex
	conns  map[string]*conn
	subs   map[int]func(Event)
	nextID int
	closed bool // Shutdown began: no new sessions (wg.Add must not race wg.Wait)
}

var writePool sync.Pool

// New builds the endpoint. Mount it at /agent.ashx.
func New(cfg Config) *Server {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.PreAuthLimit == 0 {
		cfg.PreAuthLimit = DefaultPreAuthLimit
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.DefaultCore == nil {
		cfg.DefaultCore = builtinCore
	}
	s := &Server{
		cfg: cfg,
		log: cfg.Log.With("component", "agent.ashx"),
		// Small per-connection buffers and a shared write pool: most of
		// thousands of connections are idle, and each buffer is paid for
		// per agent (design target: < 20 kB per connected agent).
		upgrader: websocket.Upgrader{
			// 256 bytes covers a control frame (125) and most JSON;
			// larger frames are read straight through.
			ReadBufferSize:   256,
			WriteBufferSize:  4096,
			WriteBufferPool:  &writePool,
			HandshakeTimeout: 20 * time.Second,
			CheckOrigin:      func(*http.Request) bool { return true },
		},
		conns: map[string]*conn{},
		subs:  map[int]func(Event){},
	}
	s.corePayload, s.coreHash = CorePayload(cfg.DefaultCore)
	return s
}

// CorePayload builds the command-10 payload MeshCentral uses: 4 zero bytes
// then the script, and its hash: SHA-384 of the whole payload (control.md §5.3).
func CorePayload(script []byte) ([]byte, [handshake.HashLen]byte) {
	p := make([]byte, 4, 4+len(script))
	p = append(p, script...)
	return p, sha512.Sum384(p)
}

// DefaultCoreHash returns the hex hash agents report once they run the
// default core.
func (s *Server) DefaultCoreHash() string { return hex.EncodeToString(s.coreHash[:]) }

// Subscribe registers fn for every connect, disconnect and JSON message from
// any agent. fn runs on the connection's goroutine: it must not block (hand
// work to a channel or goroutine) and must not retain Data after returning
// unless it copies it. The returned function unsubscribes.
func (s *Server) Subscribe(fn func(Event)) (cancel func()) {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.subs[id] = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

func (s *Server) publish(e Event) {
	s.mu.RLock()
	fns := make([]func(Event), 0, len(s.subs))
	for _, f := range s.subs {
		fns = append(fns, f)
	}
	s.mu.RUnlock()
	for _, f := range fns {
		f(e)
	}
}

// Agents lists connected, authenticated agents, sorted by node id.
func (s *Server) Agents() []AgentInfo {
	s.mu.RLock()
	out := make([]AgentInfo, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c.snapshot())
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Agent returns one connected agent.
func (s *Server) Agent(nodeID string) (AgentInfo, bool) {
	c := s.lookup(nodeID)
	if c == nil {
		return AgentInfo{}, false
	}
	return c.snapshot(), true
}

// ErrNotConnected is returned when the node has no live connection.
var ErrNotConnected = errors.New("agentconn: agent not connected")

func (s *Server) lookup(nodeID string) *conn {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.conns[nodeID]
}

// SendJSON marshals v and sends it to the agent as one frame. Binary frames
// are what MeshCentral sends and both agents accept (control.md §3.2).
func (s *Server) SendJSON(nodeID string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("agentconn: marshal: %w", err)
	}
	if !handshake.IsJSON(b) {
		return errors.New("agentconn: SendJSON needs a JSON object")
	}
	c := s.lookup(nodeID)
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, nodeID)
	}
	return c.write(b)
}

// Disconnect closes a node's connection.
func (s *Server) Disconnect(nodeID, reason string) error {
	c := s.lookup(nodeID)
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, nodeID)
	}
	c.close(reason)
	return nil
}

// PushCore sends script as the node's core (command 10) and pins its hash
// in the device record, so the agent keeps it across reconnects instead of
// being sent the default again. who is recorded in the event log.
func (s *Server) PushCore(nodeID string, script []byte, who string) error {
	c := s.lookup(nodeID)
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, nodeID)
	}
	payload, hash := CorePayload(script)
	h := hex.EncodeToString(hash[:])
	s.cfg.Store.Flush() // the device record may still be queued
	if _, err := s.cfg.Store.UpdateDevice(nodeID, func(d *store.Device, _ bool) error {
		d.PinnedCoreHash = h
		return nil
	}, store.Event{Kind: store.EvCorePush, Who: who, NodeID: nodeID, Action: "custom core", Msg: fmt.Sprintf("%d bytes, sha384 %s", len(script), h[:16])}); err != nil {
		return fmt.Errorf("agentconn: pin core: %w", err)
	}
	c.mu.Lock()
	c.pinned = h
	c.mu.Unlock()
	return c.write(handshake.EncodeRequest(handshake.CmdCoreModule, 0, append(hash[:], payload...)))
}

// PushCoreAll pushes script to every connected agent and returns how many
// accepted the write.
func (s *Server) PushCoreAll(script []byte, who string) int {
	n := 0
	for _, a := range s.Agents() {
		if err := s.PushCore(a.NodeID, script, who); err == nil {
			n++
		} else {
			s.log.Warn("core push failed", "node", a.NodeID, "err", err)
		}
	}
	return n
}

// ResetCore removes a pinned custom core: on its next core check the agent
// gets the default again.
func (s *Server) ResetCore(nodeID, who string) error {
	s.cfg.Store.Flush()
	_, err := s.cfg.Store.UpdateDevice(nodeID, func(d *store.Device, found bool) error {
		if !found {
			return fmt.Errorf("%w: %s", store.ErrNotFound, nodeID)
		}
		d.PinnedCoreHash = ""
		return nil
	}, store.Event{Kind: store.EvCorePush, Who: who, NodeID: nodeID, Action: "reset core"})
	if c := s.lookup(nodeID); c != nil {
		c.mu.Lock()
		c.pinned = ""
		c.mu.Unlock()
		c.write(handshake.EncodeRequest(handshake.CmdCoreModuleHash, 0, nil))
	}
	return err
}

// register makes c the live connection of its node and returns the one it
// replaced, if any.
func (s *Server) register(c *conn) *conn {
	s.mu.Lock()
	old := s.conns[c.nodeID]
	s.conns[c.nodeID] = c
	closed := s.closed
	s.mu.Unlock()
	if closed {
		// Shutdown began after this session did and did not see it: close
		// it here, or Shutdown would wait for the agent to hang up.
		c.close(reasonShutdown)
	}
	return old
}

// unregister removes c if it is still the node's live connection.
func (s *Server) unregister(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns[c.nodeID] == c {
		delete(s.conns, c.nodeID)
		return true
	}
	return false
}

// ServeHTTP upgrades to WebSocket and runs one agent connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		// The handshake signs the TLS certificate hash; without TLS an
		// agent cannot authenticate the server (control.md §3.1).
		http.Error(w, "agent.ashx needs TLS", http.StatusBadRequest)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := &conn{s: s, ws: ws, remote: r.RemoteAddr, started: time.Now()}
	c.run()
}

// conn is one agent connection. Its goroutine (the HTTP handler's) is the
// only reader; writers serialise on wmu.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	remote  string
	started time.Time

	wmu sync.Mutex

	// Set once at authentication, read-only afterwards.
	nodeID  string
	groupID string
	res     handshake.ServerResult

	mu       sync.Mutex
	name     string
	caps     uint32
	coreHash string
	coreName string
	// savedCoreHash is the core hash in the device record, to skip
	// rewriting it unchanged.
	savedCoreHash string
	sysInfoHash   string // of the stored sysinfo, sent in the sysinfo request
	pinned        string
	pushes        int
	closeOnce     sync.Once
	reason        string

	in inbox // messages read, waiting to be handled
}

func (c *conn) snapshot() AgentInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := AgentInfo{
		NodeID: c.nodeID, GroupID: c.groupID, Name: c.name, Hostname: c.res.Info.Hostname,
		AgentID: c.res.Info.AgentID, Caps: c.caps, Remote: c.remote, Connected: c.started,
		Skip: c.res.Skip, CoreHash: c.coreHash, CoreName: c.coreName,
	}
	switch {
	case c.coreHash == zeroHashHex:
		a.Flavor = "local-core"
	case c.coreHash != "" || c.pushes > 0:
		a.Flavor = "js-core"
	}
	return a
}

var zeroHashHex = strings.Repeat("0", 2*handshake.HashLen)

func (c *conn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	// Server-side WriteMessage emits exactly one unfragmented frame, which
	// the C agent needs for anything over 64 KiB (control.md §3.2).
	if err := c.ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		c.close("write failed: " + err.Error())
		return fmt.Errorf("agentconn: write to %s: %w", c.nodeID, err)
	}
	return nil
}

func (c *conn) close(reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.reason = reason
		c.mu.Unlock()
		c.ws.Close()
	})
}

func (c *conn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// run authenticates the agent and starts its session on the HTTP
// handler's goroutine, then moves the long-lived read loop to a fresh
// goroutine and returns.
//
// Memory per idle agent (target: < 20 kB) is mostly that read loop's
// stack: a goroutine blocked in a WebSocket read over TLS needs 4 KB, but
// one that ever ran the deeper work (TLS and RSA, JSON, the store, logging,
// writing a pong) keeps 8 KB, as the runtime only halves a stack that is
// less than a quarter used. So the read loop only reads; what it reads is
// handled, in order, on a short-lived goroutine (see inbox).
func (c *conn) run() {
	if err := c.handshake(); err != nil {
		c.s.log.Info("agent disconnected during handshake", "remote", c.remote, "reason", err)
		c.close(err.Error())
		return
	}
	c.res.Cert = nil // parsed certificate: not needed once verified
	c.s.mu.Lock()
	if c.s.closed {
		c.s.mu.Unlock()
		c.close(reasonShutdown)
		return
	}
	c.s.wg.Add(1)
	c.s.mu.Unlock()
	if err := c.startSession(); err != nil {
		c.s.log.Warn("agent refused after authentication", "remote", c.remote, "node", c.nodeID, "reason", err)
		c.close(err.Error())
		c.finish()
		c.s.wg.Done()
		return
	}
	go func() {
		defer c.s.wg.Done()
		c.serve()
	}()
}

// Shutdown closes every agent connection and waits until each has recorded
// its disconnect.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close(reasonShutdown)
	}
	s.wg.Wait()
}

// serve is the read loop. It ends when the connection does, once every
// message read before has been handled.
func (c *conn) serve() {
	defer c.finish()
	c.ws.SetReadLimit(c.s.cfg.MaxMessage)
	c.ws.SetPingHandler(func(data string) error {
		c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
		c.in.put(c, item{pong: true, data: []byte(data)})
		return nil
	})
	for {
		c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			c.close(readReason(err))
			return
		}
		c.in.put(c, item{data: msg})
	}
}

// finish records the end of the connection: it waits for queued messages
// to be handled, so subscribers see them before the disconnect, then
// unregisters the agent if this is still its live connection.
func (c *conn) finish() {
	c.in.wait()
	reason := c.closeReason()
	if reason == "" {
		reason = "closed"
	}
	c.close(reason)
	current := c.s.unregister(c)
	// The event log keeps every disconnect with its reason. The console
	// gets the ones the server caused (a limit, a bad message, a failed
	// write, a timeout); ordinary goodbyes, a line per agent when thousands
	// reconnect, are Debug.
	level := slog.LevelInfo
	switch reason {
	case reasonAgentClosed, reasonShutdown, reasonReplaced:
		level = slog.LevelDebug
	}
	c.s.log.Log(context.Background(), level, "agent disconnected", "remote", c.remote, "node", c.nodeID, "reason", reason, "seconds", int(time.Since(c.started).Seconds()))
	if current {
		now := time.Now().UTC()
		c.s.cfg.Store.UpdateDeviceAsync(c.nodeID, func(d *store.Device, _ bool) error {
			d.LastSeen = now
			return nil
		}, store.Event{Kind: store.EvDisconnect, Who: c.nodeID, NodeID: c.nodeID, From: c.remote, Msg: reason})
		c.s.publish(Event{Kind: Disconnected, NodeID: c.nodeID, Agent: c.snapshot(), Reason: reason})
	}
}

// item is one thing the read loop hands over: a message, or a ping to
// answer.
type item struct {
	data []byte
	pong bool
}

// maxQueued bounds what the read loop may read ahead of the handler: an
// agent that sends faster than its messages are handled is no longer read
// (TCP back pressure) rather than queued without limit.
const maxQueued = 32

// inbox hands items from the read loop to a handler goroutine that exists
// only while items are queued, so an idle agent costs no second goroutine
// and its read loop's stack stays small. Items are handled in order.
type inbox struct {
	mu      sync.Mutex
	items   []item
	running bool
	failed  bool          // a handler error closed the connection: drop the rest
	room    chan struct{} // closed when the reader, waiting for room, may go on
	idle    chan struct{} // closed when the handler goroutine stops
}

// put queues it, starting the handler goroutine if none runs, and blocks
// while maxQueued items are waiting.
func (in *inbox) put(c *conn, it item) {
	in.mu.Lock()
	for len(in.items) >= maxQueued {
		ch := make(chan struct{})
		in.room = ch
		in.mu.Unlock()
		<-ch
		in.mu.Lock()
	}
	in.items = append(in.items, it)
	if !in.running {
		in.running = true
		in.idle = make(chan struct{})
		go in.drain(c)
	}
	in.mu.Unlock()
}

func (in *inbox) drain(c *conn) {
	for {
		in.mu.Lock()
		if len(in.items) == 0 {
			in.running = false
			in.items = nil // an idle agent keeps no queue
			close(in.idle)
			in.mu.Unlock()
			return
		}
		it := in.items[0]
		in.items[0] = item{}
		in.items = in.items[1:]
		failed := in.failed
		if in.room != nil {
			close(in.room)
			in.room = nil
		}
		in.mu.Unlock()
		if failed {
			continue
		}
		if err := c.handleItem(it); err != nil {
			in.mu.Lock()
			in.failed = true
			in.mu.Unlock()
			c.close(err.Error())
		}
	}
}

// wait returns once no handler goroutine runs.
func (in *inbox) wait() {
	in.mu.Lock()
	idle, running := in.idle, in.running
	in.mu.Unlock()
	if running {
		<-idle
	}
}

func (c *conn) handleItem(it item) error {
	if !it.pong {
		return c.handle(it.data)
	}
	// WriteControl may run beside other writes (gorilla/websocket).
	err := c.ws.WriteControl(websocket.PongMessage, it.data, time.Now().Add(5*time.Second))
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	return err
}

// Disconnect reasons that are no fault of either side.
const (
	reasonAgentClosed = "agent closed the connection"
	reasonShutdown    = "server shutting down"
	reasonReplaced    = "replaced by a newer connection of the same agent"
)

func readReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return "frame over the size limit"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived, websocket.CloseAbnormalClosure):
		return reasonAgentClosed
	}
	return "read: " + err.Error()
}

// handshake runs the server role of proto/handshake to completion.
func (c *conn) handshake() error {
	web := c.s.cfg.Certs.WebCertHash
	hs, err := handshake.NewServer(handshake.ServerConfig{
		Key:     c.s.cfg.Certs.AgentKey,
		CertDER: c.s.cfg.Certs.AgentCert,
		AcceptHash: func(h [handshake.HashLen]byte) bool {
			return subtle.ConstantTimeCompare(h[:], web[:]) == 1
		},
	})
	if err != nil {
		return err
	}
	c.ws.SetReadLimit(c.s.cfg.PreAuthLimit)
	c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.HandshakeTimeout))
	for !hs.Authenticated() {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return errors.New(readReason(err))
		}
		out, err := hs.Handle(msg)
		if err != nil {
			return err
		}
		for _, m := range out {
			if err := c.write(m); err != nil {
				return err
			}
		}
	}
	c.res = hs.Result()
	c.nodeID = handshake.NodeIDPrefix + handshake.EncodeID(c.res.NodeID[:])
	return nil
}

// startSession registers the device, makes this the node's live
// connection, sends 4 and starts the core check (control.md §4.13, §5.2).
func (c *conn) startSession() error {
	st := c.s.cfg.Store
	info := c.res.Info
	groupID := handshake.MeshIDPrefix + info.MeshKeyID()
	existing, err := st.Device(c.nodeID)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if found && existing.GroupID != "" {
		groupID = existing.GroupID // the server's record wins (§4.13)
	}
	g, err := st.Group(groupID)
	if err != nil || g.MType != store.MeshTypeAgent {
		return fmt.Errorf("unknown device group %s", groupID)
	}
	now := time.Now().UTC()
	ip, _, _ := net.SplitHostPort(c.remote)
	name := existing.Name
	if !found {
		name = c.res.AgentName
		if name == "" {
			name = info.Hostname
		}
	}
	// Queued, not awaited: in a reconnect storm thousands of these share one
	// commit instead of paying an fsync each before message 4.
	st.UpdateDeviceAsync(c.nodeID, func(d *store.Device, found bool) error {
		if !found || d.GroupID == "" {
			d.GroupID = groupID
			d.Name = name
			d.Icon = info.PlatformType
			if d.Icon < 1 || d.Icon > 8 {
				d.Icon = 1
			}
			d.FirstConnect = now
		}
		d.RName = info.Hostname
		d.AgentID, d.AgentVersion = info.AgentID, info.AgentVersion
		d.Caps = info.Capabilities
		d.CommitDate, d.HostInfo = c.res.CommitDate, c.res.HostInfo
		d.IP = ip
		d.LastConnect, d.LastSeen = now, now
		return nil
	}, store.Event{Kind: store.EvConnect, Who: c.nodeID, NodeID: c.nodeID, From: c.remote,
		Msg: fmt.Sprintf("agent id %d caps %#x skip=%v", info.AgentID, info.Capabilities, c.res.Skip)})
	c.groupID = groupID
	c.mu.Lock()
	c.name, c.caps, c.pinned, c.savedCoreHash = name, info.Capabilities, existing.PinnedCoreHash, existing.CoreHash
	c.sysInfoHash = existing.SysInfoHash
	c.mu.Unlock()

	if old := c.s.register(c); old != nil {
		c.s.log.Info("duplicate agent: closing the older connection", "node", c.nodeID, "old", old.remote, "new", c.remote)
		old.close(reasonReplaced)
	}
	// A new device is news for the console; reconnects are in the event
	// log (a formatted line costs ~40 µs, a fifth of a reconnect's CPU
	// beyond TLS and the signature check).
	level := slog.LevelDebug
	if !found {
		level = slog.LevelInfo
	}
	c.s.log.Log(context.Background(), level, "agent connected", "node", c.nodeID, "remote", c.remote, "name", name, "agentId", info.AgentID, "caps", fmt.Sprintf("%#x", info.Capabilities), "skip", c.res.Skip, "new", !found)
	c.s.publish(Event{Kind: Connected, NodeID: c.nodeID, Agent: c.snapshot()})

	if err := c.write(handshake.EncodeConfirm()); err != nil {
		return err
	}
	// We never update agent binaries, so unlike MeshCentral we do not ask
	// for the agent hash (12). Agents that run JavaScript get a core check.
	if info.Capabilities&handshake.CapJavaScript != 0 {
		return c.write(handshake.EncodeRequest(handshake.CmdCoreModuleHash, 0, nil))
	}
	return c.coreStable()
}

// coreStable starts the JSON conversation (control.md §6.2): ask for
// sysinfo and send serverInfo, as MeshCentral does on every connection;
// cores use serverInfo to announce themselves again after a reconnect.
func (c *conn) coreStable() error {
	c.mu.Lock()
	h := c.sysInfoHash
	c.mu.Unlock()
	req := []byte(`{"action":"sysinfo"}`)
	if h != "" {
		// With the stored hash an agent whose system information has not
		// changed does not send it again (control.md §6.2).
		req, _ = json.Marshal(map[string]string{"action": "sysinfo", "hash": h})
	}
	if err := c.write(req); err != nil {
		return err
	}
	return c.write([]byte(`{"action":"serverInfo"}`))
}

// handle processes one message after authentication.
func (c *conn) handle(msg []byte) error {
	if handshake.IsJSON(msg) {
		return c.handleJSON(msg)
	}
	cmd, err := handshake.Command(msg)
	if err != nil {
		return nil // MeshCentral ignores messages shorter than 2 bytes
	}
	switch cmd {
	case handshake.CmdAgentTag:
		tag := strings.TrimRight(string(msg[2:]), "\x00")
		if len(tag) > 4096 {
			tag = tag[:4096]
		}
		c.s.cfg.Store.UpdateDeviceAsync(c.nodeID, func(d *store.Device, _ bool) error {
			d.Tag = strings.SplitN(tag, "\n", 2)[0]
			return nil
		})
		return nil
	case handshake.CmdCoreModuleHash:
		_, _, payload, err := handshake.DecodeRequest(msg)
		if err != nil {
			return err
		}
		return c.coreHashReply(payload)
	case handshake.CmdAgentHash, handshake.CmdAgentUpdateBlock:
		return nil // we never update agents
	default:
		c.s.log.Debug("ignored command", "node", c.nodeID, "cmd", cmd, "len", len(msg))
		return nil
	}
}

// coreHashReply decides, from the hash the agent reports, whether to push
// the core (10) or confirm it (16) (control.md §5.2).
func (c *conn) coreHashReply(payload []byte) error {
	var h string
	switch len(payload) {
	case 0:
	case handshake.HashLen:
		h = hex.EncodeToString(payload)
	default:
		return fmt.Errorf("core hash reply of %d bytes", len(payload))
	}
	c.mu.Lock()
	changed := c.savedCoreHash != h
	c.coreHash, c.savedCoreHash = h, h
	pinned := c.pinned
	pushes := c.pushes
	c.mu.Unlock()
	if changed {
		// Only when it differs from the record: a reconnect storm should
		// cost one store write per agent, not two.
		c.s.cfg.Store.UpdateDeviceAsync(c.nodeID, func(d *store.Device, _ bool) error { d.CoreHash = h; return nil })
	}

	c.s.log.Debug("agent core hash", "node", c.nodeID, "hash", shortHash(h))
	current := h == zeroHashHex || (h != "" && (h == pinned || (pinned == "" && bytes.Equal(payload, c.s.coreHash[:]))))
	if current {
		if err := c.write(handshake.EncodeRequest(handshake.CmdCoreOK, 0, nil)); err != nil {
			return err
		}
		return c.coreStable()
	}
	if pushes >= maxCorePushes {
		c.s.log.Warn("agent keeps reporting another core hash; giving up pushing", "node", c.nodeID, "hash", h)
		return nil
	}
	c.mu.Lock()
	c.pushes++
	c.mu.Unlock()
	c.s.log.Info("pushing default core", "node", c.nodeID, "bytes", len(c.s.corePayload), "agentHash", shortHash(h))
	c.s.cfg.Store.AppendEventAsync(store.Event{Kind: store.EvCorePush, Who: "server", NodeID: c.nodeID, Action: "default core", Msg: fmt.Sprintf("%d bytes", len(c.s.corePayload))})
	return c.write(handshake.EncodeRequest(handshake.CmdCoreModule, 0, append(c.s.coreHash[:], c.s.corePayload...)))
}

// coreInfoKey is what a coreinfo message may change in a device record,
// as one comparable string.
func coreInfoKey(d *store.Device) string {
	return fmt.Sprintf("%d %q %q %q %q %v %q", d.Caps, d.CoreName, d.Name, d.IP, d.OSDesc, d.Root, d.Users)
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	if h == "" {
		return "none"
	}
	return h
}

// handleJSON stores what the server keeps about the device and hands every
// message to subscribers (control.md §6.3).
func (c *conn) handleJSON(msg []byte) error {
	var m struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(msg, &m); err != nil || m.Action == "" {
		c.s.log.Debug("ignored malformed JSON from agent", "node", c.nodeID)
		return nil
	}
	c.s.log.Debug("agent message", "node", c.nodeID, "action", m.Action, "bytes", len(msg))
	st := c.s.cfg.Store
	switch m.Action {
	case "ping":
		if err := c.write([]byte(`{"action":"pong"}`)); err != nil {
			return err
		}
	case "coreinfo":
		var ci struct {
			Value  *string   `json:"value"`
			Caps   *uint32   `json:"caps"`
			OSDesc *string   `json:"osdesc"`
			Name   *string   `json:"name"`
			Root   *bool     `json:"root"`
			Users  *[]string `json:"users"`
		}
		if json.Unmarshal(msg, &ci) == nil {
			c.mu.Lock()
			if ci.Value != nil && ci.Caps != nil {
				c.coreName = *ci.Value
			}
			if ci.Caps != nil {
				c.caps = c.caps&(handshake.CapConsole|handshake.CapJavaScript) | *ci.Caps&^(handshake.CapConsole|handshake.CapJavaScript)
			}
			if ci.Name != nil && *ci.Name != "" {
				c.name = *ci.Name
			}
			caps, coreName := c.caps, c.coreName
			c.mu.Unlock()
			ip, _, _ := net.SplitHostPort(c.remote)
			st.UpdateDeviceAsync(c.nodeID, func(d *store.Device, _ bool) error {
				before := coreInfoKey(d)
				d.Caps, d.CoreName, d.IP = caps, coreName, ip
				// Only a name the core sends renames the device (control.md
				// §6.4); otherwise an administrator's rename stands.
				if ci.Name != nil && *ci.Name != "" {
					d.Name = *ci.Name
				}
				if ci.OSDesc != nil {
					d.OSDesc = *ci.OSDesc
				}
				if ci.Root != nil {
					d.Root = *ci.Root
				}
				if ci.Users != nil {
					d.Users = *ci.Users
				}
				if coreInfoKey(d) == before {
					return store.ErrNoChange
				}
				return nil
			})
		}
	case "netinfo":
		st.UpdateDeviceAsync(c.nodeID, func(d *store.Device, _ bool) error {
			if bytes.Equal(d.NetInfo, msg) {
				return store.ErrNoChange
			}
			d.NetInfo = json.RawMessage(msg)
			return nil
		})
	case "sysinfo":
		var si struct {
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(msg, &si) == nil && len(si.Data) > 0 {
			var h struct {
				Hash string `json:"hash"`
			}
			json.Unmarshal(si.Data, &h)
			c.mu.Lock()
			c.sysInfoHash = h.Hash
			c.mu.Unlock()
			st.UpdateDeviceAsync(c.nodeID, func(d *store.Device, _ bool) error {
				d.SysInfo, d.SysInfoHash = si.Data, h.Hash
				return nil
			})
		}
	case "log":
		var l struct {
			Msg    string `json:"msg"`
			UserID string `json:"userid"`
			Remote string `json:"remoteaddr"`
		}
		if json.Unmarshal(msg, &l) == nil {
			if len(l.Msg) > 4096 {
				l.Msg = l.Msg[:4096]
			}
			st.AppendEventAsync(store.Event{Kind: store.EvAgentLog, Who: l.UserID, NodeID: c.nodeID, From: l.Remote, Msg: l.Msg})
		}
	}
	c.s.publish(Event{Kind: Message, NodeID: c.nodeID, Agent: c.snapshot(), Action: m.Action, Data: msg})
	return nil
}
