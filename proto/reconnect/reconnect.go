// Package reconnect is the agents' reconnect schedule and the server's
// word on it (a Retry-After on a refused agent.ashx upgrade). Both roles
// live here because they shape one thing together: the storm when a server
// with many agents restarts. The agent side stays compatible with
// MeshCentral, which never sends Retry-After on agent.ashx: without one,
// the schedule is plain capped exponential backoff with jitter.
package reconnect

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff yields the delays between an agent's connection attempts.
//
//   - After a connection that had authenticated ends (server restart,
//     network cut), the first delay is drawn uniformly from
//     [Min, Min+Spread): a server that drops N agents at once sees them
//     back spread over Spread instead of within half a second.
//   - The first attempt ever failing waits [Min, 1.5 Min).
//   - After each further failure the window doubles up to Max, and the
//     delay is drawn uniformly from [d/2, d) of the window d ("equal
//     jitter"), so agents that failed together do not retry together.
//   - A server that refused with a Retry-After of r gets the agent back
//     uniformly within [r, 2r), even beyond Max: the server, which knows
//     its own backlog, paces the storm (r is capped at MaxRetryAfter when
//     parsed).
//   - A connection refused outright (nothing listens: the server is
//     restarting or down; see NextAfter) grows the window only up to
//     RefusedMax. Such a refusal costs the server nothing, so there is no
//     load to back off from; doubling through a restart's seconds of
//     refusals (a server with 19,000 agents took 25 s to close them) left
//     agents with half-minute windows that later timeouts under the
//     storm doubled to minutes, so they came back long after the server
//     could take them.
//
// The zero value is not usable; set Min and Max (Spread 0: no spread).
type Backoff struct {
	Min, Max, Spread time.Duration
	// RefusedMax caps the window while connections are refused outright;
	// 0: DefaultRefusedMax (never more than Max).
	RefusedMax time.Duration
	cur        time.Duration // current window; 0: none yet
	lost       bool          // the last session had authenticated
}

// DefaultRefusedMax is Backoff.RefusedMax's default: a down server sees
// each agent's SYN about every 10 s (a kernel's RST, no server work),
// and a restarted one gets its agents back within 15 s of listening.
const DefaultRefusedMax = 15 * time.Second

// Connected records an authenticated connection: the next delay is the
// spread first retry.
func (b *Backoff) Connected() { b.cur, b.lost = 0, true }

// Next returns the delay before the next attempt after a failure or a
// lost connection. retryAfter is the server's Retry-After, 0 if none.
func (b *Backoff) Next(retryAfter time.Duration) time.Duration {
	return b.next(retryAfter, b.Max)
}

// NextAfter is Next for the attempt that ended with err (nil: a lost
// connection that had authenticated): it honours the Retry-After err
// carries (ErrRefused) and keeps the window within RefusedMax while err
// says nothing listens at the server's address (ECONNREFUSED).
func (b *Backoff) NextAfter(err error) time.Duration {
	if ra := RetryAfter(err); ra > 0 {
		return b.next(ra, b.Max)
	}
	if err != nil && connRefused(err) {
		c := b.RefusedMax
		if c <= 0 {
			c = DefaultRefusedMax
		}
		return b.next(0, max(min(c, b.Max), b.Min))
	}
	return b.next(0, b.Max)
}

// next draws the delay with the window capped at limit.
func (b *Backoff) next(retryAfter, limit time.Duration) time.Duration {
	if retryAfter > 0 {
		b.lost = false
		if b.cur == 0 {
			b.cur = b.Min
		}
		return retryAfter + rand.N(retryAfter)
	}
	if b.lost {
		b.lost = false
		b.cur = b.Min
		return b.Min + rand.N(b.Spread+1)
	}
	if b.cur == 0 { // the first attempt ever failed
		b.cur = b.Min
		return b.Min + rand.N(b.Min/2+1)
	}
	b.cur = min(2*b.cur, limit)
	return max(b.cur/2+rand.N(b.cur/2+1), b.Min)
}

// ErrRefused is an agent.ashx upgrade the server answered with an HTTP
// status (503 when busy) instead of a WebSocket, or, with BeforeTLS, a
// connection it answered in plain HTTP instead of TLS (see
// DetectPlainRefusal).
type ErrRefused struct {
	Status     int           // 0: a plain answer that was not a readable HTTP response
	RetryAfter time.Duration // 0: the server gave none
	BeforeTLS  bool
}

func (e *ErrRefused) Error() string {
	s := "server refused the connection: HTTP " + strconv.Itoa(e.Status)
	if e.BeforeTLS {
		s = "server refused the connection before TLS: HTTP " + strconv.Itoa(e.Status)
	}
	if e.RetryAfter > 0 {
		s += ", retry after " + e.RetryAfter.String()
	}
	return s
}

// Refused returns the refusal in resp (a failed WebSocket upgrade's
// response), nil when resp is nil.
func Refused(resp *http.Response) *ErrRefused {
	if resp == nil {
		return nil
	}
	return &ErrRefused{Status: resp.StatusCode, RetryAfter: ParseRetryAfter(resp.Header.Get("Retry-After"))}
}

// RetryAfter is the server's Retry-After carried by err, 0 if none.
func RetryAfter(err error) time.Duration {
	var r *ErrRefused
	if errors.As(err, &r) {
		return r.RetryAfter
	}
	return 0
}

// MaxRetryAfter caps what a server may ask: a hostile or broken server
// must not park its agents for a day.
const MaxRetryAfter = 10 * time.Minute

// ParseRetryAfter reads a Retry-After header's delay in seconds (the
// HTTP-date form is not used by agent servers and yields 0), capped at
// MaxRetryAfter.
func ParseRetryAfter(v string) time.Duration {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n <= 0 {
		return 0
	}
	// Compare in seconds: a large n times time.Second overflows.
	if int64(n) >= int64(MaxRetryAfter/time.Second) {
		return MaxRetryAfter
	}
	return time.Duration(n) * time.Second
}
