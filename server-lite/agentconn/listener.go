package agentconn

// Refusal before TLS. Under a reconnect storm (a restart with thousands of
// agents connected) every arriving connection costs the server a TLS
// handshake (key exchange and a signature) before the 503 gate in
// ServeHTTP can refuse it, and thousands of handshakes started at once
// share the CPUs so evenly that most outlast the agents' dial timeout: the
// work is thrown away and the agents back off further. Listener moves the
// gate in front of TLS and bounds the handshakes in progress.

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/meshgo/meshagent/proto/reconnect"
)

// openGate counts connections accepted through Listener whose TLS
// handshake and first request are still under way ("opening"), oldest
// first. Guarded by handshakeGate.mu.
//
// A stalled opening connection (older than four times the average, at
// least minStalled) stops counting but is not closed: http.Server's own
// timeouts end it, as before. So holding sockets open without a
// ClientHello cannot keep real agents out for long. To keep the gate shut
// an attacker must open fresh connections, from at least limit/per-address
// addresses, faster than they go stale (about 1,000 a second with the
// defaults): TCP connections, where keeping the 503 gate in ServeHTTP
// shut takes as many TLS handshakes and upgrades. What such a flood costs
// real agents after it stops is bounded by maxRetryAfter.
type openGate struct {
	q      []*openConn // counted ones and finished ones not yet popped, in accept order
	n      int         // counted
	byAddr map[string]int
	avg    time.Duration // moving average from accept to the first request
}

func (o *openGate) stalledAfter() time.Duration { return max(4*o.avg, minStalled) }

// prune stops counting stalled connections and drops finished ones from
// the front of the queue.
func (o *openGate) prune(now time.Time) {
	stale := o.stalledAfter()
	k := 0
	for ; k < len(o.q); k++ {
		c := o.q[k]
		if c.counted && now.Sub(c.at) < stale {
			break
		}
		o.uncount(c)
		o.q[k] = nil
	}
	o.q = o.q[k:]
}

func (o *openGate) uncount(c *openConn) {
	if !c.counted {
		return
	}
	c.counted = false
	o.n--
	if o.byAddr[c.ip]--; o.byAddr[c.ip] <= 0 {
		delete(o.byAddr, c.ip)
	}
}

// openConn is a connection accepted through Listener.
type openConn struct {
	net.Conn
	s       *Server
	ip      string
	at      time.Time
	counted bool // guarded by handshakeGate.mu
}

// Close ends the opening phase too.
func (c *openConn) Close() error {
	c.s.openDone(c, false)
	return c.Conn.Close()
}

// Listener returns ln (the TLS port, before TLS) gated: while pending
// agent handshakes are crowded (what makes ServeHTTP answer 503), or as
// many connections as the pending limit (per address and in all) are in
// their TLS handshake or first request, a new connection is answered at
// once in plain HTTP, 503 with the pacer's Retry-After
// (reconnect.PlainRefusal), and closed, without any TLS work. Our agent
// reads that answer (reconnect.DetectPlainRefusal) and comes back when
// asked; other clients (MeshCentral's C agent, browsers) see a failed TLS
// handshake and retry on their own schedule, as they do after a 503.
//
// The gate counts every connection to the port, not only agent.ashx: the
// path is not known before TLS. The server passing the returned listener
// to http.Server must set its ConnState to s.ConnState, which ends a
// connection's opening phase when its first request arrives.
func (s *Server) Listener(ln net.Listener) net.Listener {
	return &gateListener{Listener: ln, s: s}
}

type gateListener struct {
	net.Listener
	s *Server
}

func (l *gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		oc, retry, why := l.s.opening(c)
		if oc != nil {
			return oc, nil
		}
		l.s.refuseBeforeTLS(c, retry, why)
	}
}

// opening admits c as an opening connection, or returns nil, the
// Retry-After to refuse it with and why.
func (s *Server) opening(c net.Conn) (*openConn, int, string) {
	lim := s.HandshakeLimits()
	ip := addrOf(c.RemoteAddr().String())
	g := &s.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	o := &g.open
	o.prune(now)
	why := ""
	switch {
	case g.pendingFull(ip, now, lim):
		why = "too many pending handshakes"
	case lim.PerAddr > 0 && o.byAddr[ip] >= lim.PerAddr:
		why = "too many connections in TLS from this address"
	case lim.Global > 0 && o.n >= lim.Global:
		why = "too many connections in TLS"
	}
	if why != "" {
		return nil, g.pace.retryAfter(now, lim.Global), why
	}
	if o.byAddr == nil {
		o.byAddr = map[string]int{}
	}
	oc := &openConn{Conn: c, s: s, ip: ip, at: now, counted: true}
	o.q = append(o.q, oc)
	o.n++
	o.byAddr[ip]++
	return oc, 0, ""
}

// openDone ends c's opening phase; first says its first request arrived.
func (s *Server) openDone(c *openConn, first bool) {
	g := &s.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	if !c.counted {
		return
	}
	if first {
		d := time.Since(c.at)
		if g.open.avg == 0 {
			g.open.avg = d
		} else {
			g.open.avg += (d - g.open.avg) / 16
		}
	}
	g.open.uncount(c)
}

// ConnState is for the http.Server serving Listener's connections: a
// connection's opening phase ends with its first request (or its end).
// http.Server runs no hook when it hands a connection to HTTP/2 (a
// browser's), so such a connection counts until it is stalled or closed.
func (s *Server) ConnState(c net.Conn, st http.ConnState) {
	if st == http.StateNew {
		return
	}
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if oc, ok := c.(*openConn); ok {
		s.openDone(oc, st == http.StateActive)
	}
}

// maxDraining bounds the refused connections kept open briefly so that the
// refusal is read before the close (see refuseBeforeTLS); past it they are
// closed at once.
const maxDraining = 4096

// refuseBeforeTLS answers c with the plain refusal and closes it. Closing a
// socket with the ClientHello unread would send a reset, which may reach
// the agent before it read the answer; so the write side is shut first and
// the ClientHello read away (briefly, in the background) before closing.
func (s *Server) refuseBeforeTLS(c net.Conn, retry int, why string) {
	s.log.Debug("connection refused before TLS", "remote", c.RemoteAddr().String(), "reason", why, "retry_after", retry)
	c.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := c.Write(reconnect.PlainRefusal(retry))
	tc, ok := c.(*net.TCPConn)
	if err != nil || !ok || s.draining.Load() >= maxDraining {
		c.Close()
		return
	}
	tc.CloseWrite()
	s.draining.Add(1)
	go func() {
		defer s.draining.Add(-1)
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}
