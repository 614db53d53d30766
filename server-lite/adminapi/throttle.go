package adminapi

// Brute-force throttling of password and login-key logins (issue 20,
// finding 3), after MeshCentral's maxInvalidLogin (webserver.js: an address
// with 10 failures in 10 minutes is refused until the oldest ages out),
// applied per source address and, separately, per account name.

import (
	"strings"
	"sync"
	"time"
)

// LoginLimits configures login throttling. Zero fields take the defaults
// below; a negative count disables that limit.
type LoginLimits struct {
	// AddrFailures failed logins from one address within Window refuse
	// every further login attempt from it (any account, any method that
	// checks a credential) until the oldest failure is older than Window.
	AddrFailures int
	// AccountFailures failed logins for one account name within Window,
	// from any address, refuse further attempts for that name likewise. It
	// stops a distributed guess of one password; the price is that an
	// attacker can keep one account from logging in with a password (its
	// open sessions and cookies are unaffected).
	AccountFailures int
	Window          time.Duration
}

// Defaults: MeshCentral's maxInvalidLogin {time: 10, count: 10}.
const (
	DefaultLoginAddrFailures    = 10
	DefaultLoginAccountFailures = 10
	DefaultLoginWindow          = 10 * time.Minute
	// maxThrottleKeys bounds the throttle's memory: past it, keys with no
	// failure inside the window are dropped.
	maxThrottleKeys = 100_000
)

func (l LoginLimits) withDefaults() LoginLimits {
	if l.AddrFailures == 0 {
		l.AddrFailures = DefaultLoginAddrFailures
	}
	if l.AccountFailures == 0 {
		l.AccountFailures = DefaultLoginAccountFailures
	}
	if l.Window <= 0 {
		l.Window = DefaultLoginWindow
	}
	return l
}

type loginThrottle struct {
	lim  LoginLimits
	now  func() time.Time
	mu   sync.Mutex
	addr map[string]*failWindow
	acct map[string]*failWindow
}

// failWindow is one key's recent failures and the attempts being checked.
// Attempts in flight count as failures, so parallel guesses cannot all slip
// in before the first is recorded.
type failWindow struct {
	fails    []time.Time
	inflight int
}

func newLoginThrottle(l LoginLimits) *loginThrottle {
	return &loginThrottle{lim: l.withDefaults(), now: time.Now, addr: map[string]*failWindow{}, acct: map[string]*failWindow{}}
}

// attempt is one admitted login attempt; call done exactly once.
type attempt struct {
	t          *loginThrottle
	ip, acct   string
	doneCalled bool
}

// Refusal reasons.
const (
	throttledAddr    = "address"
	throttledAccount = "account"
)

// begin admits an attempt for ip and account name (either may be ""), or
// says which limit refuses it.
func (t *loginThrottle) begin(ip, account string) (*attempt, string) {
	account = strings.ToLower(account)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	if t.full(t.addr, ip, t.lim.AddrFailures, now) {
		return nil, throttledAddr
	}
	if t.full(t.acct, account, t.lim.AccountFailures, now) {
		return nil, throttledAccount
	}
	for _, k := range []struct {
		m   map[string]*failWindow
		key string
		n   int
	}{{t.addr, ip, t.lim.AddrFailures}, {t.acct, account, t.lim.AccountFailures}} {
		if k.key == "" || k.n < 0 {
			continue
		}
		w := k.m[k.key]
		if w == nil {
			if len(k.m) >= maxThrottleKeys {
				t.sweep(k.m, now)
			}
			w = &failWindow{}
			k.m[k.key] = w
		}
		w.inflight++
	}
	return &attempt{t: t, ip: ip, acct: account}, ""
}

// full prunes key's window and reports whether it is at its limit.
func (t *loginThrottle) full(m map[string]*failWindow, key string, limit int, now time.Time) bool {
	if key == "" || limit < 0 {
		return false
	}
	w := m[key]
	if w == nil {
		return false
	}
	cut := now.Add(-t.lim.Window)
	i := 0
	for i < len(w.fails) && w.fails[i].Before(cut) {
		i++
	}
	w.fails = w.fails[i:]
	if len(w.fails) == 0 && w.inflight == 0 {
		delete(m, key)
		return false
	}
	return len(w.fails)+w.inflight >= limit
}

func (t *loginThrottle) sweep(m map[string]*failWindow, now time.Time) {
	cut := now.Add(-t.lim.Window)
	for k, w := range m {
		if w.inflight == 0 && (len(w.fails) == 0 || w.fails[len(w.fails)-1].Before(cut)) {
			delete(m, k)
		}
	}
}

// done records the attempt's outcome. It returns which limits this failure
// has just reached ("" when none), so the caller audits a ban once.
func (a *attempt) done(ok bool) (reached []string) {
	if a == nil || a.doneCalled {
		return nil
	}
	a.doneCalled = true
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	for _, k := range []struct {
		m    map[string]*failWindow
		key  string
		n    int
		name string
	}{{t.addr, a.ip, t.lim.AddrFailures, throttledAddr}, {t.acct, a.acct, t.lim.AccountFailures, throttledAccount}} {
		w := k.m[k.key]
		if k.key == "" || k.n < 0 || w == nil {
			continue
		}
		w.inflight--
		if ok {
			continue
		}
		w.fails = append(w.fails, now)
		if len(w.fails) == k.n {
			reached = append(reached, k.name)
		}
	}
	return reached
}

// SetLoginLimits replaces the login throttle's limits (and forgets the
// failures counted so far); main calls it with its command-line flags.
// Call it before serving.
func (s *Server) SetLoginLimits(l LoginLimits) {
	s.cfg.LoginLimits = l
	s.throttle = newLoginThrottle(l)
}

// LoginLimits returns the limits in force, defaults filled in.
func (s *Server) LoginLimits() LoginLimits { return s.throttle.lim }

// SetLoginFailDelay changes how long a failed form login waits before it is
// answered (Config.LoginFailDelay); tests shorten it. Call before serving.
func (s *Server) SetLoginFailDelay(d time.Duration) { s.cfg.LoginFailDelay = d }
