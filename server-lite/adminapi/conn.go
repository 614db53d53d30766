package adminapi

import (
	"encoding/json"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

const (
	maxRequest   = 1 << 20 // runcommands allows 65 535 chars of commands
	sendQueue    = 256
	writeTimeout = 10 * time.Second
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  4096,
	WriteBufferSize: 4096,
	// Origin is checked after the upgrade so the failure can be reported
	// in-band like MeshCentral does (admin-api.md §1.1).
	CheckOrigin: func(*http.Request) bool { return true },
}

// conn is one authenticated control.ashx session.
type conn struct {
	s         *Server
	ws        *websocket.Conn
	id        string // session id "<user id>/<40 hex>"
	userID    string
	fromToken bool
	tokenUser string // the login token the session was opened with
	ip        string

	out       chan []byte
	closed    chan struct{}
	closeOnce sync.Once
	// shed counts the live events sendEvent dropped since it last queued one.
	shed atomic.Int64
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade already answered with an HTTP error
	}
	ws.SetReadLimit(maxRequest)
	if o := r.Header.Get("Origin"); o != "" && !s.allowedOrigin(o, r.Host) {
		s.log.Warn("control.ashx cross-site request refused", "origin", truncate(o, 200), "from", remoteIP(r))
		s.audit(auditEntry{action: "invalidorigin", from: remoteIP(r), msg: "Cross-site control.ashx request refused, Origin " + quoteName(o)})
		closeWith(ws, "invalidorigin", "invalidorigin")
		return
	}
	res := s.authenticate(r)
	if !res.ok {
		s.log.Info("control.ashx login refused", "from", remoteIP(r), "reason", res.msg)
		closeWith(ws, res.cause, res.msg)
		return
	}
	u := res.login.User
	c := &conn{
		s: s, ws: ws, id: u.ID + "/" + randomHex(20), userID: u.ID, fromToken: res.login.FromToken, tokenUser: res.login.TokenUser,
		ip: remoteIP(r), out: make(chan []byte, sendQueue), closed: make(chan struct{}),
	}
	s.mu.Lock()
	s.sessions[c.id] = c
	s.mu.Unlock()
	defer s.dropSession(c)
	// A session opened with an expiring login token ends when it expires.
	if exp := tokenExpiry(u, c.tokenUser); !exp.IsZero() {
		t := time.AfterFunc(time.Until(exp), c.close)
		defer t.Stop()
	}

	// serverinfo and userinfo go out before any request is read: meshctrl
	// sends its request on open and needs serverinfo.domain first (§1.7).
	c.send(map[string]any{"action": "serverinfo", "serverinfo": s.serverInfo()})
	c.send(map[string]any{"action": "userinfo", "userinfo": safeUser(u)})
	go c.writer()
	c.readLoop()
}

// allowedOrigin reports whether a browser's Origin is the server itself:
// https://<one of the server's names>[:port], the port the one it serves.
// The request's Host alone is not trusted (a DNS-rebinding page controls
// it); only when no names are configured (tests) is it the reference.
// Clients that are not browsers send no Origin and are not checked.
func (s *Server) allowedOrigin(origin, host string) bool {
	rest, ok := strings.CutPrefix(origin, "https://")
	if !ok || rest == "" {
		return false
	}
	if len(s.cfg.Hostnames) == 0 {
		return rest == host
	}
	h, port := rest, ""
	if hh, p, err := net.SplitHostPort(rest); err == nil {
		h, port = hh, p
	}
	if want := strconv.Itoa(s.cfg.Port); port != want && !(port == "" && s.cfg.Port == 443) {
		return false
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	for _, n := range s.cfg.Hostnames {
		if strings.EqualFold(n, h) {
			return true
		}
	}
	return false
}

// closeWith reports an authentication failure as MeshCentral does: one JSON
// message, then a close (admin-api.md §1.8).
func closeWith(ws *websocket.Conn, cause, msg string) {
	b, _ := json.Marshal(map[string]string{"action": "close", "cause": cause, "msg": msg})
	ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	ws.WriteMessage(websocket.TextMessage, b)
	ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	// Wait briefly for the peer's close so it is not cut off mid-handshake.
	ws.SetReadDeadline(time.Now().Add(2 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	ws.Close()
}

func (c *conn) readLoop() {
	for {
		typ, data, err := c.ws.ReadMessage()
		if err != nil {
			c.close()
			return
		}
		if typ != websocket.TextMessage {
			continue
		}
		if !c.s.handle(c, data) {
			c.close()
			return
		}
	}
}

func (c *conn) writer() {
	defer c.ws.Close()
	for {
		select {
		case b := <-c.out:
			c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.close()
				return
			}
		case <-c.closed:
			// Flush what is queued (e.g. the last reply before "close").
			for drained := false; !drained; {
				select {
				case b := <-c.out:
					c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
					c.ws.WriteMessage(websocket.TextMessage, b)
				default:
					drained = true
				}
			}
			c.ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
			return
		}
	}
}

// send queues one message. A client too slow to drain its queue is
// disconnected rather than allowed to stall event delivery to others.
func (c *conn) send(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		c.s.log.Error("encode reply", "err", err)
		return
	}
	select {
	case <-c.closed:
	case c.out <- b:
	default:
		c.s.log.Warn("control session too slow, closing", "user", c.userID, "from", c.ip)
		c.close()
	}
}

// sendEvent queues a live event unless the queue is already half full: a
// burst of agent connects must not push out replies (and so end the
// session of a meshctrl that is waiting for one). Dropped events can be
// recovered with a fresh nodes or events request. The protocol has no way
// to tell the client it missed some (MeshCentral never drops them), so the
// log says when a session starts to lose events and, once it keeps up
// again, how many it lost.
func (c *conn) sendEvent(v any) {
	if len(c.out) > cap(c.out)/2 {
		if c.shed.Add(1) == 1 {
			c.s.log.Warn("control session behind: dropping its live events until it catches up", "user", c.userID, "from", c.ip)
		}
		return
	}
	if n := c.shed.Swap(0); n > 0 {
		c.s.log.Warn("control session caught up: it missed live events and shows stale devices until it reads nodes or events again",
			"user", c.userID, "from", c.ip, "dropped", n)
	}
	c.send(v)
}

func (c *conn) close() { c.closeOnce.Do(func() { close(c.closed) }) }

func (s *Server) dropSession(c *conn) {
	c.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, c.id)
	for n, l := range s.pending {
		kept := l[:0]
		for _, p := range l {
			if p != c {
				kept = append(kept, p)
			}
		}
		if len(kept) == 0 {
			delete(s.pending, n)
		} else {
			s.pending[n] = kept
		}
	}
}

// Close ends every control session (http.Server.Shutdown does not close
// hijacked WebSocket connections). Call it when the server stops.
func (s *Server) Close() {
	s.mu.Lock()
	cs := make([]*conn, 0, len(s.sessions))
	for _, c := range s.sessions {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

// closeUserSessions ends every session of a user (account deleted), or,
// when tokenUser is set, those opened with that login token.
func (s *Server) closeUserSessions(userID, tokenUser string) {
	s.mu.Lock()
	var cs []*conn
	for _, c := range s.sessions {
		if c.userID == userID && (tokenUser == "" || c.tokenUser == tokenUser) {
			cs = append(cs, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

func (s *Server) serverInfo() map[string]any {
	si := map[string]any{
		"domain":        "",
		"name":          s.cfg.ServerName,
		"port":          s.cfg.Port,
		"https":         true,
		"redirport":     0,
		"serverTime":    time.Now().UnixMilli(),
		"tlshash":       upper(s.tlsHash()),
		"agentCertHash": s.cfg.AgentCertHash,
	}
	if m := s.cfg.Messaging; m != nil && m.ProviderBits() != 0 {
		si["userMsgProviders"] = m.ProviderBits() // as MeshCentral's serverinfo
	}
	return si
}

func (s *Server) tlsHash() string {
	if s.cfg.TLSHash == nil {
		return ""
	}
	return s.cfg.TLSHash()
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

// safeUser is the user record as clients see it: no hash, no tokens.
func safeUser(u accounts.User) map[string]any {
	links := map[string]any{}
	for id, r := range u.Links {
		links[id] = map[string]any{"rights": r}
	}
	m := map[string]any{"_id": u.ID, "name": u.Name, "creation": u.Creation, "links": links, "siteadmin": u.SiteAdmin}
	if u.Email != "" {
		m["email"] = u.Email
	}
	if u.RealName != "" {
		m["realname"] = u.RealName
	}
	if accounts.FactorData(u, "totp") != nil {
		m["otpsecret"] = 1 // as MeshCentral's CloneSafeUser: set, never the secret
	}
	if len(u.Factors) > 0 {
		names := make([]string, 0, len(u.Factors))
		for n := range u.Factors {
			names = append(names, n)
		}
		sort.Strings(names)
		m["factors"] = names
	}
	if u.PassChange != 0 {
		m["passchange"] = u.PassChange
	}
	if u.External != "" {
		m["external"] = true
	}
	return m
}
