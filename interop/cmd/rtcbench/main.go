// Command rtcbench compares a session on server-lite's relay (TLS
// WebSocket on 127.0.0.1) with the same session after proto/webrtc moved it
// to a loopback data channel: throughput each way, round-trip time, and the
// bytes the relay no longer carries. ICE is restricted to 127.0.0.1.
//
//	go run ./interop/cmd/rtcbench [-mib 200] [-frame 16384] [-pings 2000] [-reps 5] [-only rtc]
//	    [-cpuprofile rtc.pprof] [-blockprofile block.pprof]
//
// With -reps the transports alternate, so a loaded machine slows both alike;
// the CPU-seconds per MB are the steadier figure there. On non-Unix systems
// the CPU columns read 0.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/proto/webrtc"
	"github.com/meshgo/meshagent/server-lite/relay"
)

func main() {
	mib := flag.Int("mib", 200, "MiB to send each way")
	frame := flag.Int("frame", 16384, "bytes per binary frame (the files protocol uses 16 KiB blocks)")
	pings := flag.Int("pings", 2000, "round trips to time")
	reps := flag.Int("reps", 1, "repetitions of each transport, alternating, so that a loaded machine affects both alike")
	only := flag.String("only", "", `run only "relay" or "rtc"`)
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file (with -only rtc: the data channel; this process is both agent and client)")
	blockProfile := flag.String("blockprofile", "", "write a block profile of the whole run to this file")
	flag.Parse()
	quiet := slog.New(slog.DiscardHandler)

	tokens := relay.NewTokens()
	rs := relay.New(relay.Config{Authorizer: tokens, Logger: quiet})
	hs := httptest.NewUnstartedServer(rs) // 127.0.0.1 only
	hs.StartTLS()
	defer hs.Close()
	defer rs.Close()
	pool := x509.NewCertPool()
	pool.AddCert(hs.Certificate())
	env := &env{tokens: tokens, url: "wss" + strings.TrimPrefix(hs.URL, "https") + "/meshrelay.ashx",
		dialer: websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: pool}, ReadBufferSize: 64 << 10, WriteBufferSize: 64 << 10}}
	cfg := webrtc.Config{LoopbackOnly: true, Logger: quiet}
	ctx := context.Background()
	total := int64(*mib) << 20

	transports := []bool{false, true}
	switch *only {
	case "":
	case "relay":
		transports = []bool{false}
	case "rtc":
		transports = []bool{true}
	default:
		log.Fatalf("-only: want relay or rtc, not %q", *only)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	if *blockProfile != "" {
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		defer func() {
			f, err := os.Create(*blockProfile)
			if err == nil {
				pprof.Lookup("block").WriteTo(f, 0)
				f.Close()
			}
		}()
	}

	fmt.Printf("rtcbench: %d MiB each way in %d-byte frames, %d round trips, %d repetition(s); loopback, relay over TLS\n", *mib, *frame, *pings, *reps)
	fmt.Printf("CPU is this process's (user+system): both session ends, and for the relay also the relay server\n\n")
	fmt.Printf("%-14s %14s %14s %12s %12s %12s %12s %10s %16s\n", "transport", "client→agent", "agent→client", "up CPU", "down CPU", "rtt p50", "rtt p99", "setup", "relay bytes")
	results := map[bool][]result{}
	for range *reps {
		for _, useRTC := range transports {
			r := env.run(ctx, useRTC, cfg, total, *frame, *pings)
			results[useRTC] = append(results[useRTC], r)
			r.print()
			if useRTC && *reps == 1 {
				fmt.Printf("\nrelay bytes saved by switching: %s of %s payload (%.2f%%)\n",
					size(2*total-r.onRelay), size(2*total), 100*float64(2*total-r.onRelay)/float64(2*total))
			}
		}
	}
	if *reps > 1 {
		fmt.Printf("\nmedians of %d repetitions\n", *reps)
		for _, useRTC := range transports {
			median(results[useRTC]).print()
		}
	}
}

// result is one transport's run; CPU figures are seconds per MB moved.
type result struct {
	name, setup    string
	up, down       float64 // MB/s
	upCPU, downCPU float64 // CPU-seconds per MB
	p50, p99       time.Duration
	onRelay        int64
}

func (r result) print() {
	fmt.Printf("%-14s %11.1f MB/s %11.1f MB/s %9.1f ms/MB %7.1f ms/MB %12v %12v %10s %16s\n", r.name, r.up, r.down,
		1000*r.upCPU, 1000*r.downCPU, r.p50, r.p99, r.setup, size(r.onRelay))
}

// median takes each figure's median on its own.
func median(rs []result) result {
	pick := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	m := rs[0]
	m.up = pick(func(r result) float64 { return r.up })
	m.down = pick(func(r result) float64 { return r.down })
	m.upCPU = pick(func(r result) float64 { return r.upCPU })
	m.downCPU = pick(func(r result) float64 { return r.downCPU })
	m.p50 = time.Duration(pick(func(r result) float64 { return float64(r.p50) }))
	m.p99 = time.Duration(pick(func(r result) float64 { return float64(r.p99) }))
	return m
}

func (e *env) run(ctx context.Context, useRTC bool, cfg webrtc.Config, total int64, frame, pings int) result {
	user, agent := e.pair()
	ag := webrtc.Upgradable(agent, cfg)
	go serveAgent(ag)
	cl := webrtc.NewOfferer(user, cfg)
	defer cl.Close()
	r := result{name: "relay", setup: "-"}
	if useRTC {
		r.name = "data channel"
		// The exchange runs on the relay, so the client keeps reading
		// while it offers, as a viewer would.
		dctx, stop := context.WithCancel(ctx)
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for dctx.Err() == nil {
				cl.Read(dctx)
			}
		}()
		t0 := time.Now()
		if err := cl.Offer(ctx); err != nil {
			log.Fatalf("offer: %v", err)
		}
		r.setup = time.Since(t0).Round(time.Millisecond).String()
		stop()
		<-drained
	}
	base := user.in.Load() + user.out.Load()
	mb := float64(total) / 1e6
	c0 := cpuTime()
	r.up = upload(ctx, cl, total, frame)
	c1 := cpuTime()
	r.down = download(ctx, cl, total)
	c2 := cpuTime()
	r.upCPU, r.downCPU = (c1-c0).Seconds()/mb, (c2-c1).Seconds()/mb
	r.p50, r.p99 = pingPong(ctx, cl, pings)
	r.onRelay = user.in.Load() + user.out.Load() - base
	return r
}

type env struct {
	tokens *relay.Tokens
	url    string
	dialer websocket.Dialer
}

// counted counts the bytes crossing the relay at the client end.
type counted struct {
	session.Channel
	in, out atomic.Int64
}

func (c *counted) Read(ctx context.Context) (session.Frame, error) {
	f, err := c.Channel.Read(ctx)
	c.in.Add(int64(len(f.Data)))
	return f, err
}

func (c *counted) Write(ctx context.Context, f session.Frame) error {
	c.out.Add(int64(len(f.Data)))
	return c.Channel.Write(ctx, f)
}

func (e *env) pair() (user, agent *counted) {
	id := relay.NewID()
	var ends [2]*counted
	for i, side := range []relay.Side{relay.SideUser, relay.SideAgent} {
		tok := e.tokens.Issue(relay.Grant{Side: side, UserID: "user//bench", ID: id}, time.Minute)
		ws, _, err := e.dialer.Dial(e.url+"?id="+id+"&auth="+tok, nil)
		if err != nil {
			log.Fatalf("dial relay: %v", err)
		}
		ends[i] = &counted{Channel: session.WebSocket(ws)}
	}
	for _, c := range ends {
		if f, err := c.Read(context.Background()); err != nil || string(f.Data) != "c" {
			log.Fatalf("relay did not pair: %q %v", f.Data, err)
		}
	}
	return ends[0], ends[1]
}

// serveAgent is a tiny session handler: it counts binary bytes until "done",
// sends N bytes on "send N", and echoes "p..." pings.
func serveAgent(ch session.Channel) {
	defer ch.Close()
	ctx := context.Background()
	var n int64
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			return
		}
		switch {
		case f.Binary && len(f.Data) > 0 && f.Data[0] == 'p':
			ch.Write(ctx, f)
		case f.Binary:
			n += int64(len(f.Data))
		case string(f.Data) == "done":
			ch.Write(ctx, session.Frame{Data: []byte("ok " + strconv.FormatInt(n, 10))})
			n = 0
		case strings.HasPrefix(string(f.Data), "send "):
			total, _ := strconv.ParseInt(string(f.Data[5:]), 10, 64)
			buf := make([]byte, 16384)
			for sent := int64(0); sent < total; sent += int64(len(buf)) {
				if ch.Write(ctx, session.Frame{Binary: true, Data: buf}) != nil {
					return
				}
			}
			ch.Write(ctx, session.Frame{Data: []byte("end")})
		}
	}
}

func upload(ctx context.Context, cl *webrtc.Offerer, total int64, frame int) float64 {
	buf := make([]byte, frame)
	buf[0] = 'd'
	t0 := time.Now()
	for sent := int64(0); sent < total; sent += int64(frame) {
		if err := cl.Write(ctx, session.Frame{Binary: true, Data: buf}); err != nil {
			log.Fatal(err)
		}
	}
	cl.Write(ctx, session.Frame{Data: []byte("done")})
	for {
		f, err := cl.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if strings.HasPrefix(string(f.Data), "ok ") {
			break
		}
	}
	return float64(total) / time.Since(t0).Seconds() / 1e6
}

func download(ctx context.Context, cl *webrtc.Offerer, total int64) float64 {
	t0 := time.Now()
	cl.Write(ctx, session.Frame{Data: []byte("send " + strconv.FormatInt(total, 10))})
	for {
		f, err := cl.Read(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if !f.Binary && string(f.Data) == "end" {
			break
		}
	}
	return float64(total) / time.Since(t0).Seconds() / 1e6
}

func pingPong(ctx context.Context, cl *webrtc.Offerer, n int) (p50, p99 time.Duration) {
	rtts := make([]time.Duration, 0, n)
	ping := session.Frame{Binary: true, Data: []byte("ping-0123456789")}
	for range n {
		t0 := time.Now()
		cl.Write(ctx, ping)
		if _, err := cl.Read(ctx); err != nil {
			log.Fatal(err)
		}
		rtts = append(rtts, time.Since(t0))
	}
	slices.Sort(rtts)
	return rtts[n/2].Round(time.Microsecond), rtts[n*99/100].Round(time.Microsecond)
}

func size(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 10<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
