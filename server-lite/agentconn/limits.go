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
	// DefaultMaxPending: when this many are pending in all, the oldest
	// pending one is closed to admit the new one. Real agents finish in
	// milliseconds, so the oldest are the stalled ones: a flood from many
	// addresses evicts itself instead of locking real agents out.
	DefaultMaxPending = 512
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
}

func addrOf(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

// crowded reports, before the upgrade, whether remote's address already
// has its limit of pending handshakes, so the refusal costs no WebSocket.
// admit enforces the limit exactly afterwards.
func (s *Server) crowded(remote string) bool {
	lim := s.HandshakeLimits()
	s.gate.mu.Lock()
	defer s.gate.mu.Unlock()
	return lim.PerAddr > 0 && s.gate.byAddr[addrOf(remote)] >= lim.PerAddr
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
		var oldest time.Time
		for p, t := range g.pending {
			if evict == nil || t.Before(oldest) {
				evict, oldest = p, t
			}
		}
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

// done ends c's pending state (authenticated or failed).
func (s *Server) handshakeDone(c *conn) {
	s.gate.mu.Lock()
	s.gate.drop(c)
	s.gate.mu.Unlock()
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
