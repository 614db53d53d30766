// Package adminapi serves MeshCentral's user API, control.ashx, for the subset
// in admin-api.md §6.1, so that MeshCentral's own CLI (meshctrl.js) and
// similar clients work against server-lite unchanged. It also serves the
// login endpoints (form login at /login, x-meshauth, ?auth= cookies) and
// mints and checks the relay cookies meshrelay.ashx needs.
//
// Unlike MeshCentral it answers every request (unknown actions included),
// copies responseid and tag into every reply, handles each connection's
// requests in order, routes agent replies to the session that asked, and
// never puts "$" in a cookie (admin-api.md §6.2–6.4).
//
// Where things are:
//   - server.go, attach.go: configuration and wiring into server-lite's app
//   - auth.go, cookies.go, loginkey.go: the login methods of admin-api.md §1.2
//   - conn.go: one control.ashx session (serverinfo/userinfo first, ordered
//     replies, send queue)
//   - handlers.go: request decoding and the action switch
//   - nodes.go, groups.go, users.go, devices.go, eventscmd.go, tokens.go,
//     agentcmds.go: the actions, by subject
//   - agentmsg.go: agent replies routed back to the asking session
//   - events.go: the audit log (store events) and live event delivery
//
// Rights come from the accounts package (user links only; site admin status
// grants no device rights, as in MeshCentral). Every state-changing action
// and every request sent to an agent is written to the store's event log
// with who, what, which device or group, and from which address.
package adminapi

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/notify"
	"github.com/meshgo/meshagent/server-lite/relay"
	"github.com/meshgo/meshagent/server-lite/store"
)

// AgentState is the live state of a connected agent.
type AgentState struct {
	ConnectTime time.Time
	RemoteAddr  string // "ip:port"
	CoreName    string // what the running core reports in coreinfo
	CoreHash    string // hex hash of the running core, as the agent reports it
	Flavor      string // agentconn's guess: "js-core" (C agent), "local-core" (ours)
}

// Agents is the part of the agent registry the API needs. The main package
// adapts agentconn's registry to it; nil means every device is offline.
type Agents interface {
	// Connected reports whether the agent of nodeID is online.
	Connected(nodeID string) (AgentState, bool)
	// SendJSON sends one JSON control message to the agent.
	SendJSON(nodeID string, v any) error
	// Disconnect drops the agent's connection (device or group removed).
	Disconnect(nodeID string)
}

// ScriptPusher is optionally implemented by Agents to install a JavaScript
// core on an agent; the CLI's push-script command needs it. who is the
// acting user, for the agent-side audit trail.
type ScriptPusher interface {
	PushScript(nodeID string, script []byte, who string) error
}

// RelaySessions is the part of relay.Server the API needs.
type RelaySessions interface {
	CloseMatching(match func(relay.Grant) bool) int
}

// Config configures a Server.
type Config struct {
	Store    *store.Store
	Accounts *accounts.Manager
	Agents   Agents
	// RelayTokens issues meshrelay.ashx credentials; nil = a private set
	// (tests without a relay).
	RelayTokens *relay.Tokens
	// Relay, when set, is the running meshrelay.ashx: revoking a user, a
	// login token or rights closes the relay sessions made from them.
	Relay RelaySessions

	ServerName string // shown in serverinfo.name
	// Hostnames are the names browsers reach the server by: a browser's
	// control.ashx request must come from a page on one of them (Origin
	// https://<name>:<Port>). Empty: the request's own Host is compared.
	Hostnames []string
	Port      int // HTTPS port shown in serverinfo
	// TLSHash returns the hex SHA-384 of the web TLS certificate (full
	// cert) served now; a function because the administrator's own
	// certificate can be reloaded while the server runs.
	TLSHash       func() string
	AgentCertHash string // ServerID in MeshCentral base64 (@, $)

	// LoginKey, when set (80 bytes), accepts meshctrl --loginkey cookies.
	LoginKey []byte

	// LoginFailDelay slows failed form logins down (MeshCentral waits 2–6 s).
	LoginFailDelay time.Duration
	// LoginLimits throttles password and login-key guessing per address
	// and per account; the zero value is MeshCentral's default.
	LoginLimits LoginLimits
	// Messaging, when set, serves the messaging commands (messaging.go)
	// and the messaged login second factor; nil: messaging is off.
	Messaging *notify.Notifier
	Logger    *slog.Logger
}

// Server is the admin API. Create it with New and mount Handler.
type Server struct {
	cfg      Config
	log      *slog.Logger
	cookies  *cookieJar
	throttle *loginThrottle

	mu       sync.Mutex
	sessions map[string]*conn // by session id
	pending  map[string][]*conn
}

// New returns a Server. The store and accounts manager are required.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.RelayTokens == nil {
		cfg.RelayTokens = relay.NewTokens()
	}
	return &Server{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "adminapi"),
		cookies:  newCookieJar(),
		throttle: newLoginThrottle(cfg.LoginLimits),
		sessions: map[string]*conn{},
		pending:  map[string][]*conn{},
	}
}

// Handler serves /control.ashx and POST /login (and POST / as MeshCentral
// does when the root page is the login page).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/control.ashx", s.serveControl)
	mux.HandleFunc("POST /login", s.serveLogin)
	mux.HandleFunc("POST /{$}", s.serveLogin)
	mux.HandleFunc("/logout", s.serveLogout)
	return mux
}

// Register adds the API's routes to mux, for a main package that owns the mux.
func (s *Server) Register(mux *http.ServeMux) {
	h := s.Handler()
	for _, p := range []string{"/control.ashx", "POST /login", "POST /{$}", "/logout"} {
		mux.Handle(p, h)
	}
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// normID turns any of "X", "node//X", "node//node//X" into kind+"//X": the
// 64-char ids never contain "/", so the last part is the id (admin-api.md
// §6.4; meshctrl always prefixes node/<domain>/ for shell, §6.2 #14).
func normID(kind, id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		id = id[i+1:]
	}
	if id == "" {
		return ""
	}
	return kind + "//" + id
}
