//go:build linux

package webrtc

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// benchPage drives MeshCentral's agent-redir-ws.js as the web UI does, with
// or without WebRTC (?rtc=1), for throughput: "~down" from the agent makes
// it report the bytes it received; "~up N" makes it send N bytes in 16 KiB
// frames, kept under 4 MiB of the transport's bufferedAmount (Chromium
// closes a data channel whose send buffer passes 16 MiB).
const benchPage = `<!doctype html><meta charset="utf-8"><title>bench</title>
<script>var urlargs = {};</script><script src="/agent-redir-ws.js"></script><script>
const rtc = location.search.indexOf("rtc=1") >= 0;
let got = 0, redir, ready = false;
function ctrl(o) { o.ctrlChannel = "102938"; redir.sendCtrlMsg(JSON.stringify(o)); }
function checkReady() {
  if (ready || redir.State !== 3 || (rtc && !redir.webRtcActive)) return;
  ready = true;
  ctrl({type: "ready", webrtc: redir.webRtcActive});
}
function out() { return redir.webRtcActive ? redir.webchannel : redir.socket; }
function pump(left) {
  const b = new Uint8Array(16384);
  while (left > 0 && out().bufferedAmount < 4 << 20) { redir.send(b); left -= b.length; }
  if (left > 0) setTimeout(() => pump(left), 0);
}
const mod = {
  protocol: 5,
  xxStateChange: function (s) { checkReady(); },
  ProcessData: function (d) {
    if (d === "~down") { ctrl({type: "got", n: got}); got = 0; }
    else if (d.startsWith("~up ")) pump(parseInt(d.slice(4)));
  },
  ProcessBinaryData: function (b) { got += b.length; },
};
redir = CreateAgentRedirect(null, mod, null, null, null, "/");
redir.attemptWebRTC = rtc;
redir.webrtcconfig = {iceServers: []};
redir.Start("node//bench");
setInterval(checkReady, 50);
</script>`

// BenchmarkChromiumThroughput measures the browser path: MeshCentral's
// viewer transport in headless Chromium against our agent side, on the
// WebSocket alone (TLS, straight to the agent side: no relay server in
// between) and after the switch to the data channel, 32 MiB each way
// per iteration (CHROMIUM_BENCH_BYTES overrides). CPU is ours (the agent side and this test's small server)
// and Chromium's (its whole process group), per MB moved.
//
//	go test -run '^$' -bench ChromiumThroughput -benchtime 3x ./proto/webrtc
func BenchmarkChromiumThroughput(b *testing.B) {
	bin, script := findChromium(), redirScript()
	if bin == "" || script == "" {
		b.Skip("needs chromium and MeshCentral's agent-redir-ws.js")
	}
	for _, mode := range []string{"websocket", "datachannel"} {
		b.Run(mode, func(b *testing.B) { benchChromium(b, bin, script, mode == "datachannel") })
	}
}

func benchChromium(b *testing.B, bin, script string, rtc bool) {
	total := 32 << 20 // each way, per iteration
	if v, _ := strconv.Atoi(os.Getenv("CHROMIUM_BENCH_BYTES")); v > 0 {
		total = v // a quicker run, e.g. while profiling
	}
	type ctrlMsg struct {
		Type   string
		N      int64
		WebRTC bool
	}
	msgs := make(chan ctrlMsg, 16)
	var received atomic.Int64
	upDone := make(chan struct{}, 1)
	var upWant atomic.Int64
	chans := make(chan session.Channel, 1)
	// TLS like MeshCentral's relay, so that the WebSocket figures carry
	// the encryption the data channel's DTLS does.
	srv := redirServer(b, script, benchPage, true, func(ctx context.Context, relay session.Channel) {
		cfg := testConfig()
		cfg.Logger = slog.New(slog.DiscardHandler) // the benchmark's output stays readable
		ch := Upgradable(relay, cfg)
		defer ch.Close()
		chans <- ch
		for {
			f, err := ch.Read(ctx)
			if err != nil {
				return
			}
			if f.Binary {
				if n := received.Add(int64(len(f.Data))); n >= upWant.Load() && upWant.Load() > 0 {
					upWant.Store(0)
					upDone <- struct{}{}
				}
				continue
			}
			var m ctrlMsg
			if json.Unmarshal(f.Data, &m) == nil && m.Type != "" {
				msgs <- m
			}
		}
	})
	url := srv.URL + "/"
	if rtc {
		url += "?rtc=1"
	}
	// The test server's certificate is its own; nothing else is reached.
	pgid := runChromium(b, bin, url, "--ignore-certificate-errors")
	wait := func(what string) ctrlMsg {
		m := await(b, msgs, 120*time.Second, fmt.Sprintf("%q from the browser", what))
		if m.Type != what {
			b.Fatalf("browser said %q, want %q", m.Type, what)
		}
		return m
	}
	ch := await(b, chans, 120*time.Second, "connection from the browser")
	if m := wait("ready"); m.WebRTC != rtc {
		b.Fatalf("browser webRtcActive=%v, want %v", m.WebRTC, rtc)
	}
	ctx := context.Background()
	if rtc {
		// The agent's output moves once the browser's webrtc1 has
		// arrived; measure only after it has.
		deadline := time.Now().Add(60 * time.Second)
		select {
		case <-ch.(*conn).switched:
		case <-time.After(time.Until(deadline)):
			b.Fatal("the agent's output did not switch to the data channel")
		}
	}
	buf := make([]byte, 16384) // the files protocol's block
	var downT, upT time.Duration
	var ourDown, ourUp, peerDown, peerUp time.Duration
	b.ResetTimer()
	for range b.N {
		c0, p0 := selfCPU(), groupCPU(pgid)
		t0 := time.Now()
		for sent := 0; sent < total; sent += len(buf) {
			if err := ch.Write(ctx, session.Frame{Binary: true, Data: buf}); err != nil {
				b.Fatal(err)
			}
		}
		if err := ch.Write(ctx, session.Frame{Data: []byte("~down")}); err != nil {
			b.Fatal(err)
		}
		if m := wait("got"); m.N != int64(total) {
			b.Fatalf("browser got %d bytes, want %d", m.N, total)
		}
		t1, c1, p1 := time.Now(), selfCPU(), groupCPU(pgid)
		downT += t1.Sub(t0)
		ourDown += c1 - c0
		peerDown += p1 - p0
		received.Store(0)
		upWant.Store(int64(total))
		if err := ch.Write(ctx, session.Frame{Data: []byte("~up " + strconv.Itoa(total))}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-upDone:
		case <-time.After(300 * time.Second):
			b.Fatalf("upload stalled at %d of %d bytes", received.Load(), total)
		}
		upT += time.Since(t1)
		ourUp += selfCPU() - c1
		peerUp += groupCPU(pgid) - p1
	}
	b.StopTimer()
	mb := float64(b.N) * float64(total) / 1e6
	b.ReportMetric(mb/downT.Seconds(), "down-MB/s")
	b.ReportMetric(mb/upT.Seconds(), "up-MB/s")
	b.ReportMetric(1000*ourDown.Seconds()/mb, "agent-down-CPU-ms/MB")
	b.ReportMetric(1000*ourUp.Seconds()/mb, "agent-up-CPU-ms/MB")
	b.ReportMetric(1000*peerDown.Seconds()/mb, "chromium-down-CPU-ms/MB")
	b.ReportMetric(1000*peerUp.Seconds()/mb, "chromium-up-CPU-ms/MB")
}

// selfCPU is this process's user plus system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// groupCPU sums user plus system CPU of the live processes in process
// group pgid, from /proc/<pid>/stat (clock ticks of 1/100 s on Linux).
func groupCPU(pgid int) time.Duration {
	ents, _ := os.ReadDir("/proc")
	var ticks int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		raw, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name may hold spaces; the fields after it do not.
		s := string(raw)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
		if len(f) < 13 || f[2] != fmt.Sprint(pgid) {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}
