package agentconn

// Limits on what unauthenticated sockets and agents may cost the server
// (issue 20, findings 2, 8 and 9).

import (
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/meshgo/meshagent/server-lite/store"
)

// Pending-handshake limits. A socket is pending from the WebSocket upgrade
// until its agent has proved its identity; each one that sends AuthRequest
// costs the server an RSA signature before the agent proved anything, and
// a stalled one holds memory until HandshakeTimeout.
const (
	// DefaultMaxPendingPerAddr: a further socket from an address with this
	// many pending is refused (503) before the upgrade.
	DefaultMaxPendingPerAddr = 32
	// DefaultMaxPending: when this many are pending in all, a newcomer
	// evicts the oldest pending one if that one is stalled (pending four
	// times as long as successful handshakes take on average, at least
	// minStalled), and is otherwise refused before the upgrade with a 503
	// whose Retry-After paces the reconnect storm (see pacer). Real agents
	// finish in milliseconds, so a flood of stalled sockets from many
	// addresses evicts itself instead of locking real agents out, while a
	// storm of real agents (a restart with thousands connected, where
	// handshakes queue for the CPU and take seconds) keeps the handshakes
	// already paid for instead of throwing the oldest away.
	DefaultMaxPending = 512
	minStalled        = 500 * time.Millisecond
)

// HandshakeLimits are the pending-handshake limits in force.
type HandshakeLimits struct {
	PerAddr int // per source address
	Global  int // in all
}

// handshakeGate counts pending handshakes.
type handshakeGate struct {
	mu      sync.Mutex
	byAddr  map[string]int
	pending map[*conn]time.Time
	pace    pacer
	open    openGate // connections between accept and their first request (listener.go)
}

func addrOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// crowded reports, before the upgrade, whether remote must be refused now
// (its address has its limit of pending handshakes, or all are pending and
// none is stalled), so the refusal costs no WebSocket, and in how many
// seconds the agent should come back. admit enforces the limits exactly
// afterwards.
func (s *Server) crowded(remote string) (bool, int) {
	lim := s.HandshakeLimits()
	g := &s.gate
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	if g.pendingFull(addrOf(remote), now, lim) {
		return true, g.pace.retryAfter(now, lim.Global)
	}
	return false, 0
}

// pendingFull is crowded's test, with g.mu held.
func (g *handshakeGate) pendingFull(ip string, now time.Time, lim HandshakeLimits) bool {
	if lim.PerAddr > 0 && g.byAddr[ip] >= lim.PerAddr {
		return true
	}
	if lim.Global > 0 && len(g.pending) >= lim.Global {
		if _, t := g.oldest(); now.Sub(t) < g.pace.stalledAfter() {
			return true
		}
	}
	return false
}

// oldest returns the longest pending connection (nil if none).
func (g *handshakeGate) oldest() (*conn, time.Time) {
	var c *conn
	var t time.Time
	for p, pt := range g.pending {
		if c == nil || pt.Before(t) {
			c, t = p, pt
		}
	}
	return c, t
}

// admit registers c (upgraded, not yet authenticated) as pending, or says
// why not. It may close the oldest pending connection to make room.
func (s *Server) admit(c *conn) error {
	lim := s.HandshakeLimits()
	ip := addrOf(c.remote)
	g := &s.gate
	g.mu.Lock()
	if g.byAddr == nil {
		g.byAddr, g.pending = map[string]int{}, map[*conn]time.Time{}
	}
	if lim.PerAddr > 0 && g.byAddr[ip] >= lim.PerAddr {
		g.mu.Unlock()
		return fmt.Errorf("%d handshakes already pending from %s", lim.PerAddr, ip)
	}
	var evict *conn
	if lim.Global > 0 && len(g.pending) >= lim.Global {
		evict, _ = g.oldest()
		g.drop(evict)
	}
	g.byAddr[ip]++
	g.pending[c] = time.Now()
	g.mu.Unlock()
	if evict != nil {
		evict.close("handshake evicted: too many pending")
	}
	return nil
}

// handshakeDone ends c's pending state (authenticated or failed).
func (s *Server) handshakeDone(c *conn, authenticated bool) {
	s.gate.mu.Lock()
	if _, ok := s.gate.pending[c]; ok && authenticated {
		now := time.Now()
		s.gate.pace.completed(now.Sub(s.gate.pending[c]))
		s.gate.pace.count(now)
	}
	s.gate.drop(c)
	s.gate.mu.Unlock()
}

// pacer spreads the agents refused during a reconnect storm over the time
// the server needs to take them. Its throughput estimate follows Little's
// law: with the pending limit L full and handshakes taking D on average,
// the server completes L/D per second. Each refused agent is given its own
// slot in a virtual queue drained at that rate and told to come back at
// about that time: an agent honouring Retry-After r returns within
// [r, 2r) (proto/reconnect), so r is two thirds of the slot's distance,
// and the slots' spread matches what the server can take. Agents that do
// not honour it (MeshCentral's clients never hear one from MeshCentral)
// are only refused, as before.
//
// D is measured twice, by a slow and a fast moving average, because a
// storm changes it quickly both ways: at its peak handshakes queue for the
// CPU (and for the agents' own answers) and take seconds, and once the
// refused agents are spread they take milliseconds again. The queue is
// kept as a number of slots, not as a point in time, and drains at the
// rate measured now: a queue built while handshakes took seconds must not
// push later refusals out by the seconds-per-slot of the peak (a server
// restarted with 19,000 agents then admitted 40 to 170 a second at a tenth
// of its CPU). Slots are spaced by the faster of the two estimates, so a
// recovering server is not paced by its past, and a handshake counts as
// stalled against the larger one, so handshakes that only slowed down
// under the storm are not evicted as stalled (each eviction throws away a
// signature already paid for and sends the agent into its backoff).
//
// Little's law needs the limit to be full and D to be the server's own
// time; on a loaded machine D also holds the agents' side and whatever
// else shares the CPUs, and then L/D says a fraction of what the server
// completes: a restart with 19,000 agents (loadgen on the same two CPUs)
// had all its refusals in the first 12 s and then took agents at a fifth
// of its CPU for 100 s. So the rate is also measured directly
// (authentications per second, over windows of at least a second) and
// slots are spaced by the faster of the two. Erring early is cheap since
// refusals come before TLS (Listener): an agent back too soon costs a
// refused TCP connection.
type pacer struct {
	avg    time.Duration // slow moving average of successful handshake durations
	fast   time.Duration // fast one
	queued float64       // slots handed out and not yet drained
	at     time.Time     // when queued was last drained

	winStart time.Time // the current counting window
	winCount int       // authentications in it
	rate     float64   // authentications per second in the last closed window
	rateAt   time.Time // when that window closed
}

// rateWindow is the shortest window the rate is measured over; a rate
// older than rateFresh is not used (the server has been idle since).
const (
	rateWindow = time.Second
	rateFresh  = 5 * time.Second
)

// count records one authentication at now.
func (p *pacer) count(now time.Time) {
	if p.winStart.IsZero() {
		p.winStart = now
	}
	p.winCount++
	if el := now.Sub(p.winStart); el >= rateWindow {
		p.rate, p.rateAt = float64(p.winCount)/el.Seconds(), now
		p.winStart, p.winCount = now, 0
	}
}

// maxRetryAfter bounds the pacer's answer in seconds. It is short because
// a refusal costs the server almost nothing now that it comes before TLS
// (Listener): an agent told to come back too early is refused again for
// the price of a TCP connection, while one told too late stays offline
// with the server idle. A restart with 19,000 agents on a loaded 2-CPU
// machine (the agents simulated on the same CPUs) measured its rate under
// the storm's first flood and, capped at 300 s, spread the agents over
// three minutes at a fifth of its CPU. The cap also bounds what an
// attacker's flood of refused connections can push real agents back by.
const maxRetryAfter = 30

// stalledAfter is the age from which a pending handshake counts as
// stalled: four times the larger average, at least minStalled.
func (p *pacer) stalledAfter() time.Duration { return max(4*p.avg, 4*p.fast, minStalled) }

func (p *pacer) completed(d time.Duration) {
	if p.avg == 0 {
		p.avg, p.fast = d, d
		return
	}
	p.avg += (d - p.avg) / 64
	p.fast += (d - p.fast) / 8
}

// slot is the spacing of the virtual queue for limit pending handshakes:
// the faster average over limit (1 s per handshake before any is measured,
// a fresh start), or the measured rate's spacing if that is shorter.
func (p *pacer) slot(now time.Time, limit int) time.Duration {
	d := min(p.avg, p.fast)
	if d <= 0 {
		d = time.Second
	}
	if limit <= 0 {
		limit = DefaultMaxPending
	}
	per := d / time.Duration(limit)
	if p.rate > 0 && now.Sub(p.rateAt) < rateFresh {
		per = min(per, time.Duration(float64(time.Second)/p.rate))
	}
	return max(per, time.Nanosecond)
}

// retryAfter hands out the next slot for limit pending handshakes and
// returns the Retry-After in whole seconds, at least 1.
func (p *pacer) retryAfter(now time.Time, limit int) int {
	per := p.slot(now, limit)
	if el := now.Sub(p.at); el > 0 {
		p.queued = max(p.queued-float64(el)/float64(per), 0)
	}
	p.at = now
	// Past the cap every agent hears maxRetryAfter; counting further slots
	// would only keep later ones there after the queue has moved on.
	p.queued = min(p.queued+1, float64(maxRetryAfter*time.Second*3/2)/float64(per))
	dist := time.Duration(p.queued * float64(per))
	secs := int((dist*2/3 + time.Second - 1) / time.Second)
	return min(max(secs, 1), maxRetryAfter)
}

func (g *handshakeGate) drop(c *conn) {
	if _, ok := g.pending[c]; !ok {
		return
	}
	delete(g.pending, c)
	ip := addrOf(c.remote)
	if g.byAddr[ip]--; g.byAddr[ip] <= 0 {
		delete(g.byAddr, ip)
	}
}

// PendingHandshakes is how many sockets are between upgrade and
// authentication now.
func (s *Server) PendingHandshakes() int {
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	return len(s.gate.pending)
}

// HandshakeLimits returns the limits in force (defaults filled in; 0 means
// no limit).
func (s *Server) HandshakeLimits() HandshakeLimits {
	l := HandshakeLimits{PerAddr: s.cfg.MaxPendingPerAddr, Global: s.cfg.MaxPending}
	switch {
	case l.PerAddr == 0:
		l.PerAddr = DefaultMaxPendingPerAddr
	case l.PerAddr < 0:
		l.PerAddr = 0
	}
	switch {
	case l.Global == 0:
		l.Global = DefaultMaxPending
	case l.Global < 0:
		l.Global = 0
	}
	return l
}

// Limits on what an agent reports about itself.
const (
	// MaxReport bounds a stored netinfo or sysinfo document.
	MaxReport = store.MaxDeviceInfo
	// MaxNameLen bounds a device name, core name or OS description an
	// agent sends, in characters; MaxUsers the logged-in users it lists.
	MaxNameLen = 256
	MaxOSDesc  = 1024
	MaxUsers   = 64
	maxHashLen = 128
)

// checkNetInfo accepts a netinfo message that fits and is a JSON object
// whose netif2, when present, is an object.
func checkNetInfo(msg []byte) error {
	if len(msg) > MaxReport {
		return fmt.Errorf("netinfo of %d bytes (limit %d)", len(msg), MaxReport)
	}
	var m struct {
		NetIf2 json.RawMessage `json:"netif2"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return fmt.Errorf("netinfo: %w", err)
	}
	if len(m.NetIf2) > 0 && m.NetIf2[0] != '{' {
		return fmt.Errorf("netinfo: netif2 is not an object")
	}
	return nil
}

// checkSysInfo accepts sysinfo data that fits, is a JSON object and has a
// string hash of at most 128 characters (MeshCentral checks the same
// shape), and returns the hash.
func checkSysInfo(data json.RawMessage) (string, error) {
	if len(data) > MaxReport {
		return "", fmt.Errorf("sysinfo of %d bytes (limit %d)", len(data), MaxReport)
	}
	if len(data) == 0 || data[0] != '{' {
		return "", fmt.Errorf("sysinfo data is not an object")
	}
	var h struct {
		Hash *string `json:"hash"`
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return "", fmt.Errorf("sysinfo: %w", err)
	}
	if h.Hash != nil && len(*h.Hash) > maxHashLen {
		return "", fmt.Errorf("sysinfo hash of %d bytes", len(*h.Hash))
	}
	if h.Hash == nil {
		return "", nil
	}
	return *h.Hash, nil
}

// fits reports whether s is valid UTF-8 of at most n characters.
func fits(s string, n int) bool {
	return len(s) <= 4*n && utf8.ValidString(s) && utf8.RuneCountInString(s) <= n
}

// clip shortens s to at most n characters (for names the agent gives in
// the handshake, which are only shown).
func clip(s string, n int) string {
	if fits(s, n) {
		return s
	}
	s = strings.ToValidUTF8(s, "")
	if r := []rune(s); len(r) > n {
		s = string(r[:n])
	}
	return s
}

func allFit(l []string, n int) bool {
	for _, s := range l {
		if !fits(s, n) {
			return false
		}
	}
	return true
}
