package relay

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

type env struct {
	t   *testing.T
	srv *Server
	tok *Tokens
	url string
}

func newEnv(t *testing.T, cfg Config) *env {
	tok := NewTokens()
	cfg.Authorizer = tok
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := New(cfg)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() { srv.Close(); hs.Close() })
	return &env{t: t, srv: srv, tok: tok, url: "ws" + strings.TrimPrefix(hs.URL, "http") + "/meshrelay.ashx"}
}

// dial connects with the given query; it returns the HTTP status on refusal.
func (e *env) dial(q url.Values) (*websocket.Conn, int) {
	e.t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(e.url+"?"+q.Encode(), nil)
	if err != nil {
		if resp != nil {
			return nil, resp.StatusCode
		}
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { ws.Close() })
	return ws, 101
}

func (e *env) pair(id string) (user, agent *websocket.Conn) {
	e.t.Helper()
	ut := e.tok.Issue(Grant{Side: SideUser, UserID: "user//admin", ID: id}, time.Minute)
	at := e.tok.Issue(Grant{Side: SideAgent, UserID: "user//admin", ID: id}, time.Minute)
	user, code := e.dial(url.Values{"id": {id}, "auth": {ut}, "browser": {"1"}})
	if code != 101 {
		e.t.Fatalf("user refused: %d", code)
	}
	agent, code = e.dial(url.Values{"id": {id}, "rauth": {at}, "p": {"1"}})
	if code != 101 {
		e.t.Fatalf("agent refused: %d", code)
	}
	for _, c := range []*websocket.Conn{user, agent} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		typ, m, err := c.ReadMessage()
		if err != nil || typ != websocket.TextMessage || string(m) != "c" {
			e.t.Fatalf("first frame %d %q %v", typ, m, err)
		}
		c.SetReadDeadline(time.Time{})
	}
	return user, agent
}

// stream sends n bytes of random data from src in frames of varied size,
// alternating binary and text frames, and returns the checksum of what it
// sent and the frame-type sequence.
func stream(t *testing.T, src *websocket.Conn, n int) (sum [32]byte, types []int) {
	h := sha256.New()
	buf := make([]byte, 70<<10)
	for sent, i := 0, 0; sent < n; i++ {
		size := 1 + (i*7919)%len(buf)
		if size > n-sent {
			size = n - sent
		}
		typ := websocket.BinaryMessage
		chunk := buf[:size]
		rand.Read(chunk)
		if i%5 == 4 {
			typ = websocket.TextMessage
			for j := range chunk {
				chunk[j] = 'a' + chunk[j]%26
			}
		}
		if err := src.WriteMessage(typ, chunk); err != nil {
			t.Error(err)
			return
		}
		h.Write(chunk)
		types = append(types, typ)
		sent += size
	}
	copy(sum[:], h.Sum(nil))
	return sum, types
}

func drain(t *testing.T, dst *websocket.Conn, n int) (sum [32]byte, types []int) {
	h := sha256.New()
	dst.SetReadDeadline(time.Now().Add(30 * time.Second))
	for got := 0; got < n; {
		typ, m, err := dst.ReadMessage()
		if err != nil {
			t.Error(err)
			return
		}
		h.Write(m)
		types = append(types, typ)
		got += len(m)
	}
	copy(sum[:], h.Sum(nil))
	return sum, types
}

func TestRelayPipesBothWaysIntact(t *testing.T) {
	e := newEnv(t, Config{})
	user, agent := e.pair("sess1")
	const n = 6 << 20
	var wg sync.WaitGroup
	type result struct {
		sum   [32]byte
		types []int
	}
	var up, down, upGot, downGot result
	wg.Add(4)
	go func() { defer wg.Done(); up.sum, up.types = stream(t, user, n) }()
	go func() { defer wg.Done(); down.sum, down.types = stream(t, agent, n) }()
	go func() { defer wg.Done(); upGot.sum, upGot.types = drain(t, agent, n) }()
	go func() { defer wg.Done(); downGot.sum, downGot.types = drain(t, user, n) }()
	wg.Wait()
	if up.sum != upGot.sum || down.sum != downGot.sum {
		t.Fatal("checksum mismatch")
	}
	if !equalInts(up.types, upGot.types) || !equalInts(down.types, downGot.types) {
		t.Fatal("frame boundaries or types changed")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRelayRefusals(t *testing.T) {
	e := newEnv(t, Config{PairTimeout: 2 * time.Second})
	used := e.tok.Issue(Grant{UserID: "user//a"}, time.Minute)
	if _, code := e.dial(url.Values{"id": {"x1"}, "auth": {used}}); code != 101 {
		t.Fatalf("valid token refused: %d", code)
	}
	expired := e.tok.Issue(Grant{UserID: "user//a"}, -time.Second)
	other := e.tok.Issue(Grant{UserID: "user//a", ID: "someone-else"}, time.Minute)
	wrongNode := e.tok.Issue(Grant{UserID: "user//a", NodeID: "node//A"}, time.Minute)
	noUser := e.tok.Issue(Grant{}, time.Minute)
	cases := []struct {
		name string
		q    url.Values
		want int
	}{
		{"no token", url.Values{"id": {"x2"}}, 401},
		{"unknown token", url.Values{"id": {"x2"}, "rauth": {"forged"}}, 401},
		{"replayed token", url.Values{"id": {"x2"}, "auth": {used}}, 401},
		{"expired token", url.Values{"id": {"x2"}, "auth": {expired}}, 401},
		{"token for another session", url.Values{"id": {"x2"}, "auth": {other}}, 401},
		{"token for another device", url.Values{"id": {"x2"}, "nodeid": {"node//B"}, "auth": {wrongNode}}, 401},
		{"grant without user", url.Values{"id": {"x2"}, "auth": {noUser}}, 401},
		{"no id", url.Values{"auth": {"whatever"}}, 400},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, code := e.dial(tc.q); code != tc.want {
				t.Fatalf("status %d, want %d", code, tc.want)
			}
		})
	}

	t.Run("third connection", func(t *testing.T) {
		e.pair("s3")
		tok := e.tok.Issue(Grant{UserID: "user//admin"}, time.Minute)
		if _, code := e.dial(url.Values{"id": {"s3"}, "auth": {tok}}); code != 409 {
			t.Fatalf("status %d", code)
		}
	})
	t.Run("different users", func(t *testing.T) {
		a := e.tok.Issue(Grant{UserID: "user//a"}, time.Minute)
		b := e.tok.Issue(Grant{UserID: "user//b"}, time.Minute)
		e.dial(url.Values{"id": {"s4"}, "auth": {a}})
		ws, _ := e.dial(url.Values{"id": {"s4"}, "rauth": {b}})
		ws.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, m, err := ws.ReadMessage(); err == nil {
			t.Fatalf("mismatched users paired, got %q", m)
		}
	})
}

func TestRelayCloseOneSideClosesOther(t *testing.T) {
	e := newEnv(t, Config{})
	for _, closeUser := range []bool{true, false} {
		user, agent := e.pair("close" + map[bool]string{true: "u", false: "a"}[closeUser])
		closer, other := user, agent
		if !closeUser {
			closer, other = agent, user
		}
		closer.WriteMessage(websocket.BinaryMessage, []byte("last"))
		closer.Close()
		other.SetReadDeadline(time.Now().Add(5 * time.Second))
		var got [][]byte
		for {
			_, m, err := other.ReadMessage()
			if err != nil {
				if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
					t.Fatal("other side not closed")
				}
				break
			}
			got = append(got, m)
		}
		if len(got) != 1 || !bytes.Equal(got[0], []byte("last")) {
			t.Fatalf("frames before close: %q", got)
		}
	}
}

func TestRelayTimeouts(t *testing.T) {
	e := newEnv(t, Config{PairTimeout: 300 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	t.Run("unpaired", func(t *testing.T) {
		tok := e.tok.Issue(Grant{UserID: "user//a"}, time.Minute)
		ws, _ := e.dial(url.Values{"id": {"lonely"}, "auth": {tok}})
		start := time.Now()
		ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := ws.ReadMessage(); err == nil || time.Since(start) > 3*time.Second {
			t.Fatalf("unpaired not closed in time: %v", err)
		}
	})
	t.Run("idle", func(t *testing.T) {
		user, agent := e.pair("idle")
		// Traffic in one direction only keeps the session alive.
		for i := 0; i < 6; i++ {
			user.WriteMessage(websocket.BinaryMessage, []byte{1})
			agent.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, _, err := agent.ReadMessage(); err != nil {
				t.Fatalf("closed while active: %v", err)
			}
			time.Sleep(150 * time.Millisecond)
		}
		start := time.Now()
		user.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, _, err := user.ReadMessage(); err == nil || time.Since(start) > 3*time.Second {
			t.Fatalf("idle session not closed: %v", err)
		}
	})
}

func TestTunnelValue(t *testing.T) {
	v := TunnelValue(1, "node//a$b@c", "id1", "tok")
	if !strings.HasPrefix(v, "*/meshrelay.ashx?") {
		t.Fatal(v)
	}
	u, err := url.Parse(strings.TrimPrefix(v, "*"))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if q.Get("p") != "1" || q.Get("nodeid") != "node//a$b@c" || q.Get("id") != "id1" || q.Get("rauth") != "tok" {
		t.Fatal(q)
	}
	_ = http.StatusOK
}

// firstFrame reads the first frame, or reports the error.
func firstFrame(ws *websocket.Conn, d time.Duration) (string, error) {
	ws.SetReadDeadline(time.Now().Add(d))
	defer ws.SetReadDeadline(time.Time{})
	_, m, err := ws.ReadMessage()
	return string(m), err
}

// TestRelayOtherUserCannotSquat: an end of another user under the same
// pairing id neither pairs nor spoils the pairing, whichever comes first;
// ends naming different devices do not pair.
func TestRelayOtherUserCannotSquat(t *testing.T) {
	e := newEnv(t, Config{PairTimeout: time.Second})
	const id = "pairing-1"
	squat, _ := e.dial(url.Values{"id": {id}, "auth": {e.tok.Issue(Grant{Side: SideUser, UserID: "user//mallory"}, time.Minute)}})
	agent, _ := e.dial(url.Values{"id": {id}, "nodeid": {"node//N"}, "rauth": {e.tok.Issue(Grant{Side: SideAgent, UserID: "user//bob", ID: id, NodeID: "node//N"}, time.Minute)}})
	late, _ := e.dial(url.Values{"id": {id}, "auth": {e.tok.Issue(Grant{Side: SideUser, UserID: "user//eve"}, time.Minute)}})
	user, _ := e.dial(url.Values{"id": {id}, "nodeid": {"node/x/N"}, "auth": {e.tok.Issue(Grant{Side: SideUser, UserID: "user//bob"}, time.Minute)}})
	for name, ws := range map[string]*websocket.Conn{"agent": agent, "user": user} {
		if m, err := firstFrame(ws, 5*time.Second); m != "c" || err != nil {
			t.Errorf("%s: %q %v", name, m, err)
		}
	}
	for name, ws := range map[string]*websocket.Conn{"squatter": squat, "late": late} {
		if m, err := firstFrame(ws, 5*time.Second); err == nil {
			t.Errorf("%s got %q", name, m)
		}
	}
	// Different devices.
	const id2 = "pairing-2"
	a2, _ := e.dial(url.Values{"id": {id2}, "nodeid": {"node//N"}, "rauth": {e.tok.Issue(Grant{Side: SideAgent, UserID: "user//bob", ID: id2, NodeID: "node//N"}, time.Minute)}})
	u2, _ := e.dial(url.Values{"id": {id2}, "nodeid": {"node//OTHER"}, "auth": {e.tok.Issue(Grant{Side: SideUser, UserID: "user//bob"}, time.Minute)}})
	if m, err := firstFrame(u2, 3*time.Second); err == nil {
		t.Errorf("user end naming another device got %q", m)
	}
	a2.Close()
}

// TestRelayCloseMatching ends paired and waiting sessions whose grants
// match, and Tokens.Revoke drops unused tokens.
func TestRelayCloseMatching(t *testing.T) {
	e := newEnv(t, Config{})
	user, agent := e.pair("p1")
	other, _ := e.pair("p2")
	waiting, _ := e.dial(url.Values{"id": {"p3"}, "auth": {e.tok.Issue(Grant{Side: SideUser, UserID: "user//admin", Credential: "tok"}, time.Minute)}})
	unused := e.tok.Issue(Grant{Side: SideUser, UserID: "user//admin", Credential: "tok"}, time.Minute)
	time.Sleep(100 * time.Millisecond)
	n := e.srv.CloseMatching(func(g Grant) bool { return g.ID == "p1" || g.Credential == "tok" })
	if n != 2 {
		t.Errorf("CloseMatching ended %d, want 2", n)
	}
	for name, ws := range map[string]*websocket.Conn{"user": user, "agent": agent, "waiting": waiting} {
		if _, err := firstFrame(ws, 3*time.Second); err == nil {
			t.Errorf("%s still open", name)
		}
	}
	if err := other.WriteMessage(websocket.TextMessage, []byte("x")); err != nil {
		t.Errorf("unmatched session: %v", err)
	}
	e.tok.Revoke(func(g Grant) bool { return g.Credential == "tok" })
	if _, code := e.dial(url.Values{"id": {"p4"}, "auth": {unused}}); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", code)
	}
}
