package adminapi_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/store"
)

// tryFrom opens control.ashx from a given loopback source address and
// returns "" on success or the close msg.
func (e *probeEnv) tryFrom(src, query string, h http.Header) string {
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	d := websocket.Dialer{NetDialContext: nd.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	u := e.url + "/control.ashx"
	if query != "" {
		u += "?" + query
	}
	ws, _, err := d.Dial(u, h)
	if err != nil {
		return err.Error()
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	m := readMsg(e.t, ws)
	if m["action"] == "close" {
		return m["msg"].(string)
	}
	return ""
}

func (e *probeEnv) events(action string) []store.Event {
	e.t.Helper()
	evs, err := e.app.Store.Events(store.EventFilter{Kind: store.EvAdmin})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// TestProbeLoginBruteForce is finding 3: 200 wrong x-meshauth passwords
// from one client, 10 at a time. Only MeshCentral's default of 10 may be
// checked; the rest, and then the right password, are refused with
// MeshCentral's "banned" close until the window passes; each failure and
// the ban are in the audit log.
func TestProbeLoginBruteForce(t *testing.T) {
	// MeshCentral's default counts; a short window so that the test can
	// see the ban end.
	const window = 20 * time.Second
	e := newProbeEnv(t, &adminapi.LoginLimits{Window: window})
	e.login(e.admin, e.pass).adduser("carol", "carol-pw")

	var wrong, banned atomic.Int32
	var lastFail atomic.Int64 // when the last checked failure was answered
	var wg sync.WaitGroup
	start := time.Now()
	jobs := make(chan int)
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				switch msg := e.tryFrom("127.0.0.1", "", meshAuth(e.admin, "wrong")); msg {
				case "noauth-2d":
					wrong.Add(1)
					lastFail.Store(time.Now().UnixNano())
				case "banned-1":
					banned.Add(1)
				default:
					t.Errorf("wrong password answered %q", msg)
				}
			}
		}()
	}
	for i := range 200 {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	el := time.Since(start)
	t.Logf("200 wrong x-meshauth logins in %v: %d checked, %d refused by the throttle (%.0f checked/min)",
		el, wrong.Load(), banned.Load(), float64(wrong.Load())/el.Minutes())
	if wrong.Load() != adminapi.DefaultLoginAddrFailures || banned.Load() != 200-adminapi.DefaultLoginAddrFailures {
		t.Errorf("checked %d, banned %d; want %d checked", wrong.Load(), banned.Load(), adminapi.DefaultLoginAddrFailures)
	}
	// Every login path from this address is refused now, the right
	// password included.
	if msg := e.tryFrom("127.0.0.1", "", meshAuth(e.admin, e.pass)); msg != "banned-1" {
		t.Errorf("right password during the ban: %q", msg)
	}
	if msg := e.tryFrom("127.0.0.1", "user="+e.admin+"&pass="+url.QueryEscape(e.pass), nil); msg != "banned-1" {
		t.Errorf("?user=&pass= during the ban: %q", msg)
	}
	if msg := e.tryFrom("127.0.0.1", "auth="+strings.Repeat("A", 64), nil); msg != "banned-1" {
		t.Errorf("login key during the ban: %q", msg)
	}
	if code := formLogin(t, e.url, e.admin, e.pass); code != http.StatusTooManyRequests {
		t.Errorf("form login during the ban: %d", code)
	}
	// Another address is not affected by this address's ban (the account
	// limit counts the same failures, so it is also at 10: use another
	// account).
	if msg := e.tryFrom("127.0.0.2", "", meshAuth("carol", "carol-pw")); msg != "" {
		t.Errorf("other address, other account: %q", msg)
	}
	if got := len(e.events("loginfailed")); got != adminapi.DefaultLoginAddrFailures {
		t.Errorf("audit: %d loginfailed events", got)
	}
	if evs := e.events("loginbanned"); len(evs) != 2 || evs[0].From != "127.0.0.1" {
		t.Errorf("audit: loginbanned events %+v, want address and account", evs)
	}
	// After the window the right password works again.
	time.Sleep(time.Until(time.Unix(0, lastFail.Load()).Add(window + time.Second)))
	if msg := e.tryFrom("127.0.0.1", "", meshAuth(e.admin, e.pass)); msg != "" {
		t.Errorf("right password after the window: %q", msg)
	}
}

func formLogin(t *testing.T, wsURL, user, pass string) int {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	u := "https://" + strings.TrimPrefix(wsURL, "wss://") + "/login"
	resp, err := hc.PostForm(u, url.Values{"username": {user}, "password": {pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestProbeLoginThrottlePaths: each login path counts, parallel form logins
// cannot overtake the limit, the per-account limit holds across addresses,
// and the limits are configurable.
func TestProbeLoginThrottlePaths(t *testing.T) {
	t.Run("parallel form logins", func(t *testing.T) {
		e := newProbeEnv(t, &adminapi.LoginLimits{AddrFailures: 3, AccountFailures: -1})
		e.api.SetLoginFailDelay(300 * time.Millisecond) // the 2 s of production, shortened
		var codes sync.Map
		var wg sync.WaitGroup
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := formLogin(t, e.url, e.admin, "wrong")
				n, _ := codes.LoadOrStore(c, new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
			}()
		}
		wg.Wait()
		get := func(c int) int32 {
			if n, ok := codes.Load(c); ok {
				return n.(*atomic.Int32).Load()
			}
			return 0
		}
		if get(http.StatusUnauthorized) != 3 || get(http.StatusTooManyRequests) != 7 {
			t.Errorf("10 parallel form logins: %d checked (401), %d throttled (429); want 3 and 7",
				get(http.StatusUnauthorized), get(http.StatusTooManyRequests))
		}
	})
	t.Run("query and login key", func(t *testing.T) {
		e := newProbeEnv(t, &adminapi.LoginLimits{AddrFailures: 4})
		for i, q := range []string{"user=admin&pass=x", "auth=" + strings.Repeat("B", 60), "user=nobody&pass=x", "auth=" + strings.Repeat("C", 60)} {
			if msg := e.tryFrom("127.0.0.1", q, nil); msg == "" || msg == "banned-1" {
				t.Errorf("attempt %d: %q", i, msg)
			}
		}
		if msg := e.tryFrom("127.0.0.1", "user=admin&pass="+url.QueryEscape(e.pass), nil); msg != "banned-1" {
			t.Errorf("after 4 failures: %q", msg)
		}
	})
	t.Run("per account across addresses", func(t *testing.T) {
		e := newProbeEnv(t, &adminapi.LoginLimits{AddrFailures: -1, AccountFailures: 5})
		for i := range 5 {
			src := net.IPv4(127, 0, 1, byte(i+1)).String()
			if msg := e.tryFrom(src, "", meshAuth("ADMIN", "guess")); msg != "noauth-2d" {
				t.Errorf("guess %d from %s: %q", i, src, msg)
			}
		}
		if msg := e.tryFrom("127.0.2.1", "", meshAuth(e.admin, e.pass)); msg != "banned-1" {
			t.Errorf("account after 5 failures from 5 addresses: %q", msg)
		}
		e.api.SetLoginLimits(adminapi.LoginLimits{AddrFailures: -1, AccountFailures: -1})
		if msg := e.tryFrom("127.0.2.1", "", meshAuth(e.admin, e.pass)); msg != "" {
			t.Errorf("limits disabled: %q", msg)
		}
	})
}

// TestProbeLoginTiming is finding 4: with production's bcrypt cost, an
// unknown user name must take as long to refuse as a known one with a wrong
// password (it took 3 ms against 79 ms), over x-meshauth and login tokens.
func TestProbeLoginTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("bcrypt at the default cost")
	}
	e := newProbeEnv(t, &adminapi.LoginLimits{AddrFailures: -1, AccountFailures: -1})
	e.app.Accounts.SetHashCost(bcrypt.DefaultCost)
	if err := e.app.Accounts.SetPassword(accounts.UserID(e.admin), e.pass); err != nil { // rehash at the default cost
		t.Fatal(err)
	}
	tok := e.login(e.admin, e.pass).do(map[string]any{"action": "createLoginToken", "name": "t"})
	tokenUser, _ := tok["tokenUser"].(string)
	median := func(user string) time.Duration {
		var ds []time.Duration
		for i := range 7 {
			name := user
			if name == "" {
				name = fmt.Sprintf("nobody%d", i)
			}
			t0 := time.Now()
			if msg := e.tryFrom("127.0.0.1", "", meshAuth(name, "wrong password")); msg != "noauth-2d" {
				t.Fatalf("%s: %q", name, msg)
			}
			ds = append(ds, time.Since(t0))
		}
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	median("") // warm up
	unknown, known := median(""), median(e.admin)
	unknownTok, knownTok := median("~t:NoSuchToken12345"), median(tokenUser)
	t.Logf("median refusal: unknown user %v, known user %v; unknown token %v, known token %v", unknown, known, unknownTok, knownTok)
	for _, p := range [][2]time.Duration{{unknown, known}, {unknownTok, knownTok}} {
		if r := float64(p[0]) / float64(p[1]); r < 0.5 || r > 2 {
			t.Errorf("unknown/known timing ratio %.2f (%v vs %v)", r, p[0], p[1])
		}
	}
}
