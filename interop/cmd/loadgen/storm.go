//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/proto/reconnect"
)

// stormConfig shapes the simulated agents' reconnects after the restart.
type stormConfig struct {
	spread time.Duration // reconnect.Backoff.Spread
	legacy bool          // agent/core's schedule before proto/reconnect
	limit  time.Duration // give up waiting for everyone after this
}

// legacyBackoff is agent/core's reconnect schedule before proto/reconnect,
// kept here only to compare storms: [d, 1.5d) with d doubling from 1 s up
// to 5 min and reset after an authenticated connection; Retry-After
// ignored.
type legacyBackoff struct{ cur time.Duration }

func (b *legacyBackoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = time.Second
	} else {
		b.cur = min(2*b.cur, 5*time.Minute)
	}
	return b.cur + rand.N(b.cur/2+1)
}

// lost maps a watched connection to the channel closed when it drops.
var lost sync.Map // *simagent.Conn -> chan struct{}

// watch starts reading c (gorilla answers the server's pings while a read
// is under way) until it drops.
func watch(c *simagent.Conn) *simagent.Conn {
	ch := make(chan struct{})
	lost.Store(c, ch)
	go func() {
		defer close(ch)
		for {
			if _, _, err := c.WS.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return c
}

// lostSignal is closed when watched connection c drops.
func lostSignal(c *simagent.Conn) <-chan struct{} {
	if _, ok := lost.Load(c); !ok {
		watch(c)
	}
	ch, _ := lost.Load(c)
	return ch.(chan struct{})
}

// errKind is err without addresses and numbers, to count failures by kind.
func errKind(err error) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, err.Error())
}

// stormPhase restarts server-lite while every agent in conns is connected
// and measures the storm: each agent notices its connection drop, waits as
// our agent would (proto/reconnect: spread first retry, jittered doubling,
// the server's Retry-After honoured) and reconnects on the skip path. It
// prints when all were back, how long agents stayed offline, the new
// server's CPU until then, and the storm's shape per interval.
func stormPhase(srv *liteServer, conns []*simagent.Conn, opts func(int, []byte) simagent.Options, trust [][]byte, sc stormConfig) error {
	n := 0
	for _, c := range conns {
		if c != nil {
			n++
		}
	}
	sched := fmt.Sprintf("proto/reconnect (first retry spread over %v, Retry-After honoured)", sc.spread)
	if sc.legacy {
		sched = "agent/core's schedule before proto/reconnect ([d, 1.5d), Retry-After ignored)"
	}
	fmt.Printf("restart storm: %d agents connected; agents retry on %s\n", n, sched)
	var (
		online, refused, failed, attempts atomic.Int64
		refusedEarly                      atomic.Int64 // of refused: before TLS
		mu                                sync.Mutex
		offline                           []time.Duration
		backAt                            []time.Duration // since the restart began
		errKinds                          = map[string]int{}
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	var restarted atomic.Bool // readers ignore drops before the restart
	var wg sync.WaitGroup
	for i, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func(i int, c *simagent.Conn) {
			defer wg.Done()
			<-lostSignal(c)
			lost := time.Now()
			c.WS.Close()
			if !restarted.Load() {
				failed.Add(1)
			}
			bo := reconnect.Backoff{Min: time.Second, Max: 5 * time.Minute, Spread: sc.spread}
			bo.Connected()
			var lb legacyBackoff
			var err error
			for ctx.Err() == nil {
				var d time.Duration
				if sc.legacy {
					d = lb.next()
				} else {
					d = bo.NextAfter(err)
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(d):
				}
				attempts.Add(1)
				var nc *simagent.Conn
				if nc, err = simagent.Connect(ctx, opts(i, trust[i])); err == nil {
					conns[i] = nc
					now := time.Now()
					online.Add(1)
					mu.Lock()
					offline = append(offline, now.Sub(lost))
					backAt = append(backAt, now.Sub(t0))
					mu.Unlock()
					return
				}
				if r := (*reconnect.ErrRefused)(nil); errors.As(err, &r) {
					refused.Add(1)
					if r.BeforeTLS {
						refusedEarly.Add(1)
					}
				} else if ctx.Err() == nil {
					mu.Lock()
					errKinds[errKind(err)]++
					mu.Unlock()
				}
			}
		}(i, c)
	}
	restarted.Store(true)
	self0 := selfCPU()
	cpuOld := cpuTime(srv.pid())
	srv.stop()
	tDown := time.Since(t0)
	// The exited server's own total (wait4's rusage) less what it had used
	// before SIGINT: the shutdown's CPU, a figure the machine's other load
	// does not stretch as it does the wall time.
	var cpuDown time.Duration
	if ps := srv.cmd.ProcessState; ps != nil {
		cpuDown = ps.UserTime() + ps.SystemTime() - cpuOld
	}
	if err := srv.start(); err != nil {
		return err
	}
	tUp := time.Since(t0)
	pid := srv.pid()
	// Wait for everyone (or give up after 10 minutes), sampling the shape.
	type sample struct {
		at                         time.Duration
		online, refused, attempted int64
		cpu                        time.Duration
	}
	var samples []sample
	deadline := t0.Add(sc.limit)
	for online.Load() < int64(n) && time.Now().Before(deadline) {
		time.Sleep(time.Second)
		samples = append(samples, sample{time.Since(t0), online.Load(), refused.Load(), attempts.Load(), cpuTime(pid)})
		if k := len(samples); k%15 == 0 { // progress, in case the run is cut short
			s := samples[k-1]
			fmt.Printf("  ... %.0fs: %d online, %d attempts, %d refused, server CPU %.1f s\n", s.at.Seconds(), s.online, s.attempted, s.refused, s.cpu.Seconds())
		}
	}
	all := time.Since(t0)
	cpu := cpuTime(pid)
	self := selfCPU() - self0
	cancel()
	wg.Wait()
	if b, err := os.ReadFile(srv.logf.Name()); err == nil {
		if i := bytes.LastIndex(b, []byte("msg=stopped seconds=")); i >= 0 {
			line, _, _ := bytes.Cut(b[i+len("msg=stopped seconds="):], []byte("\n"))
			fmt.Printf("  the server's own account: App.Close took %ss\n", line)
		}
	}
	fmt.Printf("  server stopped %.2fs after SIGINT (it had used %.1f s CPU; its shutdown %.2f s CPU), listening again at %.2fs\n", tDown.Seconds(), cpuOld.Seconds(), cpuDown.Seconds(), tUp.Seconds())
	if got := online.Load(); got < int64(n) {
		fmt.Printf("  NOT all back: %d of %d online after %.0fs\n", got, n, all.Seconds())
	} else {
		fmt.Printf("  all %d back online %.2fs after the restart began (%.2fs after the server listened again)\n", n, all.Seconds(), (all - tUp).Seconds())
	}
	fmt.Printf("  new server's CPU until then: %.1f s (%.2f ms per agent), %d attempts, %d refused busy (503; %d of them before TLS), %d dropped before the restart\n",
		cpu.Seconds(), ms(cpu)/float64(max(online.Load(), 1)), attempts.Load(), refused.Load(), refusedEarly.Load(), failed.Load())
	fmt.Printf("  loadgen's own CPU meanwhile (the agents' side: TLS, signatures): %.1f s\n", self.Seconds())
	for k, v := range errKinds {
		fmt.Printf("  failed attempts: %d x %s\n", v, k)
	}
	sort.Slice(offline, func(i, j int) bool { return offline[i] < offline[j] })
	if len(offline) > 0 {
		q := func(f float64) float64 { return offline[min(int(f*float64(len(offline))), len(offline)-1)].Seconds() }
		fmt.Printf("  time offline per agent: median %.1fs, p90 %.1fs, p99 %.1fs, max %.1fs\n", q(0.5), q(0.9), q(0.99), offline[len(offline)-1].Seconds())
	}
	// The shape: agents back, attempts and refusals, server CPU per interval.
	step := max(1, len(samples)/15)
	fmt.Printf("  %8s %9s %9s %9s %10s\n", "t (s)", "online", "attempts", "refused", "CPU (s/s)")
	var prev sample
	for k := step - 1; k < len(samples); k += step {
		s := samples[k]
		dt := (s.at - prev.at).Seconds()
		fmt.Printf("  %8.0f %9d %9d %9d %10.2f\n", s.at.Seconds(), s.online, s.attempted-prev.attempted, s.refused-prev.refused, (s.cpu-prev.cpu).Seconds()/dt)
		prev = s
	}
	rss := rssKB(pid)
	fmt.Printf("  after the storm: server RSS %.1f MB, %.1f kB per connected agent\n", float64(rss.rss)/1024, float64(rss.rss)/float64(max(online.Load(), 1)))
	for _, c := range conns {
		if c != nil {
			c.WS.Close()
		}
	}
	return nil
}
