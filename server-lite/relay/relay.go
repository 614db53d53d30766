// Package relay is server-lite's meshrelay.ashx: it pairs a user's session
// WebSocket with the agent's by a shared id, sends "c" to both, then pipes
// frames both ways unchanged (text stays text, binary stays binary), one at a
// time, so a slow reader slows its sender (sessions.md §1, Appendix B).
//
// Who may connect is not decided here: an Authorizer checks each request.
// The admin API mints the credentials (MeshCentral's rauth cookie for the
// agent end, a login cookie for the user end) and implements Authorizer, or
// uses Tokens, the one-time token store in this package.
package relay

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Side says which end of a session a connection is.
type Side int

const (
	SideAny   Side = iota // the authorizer does not say
	SideUser              // browser, meshctrl
	SideAgent             // the agent, dialling back after a tunnel request
)

// Grant is what an Authorizer vouches for about one relay request.
type Grant struct {
	Side   Side
	UserID string // the user the session runs for, e.g. "user//admin"
	// NoUser allows a connection with no user (MeshCentral's nouser
	// cookie). Two NoUser ends never pair: one end must carry a user.
	NoUser bool
	// ID, when set, is the only pairing id this credential is good for.
	ID string
	// NodeID, when set, must match the request's nodeid parameter if any.
	NodeID string
	// Expires, when set, ends the session at that time even if active.
	Expires time.Time
	// Credential is opaque to the relay: what the issuer made this grant
	// from (a login token's name, say), so that CloseMatching can end the
	// sessions of a credential that was revoked.
	Credential string
}

// Authorizer checks one meshrelay.ashx request before the WebSocket upgrade.
// It returns an error for a missing, malformed, expired or already used
// credential; the relay then answers 401 and logs the error (so it must not
// contain the credential itself). Implementations must be safe for
// concurrent use and should make credentials single-use: the relay refuses
// a pairing id once it has been paired, but a replayed credential with a
// fresh id is the authorizer's to refuse.
type Authorizer interface {
	Authorize(r *http.Request) (Grant, error)
}

// Defaults for Config's zero values.
const (
	DefaultPairTimeout = 15 * time.Second // as MeshCentral (sessions.md §1.5)
	DefaultIdleTimeout = 10 * time.Minute
	DefaultMaxMessage  = 16 << 20
	maxIDLen           = 256
	// usedIDTTL is how long a paired id stays refused.
	usedIDTTL = time.Hour
)

// Config configures the relay.
type Config struct {
	Authorizer  Authorizer
	Logger      *slog.Logger
	PairTimeout time.Duration // unpaired connection closed after this
	IdleTimeout time.Duration // paired session closed after no traffic either way
	MaxMessage  int64
}

// Server is the relay endpoint; mount it at /meshrelay.ashx.
type Server struct {
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader
	auth     atomic.Value // authHolder

	mu sync.Mutex
	// pending holds unpaired ends by pairing id, then by user id ("" for
	// a NoUser end): an end waits only for a peer of its own user, so
	// nobody else who learns the id can take or spoil the pairing.
	pending map[string]map[string]*waiter
	used    map[string]time.Time
	live    map[*websocket.Conn]struct{}
	paired  map[*session]struct{}
	closed  bool
}

type waiter struct {
	ws     *websocket.Conn
	grant  Grant
	nodeID string // the request's nodeid parameter, normalised
	peer   chan *session
	gone   chan struct{} // closed by CloseMatching
}

// session is one paired relay.
type session struct {
	ga, gb    Grant
	a, b      *websocket.Conn
	last      atomic.Int64 // unix nanos of the last frame either way
	closeOnce sync.Once
	timer     *time.Timer
}

var writePool sync.Pool

// New builds the relay.
func New(cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PairTimeout == 0 {
		cfg.PairTimeout = DefaultPairTimeout
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	s := &Server{
		cfg: cfg,
		log: cfg.Logger.With("component", "meshrelay.ashx"),
		upgrader: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			WriteBufferPool: &writePool,
			CheckOrigin:     func(*http.Request) bool { return true },
		},
		pending: map[string]map[string]*waiter{},
		used:    map[string]time.Time{},
		live:    map[*websocket.Conn]struct{}{},
		paired:  map[*session]struct{}{},
	}
	s.SetAuthorizer(cfg.Authorizer)
	return s
}

type authHolder struct{ a Authorizer }

// SetAuthorizer replaces the Authorizer, e.g. when the admin API, wired in
// after the relay was built, brings its own cookies. Safe at any time.
func (s *Server) SetAuthorizer(a Authorizer) { s.auth.Store(authHolder{a}) }

func (s *Server) authorizer() Authorizer {
	h, _ := s.auth.Load().(authHolder)
	return h.a
}

// ErrUnauthorized is the base of every refusal by the relay itself.
var ErrUnauthorized = errors.New("relay: unauthorized")

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	id := q.Get("id")
	if id == "" || len(id) > maxIDLen {
		http.Error(w, "missing or bad id", http.StatusBadRequest)
		return
	}
	auth := s.authorizer()
	if auth == nil {
		http.Error(w, "relay disabled", http.StatusServiceUnavailable)
		return
	}
	g, err := auth.Authorize(r)
	if err == nil {
		err = checkGrant(g, id, q.Get("nodeid"))
	}
	if err != nil {
		s.log.Info("relay refused", "remote", r.RemoteAddr, "reason", err)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	s.mu.Lock()
	refused := s.closed || !s.used[id].IsZero()
	s.mu.Unlock()
	if refused {
		s.log.Info("relay refused", "remote", r.RemoteAddr, "reason", "id already used")
		http.Error(w, "session id already used", http.StatusConflict)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(s.cfg.MaxMessage)
	s.run(ws, id, g, normNode(q.Get("nodeid")), r.RemoteAddr)
}

// normNode reduces "node//X", "node/domain/X" or "X" to X: the ids never
// contain "/".
func normNode(n string) string {
	for i := len(n) - 1; i >= 0; i-- {
		if n[i] == '/' {
			return n[i+1:]
		}
	}
	return n
}

// takePeerLocked finds the waiting end an arriving end with grant g may
// pair with: the same user's, or a NoUser end; a NoUser arrival takes any
// user's end.
func (s *Server) takePeerLocked(id string, g Grant) *waiter {
	m := s.pending[id]
	if m == nil {
		return nil
	}
	if g.NoUser {
		for _, w := range m {
			if !w.grant.NoUser {
				return w
			}
		}
		return nil
	}
	if w := m[g.UserID]; w != nil {
		return w
	}
	return m[""]
}

func (s *Server) removePendingLocked(id string, w *waiter) bool {
	m := s.pending[id]
	k := w.grant.UserID
	if w.grant.NoUser {
		k = ""
	}
	if m[k] != w {
		return false
	}
	delete(m, k)
	if len(m) == 0 {
		delete(s.pending, id)
	}
	return true
}

func checkGrant(g Grant, id, nodeID string) error {
	switch {
	case g.UserID == "" && !g.NoUser:
		return fmt.Errorf("%w: no user", ErrUnauthorized)
	case g.ID != "" && g.ID != id:
		return fmt.Errorf("%w: credential issued for another session", ErrUnauthorized)
	case g.NodeID != "" && nodeID != "" && g.NodeID != nodeID:
		return fmt.Errorf("%w: credential issued for another device", ErrUnauthorized)
	case !g.Expires.IsZero() && time.Now().After(g.Expires):
		return fmt.Errorf("%w: expired", ErrUnauthorized)
	}
	return nil
}

func compatible(a, b Grant) error {
	switch {
	case a.NoUser && b.NoUser:
		return errors.New("neither end has a user")
	case !a.NoUser && !b.NoUser && a.UserID != b.UserID:
		return errors.New("ends belong to different users")
	case a.Side != SideAny && a.Side == b.Side:
		return errors.New("both ends are the same side")
	}
	return nil
}

func (s *Server) track(ws *websocket.Conn, on bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		if s.closed {
			return false
		}
		s.live[ws] = struct{}{}
	} else {
		delete(s.live, ws)
	}
	return true
}

func (s *Server) run(ws *websocket.Conn, id string, g Grant, nodeID, remote string) {
	if !s.track(ws, true) {
		ws.Close()
		return
	}
	defer s.track(ws, false)
	log := s.log.With("remote", remote, "user", g.UserID)

	s.mu.Lock()
	s.sweepLocked()
	if !s.used[id].IsZero() {
		s.mu.Unlock()
		closeWith(ws, "session id already used")
		log.Info("relay refused", "reason", "id already used")
		return
	}
	w := s.takePeerLocked(id, g)
	if w == nil {
		key := g.UserID
		if g.NoUser {
			key = ""
		}
		if s.pending[id][key] != nil {
			// The same user's end of the same side is already waiting.
			s.mu.Unlock()
			closeWith(ws, "refused")
			log.Info("relay refused", "reason", "an end of this user already waits for this id")
			return
		}
		// First end: hold it, unread, until the peer arrives.
		me := &waiter{ws: ws, grant: g, nodeID: nodeID, peer: make(chan *session, 1), gone: make(chan struct{})}
		if s.pending[id] == nil {
			s.pending[id] = map[string]*waiter{}
		}
		s.pending[id][key] = me
		s.mu.Unlock()
		t := time.NewTimer(s.cfg.PairTimeout)
		defer t.Stop()
		select {
		case sess := <-me.peer:
			s.pump(sess, ws, sess.b, log)
		case <-me.gone:
			closeWith(ws, "revoked")
			log.Info("relay closed", "reason", "credential revoked")
		case <-t.C:
			s.mu.Lock()
			if s.removePendingLocked(id, me) {
				s.mu.Unlock()
				closeWith(ws, "no peer")
				log.Info("relay closed", "reason", "no peer within the pairing timeout")
				return
			}
			s.mu.Unlock()
			select {
			case sess := <-me.peer: // taken at the last moment
				s.pump(sess, ws, sess.b, log)
			case <-me.gone:
				closeWith(ws, "revoked")
			}
		}
		return
	}
	err := compatible(w.grant, g)
	if err == nil && w.nodeID != "" && nodeID != "" && w.nodeID != nodeID {
		err = errors.New("ends name different devices")
	}
	if err != nil {
		s.mu.Unlock()
		closeWith(ws, "refused")
		log.Info("relay refused", "reason", err)
		return
	}
	s.removePendingLocked(id, w)
	s.used[id] = time.Now()

	sess := &session{a: w.ws, b: ws, ga: w.grant, gb: g}
	sess.timer = time.AfterFunc(s.cfg.IdleTimeout, func() { s.idleCheck(sess) })
	s.paired[sess] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.paired, sess)
		s.mu.Unlock()
	}()
	sess.last.Store(time.Now().UnixNano())
	// "c" goes to both before either pump runs, so it is each end's first
	// frame (sessions.md §1.6).
	for _, c := range []*websocket.Conn{w.ws, ws} {
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte("c")); err != nil {
			sess.close()
		}
	}
	if exp := laterOf(w.grant.Expires, g.Expires); !exp.IsZero() {
		t := time.AfterFunc(time.Until(exp), sess.close)
		defer t.Stop()
	}
	log.Info("relay paired", "peer", w.ws.RemoteAddr().String())
	w.peer <- sess
	s.pump(sess, ws, w.ws, log)
}

func laterOf(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case a.Before(b):
		return a
	}
	return b
}

func (s *Server) idleCheck(sess *session) {
	idle := time.Since(time.Unix(0, sess.last.Load()))
	if idle >= s.cfg.IdleTimeout {
		s.log.Info("relay closed", "reason", "idle")
		sess.close()
		return
	}
	sess.timer.Reset(s.cfg.IdleTimeout - idle)
}

// pump copies src to dst frame by frame until either fails, then closes
// both ends: there is no half-close (sessions.md §1.11).
func (s *Server) pump(sess *session, src, dst *websocket.Conn, log *slog.Logger) {
	defer sess.close()
	for {
		typ, data, err := src.ReadMessage()
		if err != nil {
			return
		}
		sess.last.Store(time.Now().UnixNano())
		dst.SetWriteDeadline(time.Now().Add(s.cfg.IdleTimeout))
		if err := dst.WriteMessage(typ, data); err != nil {
			return
		}
	}
}

func (sess *session) close() {
	sess.closeOnce.Do(func() {
		if sess.timer != nil {
			sess.timer.Stop()
		}
		closeWith(sess.a, "")
		closeWith(sess.b, "")
	})
}

func closeWith(ws *websocket.Conn, reason string) {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason)
	ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
	ws.Close()
}

func (s *Server) sweepLocked() {
	if len(s.used) < 1024 {
		return
	}
	for id, t := range s.used {
		if time.Since(t) > usedIDTTL {
			delete(s.used, id)
		}
	}
}

// CloseMatching ends every paired session either of whose ends' grants
// match, and every unpaired end whose grant matches, and returns how many it
// ended. The admin API calls it when a user is deleted or locked, a login
// token removed or a user's rights cut: what was made from a revoked
// credential must not outlive it.
func (s *Server) CloseMatching(match func(Grant) bool) int {
	s.mu.Lock()
	var sessions []*session
	for sess := range s.paired {
		if match(sess.ga) || match(sess.gb) {
			sessions = append(sessions, sess)
		}
	}
	n := len(sessions)
	for id, m := range s.pending {
		for _, w := range m {
			if match(w.grant) {
				s.removePendingLocked(id, w)
				close(w.gone)
				n++
			}
		}
	}
	s.mu.Unlock()
	for _, sess := range sessions {
		sess.close()
	}
	return n
}

// Close ends every pending and paired session.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	conns := make([]*websocket.Conn, 0, len(s.live))
	for c := range s.live {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		closeWith(c, "server shutting down")
	}
}

// Tokens is a simple Authorizer: single-use random tokens issued by the
// server, taken from the "rauth" (agent end) or "auth" (user end) query
// parameter. A token is deleted when used, so a replay is refused.
type Tokens struct {
	mu sync.Mutex
	m  map[string]tokenEntry
}

type tokenEntry struct {
	g      Grant
	expiry time.Time
}

// NewTokens returns an empty token store.
func NewTokens() *Tokens { return &Tokens{m: map[string]tokenEntry{}} }

// Issue returns a new token for g, valid once within ttl.
func (t *Tokens) Issue(g Grant, ttl time.Duration) string {
	b := make([]byte, 24)
	rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if len(t.m) > 4096 {
		for k, e := range t.m {
			if now.After(e.expiry) {
				delete(t.m, k)
			}
		}
	}
	t.m[tok] = tokenEntry{g: g, expiry: now.Add(ttl)}
	return tok
}

// Revoke deletes every unused token whose grant matches, so a revoked
// credential's outstanding relay tokens cannot be used either.
func (t *Tokens) Revoke(match func(Grant) bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, e := range t.m {
		if match(e.g) {
			delete(t.m, k)
		}
	}
}

// Authorize implements Authorizer.
func (t *Tokens) Authorize(r *http.Request) (Grant, error) {
	q := r.URL.Query()
	tok := q.Get("rauth")
	if tok == "" {
		tok = q.Get("auth")
	}
	if tok == "" {
		return Grant{}, fmt.Errorf("%w: no token", ErrUnauthorized)
	}
	t.mu.Lock()
	e, ok := t.m[tok]
	delete(t.m, tok)
	t.mu.Unlock()
	if !ok {
		return Grant{}, fmt.Errorf("%w: unknown or already used token", ErrUnauthorized)
	}
	if time.Now().After(e.expiry) {
		return Grant{}, fmt.Errorf("%w: token expired", ErrUnauthorized)
	}
	return e.g, nil
}

// TunnelValue builds the "value" of a tunnel request to an agent
// (sessions.md §1.2): a relative relay URL the agent resolves against its
// control-channel URL.
func TunnelValue(protocol int, nodeID, id, rauth string) string {
	v := url.Values{}
	v.Set("p", strconv.Itoa(protocol))
	v.Set("nodeid", nodeID)
	v.Set("id", id)
	v.Set("rauth", rauth)
	return "*/meshrelay.ashx?" + v.Encode()
}

// NewID returns a random pairing id.
func NewID() string {
	b := make([]byte, 9)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
