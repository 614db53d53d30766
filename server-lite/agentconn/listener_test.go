package agentconn

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/reconnect"
	"github.com/meshgo/meshagent/server-lite/certs"
)

// gated is a Listener on 127.0.0.1 whose accepted connections arrive on
// the returned channel.
func gated(t *testing.T, s *Server) (string, chan *openConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gl := s.Listener(ln)
	t.Cleanup(func() { gl.Close() })
	ch := make(chan *openConn, 64)
	go func() {
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			ch <- c.(*openConn)
		}
	}()
	return ln.Addr().String(), ch
}

// knock connects from 127.0.0.<from> and says whether the server refused
// before TLS (and its Retry-After), or accepted (the accepted side is
// returned, left open).
func knock(t *testing.T, addr string, from byte, accepted chan *openConn) (refused bool, retry string, oc *openConn) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Write([]byte{0x16, 3, 1, 0, 0}) // the start of a ClientHello
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	type answer struct {
		resp *http.Response
		err  error
	}
	ans := make(chan answer, 1)
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		ans <- answer{resp, err}
	}()
	select {
	case oc := <-accepted:
		return false, "", oc
	case a := <-ans:
		if a.err != nil {
			t.Fatalf("neither accepted nor refused: %v", a.err)
		}
		if a.resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("refusal status %d", a.resp.StatusCode)
		}
		return true, a.resp.Header.Get("Retry-After"), nil
	}
}

func TestListenerGate(t *testing.T) {
	type step struct {
		from    byte // source 127.0.0.<from>; 0: an action instead
		refused bool
		act     string // "first request", "close", "stall" (backdate every open one), "pending full"
	}
	for _, tc := range []struct {
		name            string
		perAddr, global int
		steps           []step
	}{
		{"per address", 2, 10, []step{{from: 1}, {from: 1}, {from: 1, refused: true}, {from: 2}}},
		{"in all", 0, 2, []step{{from: 1}, {from: 2}, {from: 3, refused: true}}},
		{"a first request frees the slot", 0, 2, []step{{from: 1}, {from: 2}, {act: "first request"}, {from: 3}, {from: 4, refused: true}}},
		{"a close frees the slot", 1, 5, []step{{from: 1}, {from: 1, refused: true}, {act: "close"}, {from: 1}}},
		// Sockets that never send a request stop counting once stalled,
		// so holding them open cannot keep anyone out.
		{"stalled ones stop counting", 1, 2, []step{{from: 1}, {from: 2}, {from: 3, refused: true}, {act: "stall"}, {from: 3}, {from: 1}}},
		{"no limits", -1, -1, []step{{from: 1}, {from: 1}, {from: 1}}},
		// What makes ServeHTTP answer 503 refuses before TLS too.
		{"pending handshakes crowded", 0, 2, []step{{from: 1}, {act: "pending full"}, {from: 2, refused: true}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Server{cfg: Config{MaxPendingPerAddr: tc.perAddr, MaxPending: tc.global}, log: slog.New(slog.DiscardHandler)}
			addr, accepted := gated(t, s)
			var open []*openConn
			for i, st := range tc.steps {
				switch st.act {
				case "first request":
					s.openDone(open[0], true)
					open = open[1:]
					continue
				case "close":
					open[0].Close()
					open = open[1:]
					continue
				case "stall":
					s.gate.mu.Lock()
					for _, c := range open {
						c.at = c.at.Add(-time.Hour)
					}
					s.gate.mu.Unlock()
					continue
				case "pending full":
					s.gate.mu.Lock()
					s.gate.byAddr, s.gate.pending = map[string]int{}, map[*conn]time.Time{}
					for range 2 {
						s.gate.pending[&conn{remote: "127.0.0.9:1"}] = time.Now()
					}
					s.gate.mu.Unlock()
					continue
				}
				refused, retry, oc := knock(t, addr, st.from, accepted)
				if refused != st.refused {
					t.Fatalf("step %d (from .%d): refused %v, want %v", i, st.from, refused, st.refused)
				}
				if refused && retry == "" {
					t.Fatalf("step %d: refusal without Retry-After", i)
				}
				if oc != nil {
					open = append(open, oc)
				}
			}
		})
	}
}

// TestListenerEndToEnd: behind http.Server with TLS, a refused agent sees
// the refusal with its Retry-After (reconnect.DetectPlainRefusal), a client
// let in is served, and its first request ends its opening phase.
func TestListenerEndToEnd(t *testing.T) {
	set, _, err := certs.LoadOrCreate(t.TempDir(), certs.Options{AgentKeyBits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: Config{MaxPending: 1}, log: slog.New(slog.DiscardHandler)}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler:   http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{set.Web}},
		ConnState: s.ConnState,
		ErrorLog:  log.New(io.Discard, "", 0), // the refused and the held socket's TLS errors
	}
	go srv.ServeTLS(s.Listener(ln), "", "")
	defer srv.Close()
	addr := ln.Addr().String()

	// One raw socket holds the only slot (no ClientHello yet).
	hold, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	waitOpen(t, s, 1)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(reconnect.DetectPlainRefusal(c), &tls.Config{InsecureSkipVerify: true})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	err = tc.Handshake()
	var r *reconnect.ErrRefused
	if !errors.As(err, &r) || !r.BeforeTLS || r.Status != http.StatusServiceUnavailable || r.RetryAfter < time.Second {
		t.Fatalf("second connection: %v, want a refusal before TLS with a Retry-After", err)
	}
	c.Close()

	hold.Close()
	waitOpen(t, s, 0)
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: false}}
	resp, err := cl.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "ok") {
		t.Fatalf("served %q", b)
	}
	// The kept-alive connection is idle now: not opening, so it does not
	// hold the slot.
	waitOpen(t, s, 0)
	s.gate.mu.Lock()
	avg := s.gate.open.avg
	s.gate.mu.Unlock()
	if avg <= 0 {
		t.Fatal("no opening duration measured")
	}
}

func waitOpen(t *testing.T, s *Server, n int) {
	t.Helper()
	for range 500 {
		s.gate.mu.Lock()
		got := s.gate.open.n
		s.gate.mu.Unlock()
		if got == n {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("opening connections did not reach %d", n)
}
