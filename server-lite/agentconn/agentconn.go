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
	"crypto/sha512"
	_ "embed"
	"encoding/hex"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
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
	Certs  *certs.Set
	Store  *store.Store
	Logger *slog.Logger
	// DefaultCore is the script pushed to agents whose core hash differs
	// (without the 4-byte prefix; the server adds it). nil = BuiltinCore.
	DefaultCore      []byte
	HandshakeTimeout time.Duration
	IdleTimeout      time.Duration
	PreAuthLimit     int64 // largest frame accepted before authentication
	// MaxPendingPerAddr and MaxPending limit sockets between upgrade and
	// authentication (0: DefaultMaxPendingPerAddr, DefaultMaxPending;
	// negative: no limit).
	MaxPendingPerAddr int
	MaxPending        int
	MaxMessage        int64 // largest frame accepted afterwards
	// SubscriberQueue is how many events each subscriber may fall behind
	// by before new ones are dropped (see Subscribe); 0 means
	// DefaultSubscriberQueue.
	SubscriberQueue int
	// AcceptWebHash reports whether H, the full hash of the TLS
	// certificate an agent says it saw (control.md §2.3), is one this
	// server presented: with an administrator's own web certificate, agents
	// on the same port see that one, not Certs.Web. nil accepts
	// Certs.WebCertHash only.
	AcceptWebHash func(h [handshake.HashLen]byte) bool
	// UpdateBlock answers an agent's block request (command 14 with
	// request id 0, server-lite/updates) with the frame to send back, or
	// nil to send nothing. nil: block requests are ignored.
	UpdateBlock func(nodeID string, msg []byte) []byte
}

// Server is the agent endpoint and registry.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	gate     handshakeGate // pending handshakes
	draining atomic.Int64  // connections refused before TLS, still being closed (listener.go)

	corePayload []byte // 4 zero bytes + script
	coreHash    [handshake.HashLen]byte

	wg     sync.WaitGroup // serve goroutines
	conns  *connShards    // live connection per node; its own locks
	mu     sync.RWMutex   // subs, nextID, closed
	subs   map[int]*subscriber
	nextID int
	closed bool // Shutdown began: no new sessions (wg.Add must not race wg.Wait)
}

var writePool sync.Pool

// New builds the endpoint. Mount it at /agent.ashx.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SubscriberQueue <= 0 {
		cfg.SubscriberQueue = DefaultSubscriberQueue
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
		log: cfg.Logger.With("component", "agent.ashx"),
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
		conns: newConnShards(),
		subs:  map[int]*subscriber{},
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
