package agentconn

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestAgentReportChecks(t *testing.T) {
	big := strings.Repeat("x", MaxReport)
	for _, tc := range []struct {
		name    string
		net     string
		sysData string
		netOK   bool
		sysOK   bool
	}{
		{"normal", `{"action":"netinfo","netif2":{"eth0":[]}}`, `{"hash":"h","hardware":{}}`, true, true},
		{"no netif2, no hash", `{"action":"netinfo"}`, `{}`, true, true},
		{"netif2 not an object", `{"action":"netinfo","netif2":[1]}`, `"x"`, false, false},
		{"too large", `{"action":"netinfo","pad":"` + big + `"}`, `{"pad":"` + big + `"}`, false, false},
		{"long hash", `{"action":"netinfo"}`, `{"hash":"` + strings.Repeat("h", 129) + `"}`, true, false},
		{"hash not a string", `{"action":"netinfo"}`, `{"hash":5}`, true, false},
	} {
		if err := checkNetInfo([]byte(tc.net)); (err == nil) != tc.netOK {
			t.Errorf("%s: checkNetInfo: %v", tc.name, err)
		}
		if _, err := checkSysInfo(json.RawMessage(tc.sysData)); (err == nil) != tc.sysOK {
			t.Errorf("%s: checkSysInfo: %v", tc.name, err)
		}
	}
	if got := clip(strings.Repeat("é", 300)+"\xff", MaxNameLen); !fits(got, MaxNameLen) {
		t.Errorf("clip: %d runes", len([]rune(got)))
	}
}

func FuzzAgentReportChecks(f *testing.F) {
	f.Add([]byte(`{"action":"netinfo","netif2":{}}`))
	f.Add([]byte(`{"hash":"h"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkNetInfo(b) == nil && len(b) > MaxReport {
			t.Fatal("oversized netinfo accepted")
		}
		if h, err := checkSysInfo(b); err == nil && (len(b) > MaxReport || len(h) > maxHashLen || !json.Valid(b)) {
			t.Fatalf("bad sysinfo accepted: %q", b)
		}
		if s := clip(string(b), 8); !fits(s, 8) {
			t.Fatalf("clip(%q) = %q", b, s)
		}
	})
}

// TestPacer: refused agents get consecutive slots at the rate Little's law
// gives (pending limit / average handshake), told as two thirds of the
// slot's distance because an agent comes back within [r, 2r).
func TestPacer(t *testing.T) {
	now := time.Unix(1e9, 0)
	for _, tc := range []struct {
		name    string
		avg     time.Duration // measured handshake average; 0: none yet
		limit   int
		refused int   // refusals handed out at now
		want    []int // Retry-After of refusal k (1-based) for the listed ones
		at      []int
	}{
		{"fresh start assumes 1 s per handshake", 0, 512, 3000, []int{1, 1, 3, 4}, []int{1, 512, 2048, 3000}},
		{"fast server: everyone within seconds", 10 * time.Millisecond, 512, 100000, []int{1, 1, 2}, []int{1, 50000, 100000}},
		{"slow server: spread far, capped", 2 * time.Second, 100, 30000, []int{1, 27, maxRetryAfter}, []int{1, 2000, 30000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p pacer
			if tc.avg > 0 {
				p.completed(tc.avg)
			}
			got := map[int]int{}
			for k := 1; k <= tc.refused; k++ {
				got[k] = p.retryAfter(now, tc.limit)
			}
			for i, k := range tc.at {
				if got[k] != tc.want[i] {
					t.Errorf("refusal %d: Retry-After %d, want %d", k, got[k], tc.want[i])
				}
			}
			// A later moment with the queue drained starts again at 1.
			if ra := p.retryAfter(now.Add(time.Hour), tc.limit); ra != 1 {
				t.Errorf("after the queue drained: %d", ra)
			}
		})
	}
}

// TestPacerFollowsTheRateNow: a queue built while handshakes took seconds
// drains at the rate measured now, so once they are fast again a refusal
// is not sent behind the slow peak's schedule.
func TestPacerFollowsTheRateNow(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	for _, tc := range []struct {
		name    string
		peak    time.Duration // handshake duration while the queue builds
		refused int           // refusals at t0
		then    time.Duration // durations measured afterwards (64 completions)
		after   time.Duration // when the next refusal comes, after t0
		lo, hi  int           // its Retry-After
	}{
		// 3,000 refusals at 2 s per 512 handshakes: 11.7 s of queue.
		{"still slow: the queue stands", 2 * time.Second, 3000, 2 * time.Second, time.Second, 7, 8},
		// Handshakes now take 20 ms: the 3,000 slots drain in 0.12 s.
		{"fast again: the queue drains at the new rate", 2 * time.Second, 3000, 20 * time.Millisecond, time.Second, 1, 1},
		// The queue is drained at the new rate, also what remains of it:
		// 10,000 slots (39 s at the peak's rate, under the cap), 1 s later
		// at 0.2 s per 512 handshakes: 7,440 slots, 2.9 s, told as 2 s.
		{"a long queue shrinks by the new rate", 2 * time.Second, 10000, 200 * time.Millisecond, time.Second, 2, 2},
		{"capped", 2 * time.Second, 200000, 2 * time.Second, 0, maxRetryAfter, maxRetryAfter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p pacer
			p.completed(tc.peak)
			for range tc.refused {
				p.retryAfter(t0, 512)
			}
			for range 64 {
				p.completed(tc.then)
			}
			if got := p.retryAfter(t0.Add(tc.after), 512); got < tc.lo || got > tc.hi {
				t.Errorf("Retry-After %d, want [%d, %d]", got, tc.lo, tc.hi)
			}
		})
	}
}

// TestPacerCapDoesNotHoldTheQueue: refusals beyond the cap do not keep
// growing the queue, so it drains within the cap's time.
func TestPacerCapDoesNotHoldTheQueue(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	var p pacer
	p.completed(time.Second)
	for range 1_000_000 {
		p.retryAfter(t0, 100)
	}
	if got := p.retryAfter(t0.Add(maxRetryAfter*3/2*time.Second), 100); got != 1 {
		t.Fatalf("after the capped queue's time: Retry-After %d", got)
	}
}

func TestStalledAfter(t *testing.T) {
	var p pacer
	if p.stalledAfter() != minStalled {
		t.Fatalf("no measurement: %v", p.stalledAfter())
	}
	p.completed(2 * time.Second) // a storm: handshakes queue for the CPU
	if p.stalledAfter() != 8*time.Second {
		t.Fatalf("2 s average: %v", p.stalledAfter())
	}
	// A storm after a fresh start: the first handshakes took 50 ms, then
	// they queue behind the storm and take 3 s. Within 16 completions a
	// pending handshake of 5 s no longer counts as stalled (the slow
	// average alone would still say 4 x 0.9 s).
	var q pacer
	q.completed(50 * time.Millisecond)
	for range 16 {
		q.completed(3 * time.Second)
	}
	if q.stalledAfter() < 8*time.Second {
		t.Fatalf("storm after a fresh start: stalled after %v", q.stalledAfter())
	}
	for range 1000 { // the storm is over: handshakes take milliseconds
		p.completed(5 * time.Millisecond)
	}
	if p.stalledAfter() != minStalled {
		t.Fatalf("5 ms average: %v", p.stalledAfter())
	}
}

// TestPacerMeasuredRate: when the server authenticates faster than
// Little's law on the measured durations says (they also hold the agents'
// side on a loaded machine), slots follow the measured rate; a rate from
// before an idle spell is not used.
func TestPacerMeasuredRate(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	for _, tc := range []struct {
		name   string
		rate   int           // authentications per second measured over the second before t0; 0: none
		age    time.Duration // how long before the refusals the rate was measured
		lo, hi int           // Retry-After of the 3,000th refusal at t0+age
	}{
		// 3,000 slots at 2 s / 512: 11.7 s, told as 7.8 s.
		{"no rate measured: Little's law", 0, 0, 8, 8},
		// 3,000 slots at 1 ms: 3 s, told as 2 s.
		{"faster measured rate wins", 1000, 0, 2, 2},
		{"slower measured rate is not used", 100, 0, 8, 8},
		{"stale rate is not used", 1000, 10 * time.Second, 8, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p pacer
			p.completed(2 * time.Second)
			for k := range tc.rate + 1 {
				p.count(t0.Add(-time.Second + time.Duration(k)*time.Second/time.Duration(max(tc.rate, 1))))
			}
			var got int
			for range 3000 {
				got = p.retryAfter(t0.Add(tc.age), 512)
			}
			if got < tc.lo || got > tc.hi {
				t.Errorf("Retry-After %d, want [%d, %d]", got, tc.lo, tc.hi)
			}
		})
	}
}
