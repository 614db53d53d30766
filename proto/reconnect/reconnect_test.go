package reconnect

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestBackoffBounds(t *testing.T) {
	const s = time.Second
	type step struct {
		connected  bool          // Connected() before Next
		retryAfter time.Duration // passed to Next
		lo, hi     time.Duration // Next in [lo, hi]
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"start then failures double to the cap", []step{
			{false, 0, 1 * s, 1500 * time.Millisecond}, // first ever
			{false, 0, 1 * s, 2 * s},                   // window 2 s
			{false, 0, 2 * s, 4 * s},
			{false, 0, 4 * s, 8 * s},
			{false, 0, 8 * s, 16 * s},
			{false, 0, 16 * s, 32 * s},
			{false, 0, 30 * s, 60 * s}, // capped window 60 s
			{false, 0, 30 * s, 60 * s},
		}},
		{"a lost connection retries spread, then grows again", []step{
			{false, 0, 1 * s, 1500 * time.Millisecond},
			{false, 0, 1 * s, 2 * s},
			{false, 0, 2 * s, 4 * s},
			{true, 0, 1 * s, 11 * s},
			{false, 0, 1 * s, 2 * s},
		}},
		{"retry-after paces, even beyond Max", []step{
			{true, 5 * s, 5 * s, 10 * s},
			{false, 90 * s, 90 * s, 180 * s},
			{false, 0, 1 * s, 2 * s}, // back to the schedule
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := 0; round < 200; round++ { // the jitter is random
				b := Backoff{Min: s, Max: 60 * s, Spread: 10 * s}
				for i, st := range tc.steps {
					if st.connected {
						b.Connected()
					}
					if d := b.Next(st.retryAfter); d < st.lo || d > st.hi {
						t.Fatalf("step %d: %v not in [%v, %v]", i, d, st.lo, st.hi)
					}
				}
			}
		})
	}
}

// TestBackoffSpreads checks that the first retries of agents lost together
// cover the spread window instead of bunching: each second of it gets a
// share.
func TestBackoffSpreads(t *testing.T) {
	var buckets [10]int
	for i := 0; i < 10000; i++ {
		b := Backoff{Min: time.Second, Max: time.Minute, Spread: 10 * time.Second}
		b.Connected()
		d := b.Next(0) - time.Second
		buckets[min(int(d/time.Second), 9)]++
	}
	for i, n := range buckets {
		if n < 700 || n > 1300 {
			t.Fatalf("second %d of the spread got %d of 10000 first retries: %v", i, n, buckets)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"5": 5 * time.Second, " 12 ": 12 * time.Second, "0": 0, "-3": 0, "": 0, "soon": 0,
		"Wed, 21 Oct 2015 07:28:00 GMT": 0, "999999": MaxRetryAfter, "99999999999999999999": 0,
	} {
		if got := ParseRetryAfter(in); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestRefused(t *testing.T) {
	if Refused(nil) != nil {
		t.Fatal("nil response: a refusal")
	}
	resp := &http.Response{StatusCode: 503, Header: http.Header{"Retry-After": {"7"}}}
	err := error(Refused(resp))
	if RetryAfter(err) != 7*time.Second {
		t.Fatalf("RetryAfter = %v", RetryAfter(err))
	}
	if RetryAfter(nil) != 0 {
		t.Fatal("nil error has a Retry-After")
	}
	if err.Error() != "server refused the connection: HTTP 503, retry after 7s" {
		t.Fatal(err.Error())
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	f.Add("5")
	f.Add("Wed, 21 Oct 2015 07:28:00 GMT")
	f.Fuzz(func(t *testing.T, v string) {
		if d := ParseRetryAfter(v); d < 0 || d > MaxRetryAfter {
			t.Fatalf("%q: %v", v, d)
		}
	})
}

// refusedErr is a real refused connection: a dial to a loopback port
// nothing listens on any more, wrapped as agent/core wraps it.
func refusedErr(t *testing.T) error {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err == nil {
		c.Close()
		t.Skip("something listens on the closed port again")
	}
	if !connRefused(err) {
		t.Fatalf("dialling a closed port: %v is not connection refused", err)
	}
	return fmt.Errorf("connect wss://%s/agent.ashx: %w", addr, err)
}

// TestNextAfter: while nothing listens, the window stops at RefusedMax
// (and falls back to it from a longer one); timeouts and other failures
// double to Max as before; a Retry-After is honoured.
func TestNextAfter(t *testing.T) {
	const s = time.Second
	refused := refusedErr(t)
	timeout := fmt.Errorf("connect: %w", context.DeadlineExceeded)
	busy := &ErrRefused{Status: http.StatusServiceUnavailable, RetryAfter: 20 * s}
	type step struct {
		err    error
		lo, hi time.Duration
	}
	for _, tc := range []struct {
		name       string
		refusedMax time.Duration
		steps      []step
	}{
		{"a restart: refusals hold at the default 15 s", 0, []step{
			{nil, 1 * s, 6 * s}, // the lost connection's spread retry
			{refused, 1 * s, 2 * s},
			{refused, 2 * s, 4 * s},
			{refused, 4 * s, 8 * s},
			{refused, 7500 * time.Millisecond, 15 * s},
			{refused, 7500 * time.Millisecond, 15 * s},
			{refused, 7500 * time.Millisecond, 15 * s},
			{timeout, 15 * s, 30 * s}, // listening but overloaded: doubling again
		}},
		{"timeouts double to Max, a refusal brings the window back", 0, []step{
			{nil, 1 * s, 6 * s},
			{timeout, 1 * s, 2 * s},
			{timeout, 2 * s, 4 * s},
			{timeout, 4 * s, 8 * s},
			{timeout, 8 * s, 16 * s},
			{timeout, 16 * s, 32 * s},
			{timeout, 30 * s, 60 * s},
			{refused, 7500 * time.Millisecond, 15 * s},
		}},
		{"RefusedMax set, and never above Max", 90 * s, []step{
			{nil, 1 * s, 6 * s},
			{refused, 1 * s, 2 * s},
			{refused, 2 * s, 4 * s},
			{refused, 4 * s, 8 * s},
			{refused, 8 * s, 16 * s},
			{refused, 16 * s, 32 * s},
			{refused, 30 * s, 60 * s},
			{refused, 30 * s, 60 * s},
		}},
		{"a Retry-After wins", 0, []step{
			{nil, 1 * s, 6 * s},
			{refused, 1 * s, 2 * s},
			{busy, 20 * s, 40 * s},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for round := 0; round < 200; round++ { // the jitter is random
				b := Backoff{Min: s, Max: 60 * s, Spread: 5 * s, RefusedMax: tc.refusedMax}
				b.Connected()
				for i, st := range tc.steps {
					if d := b.NextAfter(st.err); d < st.lo || d > st.hi {
						t.Fatalf("step %d (%v): %v not in [%v, %v]", i, st.err, d, st.lo, st.hi)
					}
				}
			}
		})
	}
	if connRefused(timeout) || connRefused(busy) || connRefused(nil) {
		t.Fatal("a timeout or a 503 counted as connection refused")
	}
}
