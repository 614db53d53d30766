package webrtc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

func testLogger() *slog.Logger {
	if os.Getenv("WEBRTC_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testConfig restricts ICE to 127.0.0.1: tests never send a packet off the
// machine.
func testConfig() Config {
	// Generous: under wine on a loaded machine one ICE step on loopback
	// has taken over 10 s.
	return Config{LoopbackOnly: true, Logger: testLogger(), Timeout: 30 * time.Second}
}

// pair returns an agent and a client wrapped around the two ends of an
// in-memory relay.
func pair(t *testing.T, agentCfg, clientCfg Config, early bool) (*conn, *Offerer) {
	t.Helper()
	a, b := session.Pipe(64)
	ag := Upgradable(a, agentCfg).(*conn)
	cl := NewOfferer(b, clientCfg)
	cl.c.sw.early = early
	t.Cleanup(func() { ag.Close(); cl.Close() })
	return ag, cl
}

// seqFrame is frame i of a test stream: every seventh is a JSON text frame
// (text must survive as text), the rest binary with varying sizes.
func seqFrame(i int) session.Frame {
	if i%7 == 3 {
		return session.Frame{Data: fmt.Appendf(nil, `{"seq":%d}`, i)}
	}
	n := 8 + (i*131)%3000
	if i%97 == 0 {
		n = 100 << 10 // larger than one SCTP packet, smaller than a message
	}
	b := make([]byte, n)
	binary.BigEndian.PutUint64(b, uint64(i))
	for j := 8; j < n; j++ {
		b[j] = byte(i + j)
	}
	return session.Frame{Binary: true, Data: b}
}

func checkFrame(f session.Frame, i int) error {
	want := seqFrame(i)
	if f.Binary != want.Binary {
		return fmt.Errorf("frame %d: binary=%v, want %v (%q)", i, f.Binary, want.Binary, head(f.Data))
	}
	if string(f.Data) != string(want.Data) {
		got := -1
		if f.Binary && len(f.Data) >= 8 {
			got = int(binary.BigEndian.Uint64(f.Data))
		}
		return fmt.Errorf("frame %d: got %q (seq %d), len %d want %d", i, head(f.Data), got, len(f.Data), len(want.Data))
	}
	return nil
}

func head(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}

// stream writes frames 0..n-1 on w, calling at(i) before frame i.
func stream(ctx context.Context, w session.Channel, n int, at func(i int)) error {
	for i := range n {
		if at != nil {
			at(i)
		}
		if err := w.Write(ctx, seqFrame(i)); err != nil {
			return fmt.Errorf("write %d: %w", i, err)
		}
	}
	return nil
}

// expect reads n frames from r and checks their order and content,
// skipping the text frames for which skip returns true.
func expect(ctx context.Context, r session.Channel, n int, skip func(session.Frame) bool) error {
	for i := 0; i < n; {
		f, err := r.Read(ctx)
		if err != nil {
			return fmt.Errorf("read %d: %w", i, err)
		}
		if skip != nil && skip(f) {
			continue
		}
		if err := checkFrame(f, i); err != nil {
			return err
		}
		i++
	}
	return nil
}

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: timed out", what)
	}
}

// TestSwitchMidStream runs thousands of sequence-numbered frames each way
// and switches over in the middle of both streams: nothing may be lost,
// duplicated or reordered, text must stay text, and both sides must report
// the switch. "browser" plays agent-redir-ws's timing (output moves to the
// channel as soon as it opens); "default" is our client's.
func TestSwitchMidStream(t *testing.T) {
	for _, early := range []bool{true, false} {
		name := "default"
		if early {
			name = "browser"
		}
		t.Run(name, func(t *testing.T) {
			const n = 6000
			var agentSw, clientSw atomic.Int32
			acfg, ccfg := testConfig(), testConfig()
			acfg.OnSwitched = func() { agentSw.Add(1) }
			ccfg.OnSwitched = func() { clientSw.Add(1) }
			ag, cl := pair(t, acfg, ccfg, early)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			var wg sync.WaitGroup
			errs := make(chan error, 8)
			run := func(f func() error) {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- f() }()
			}
			offerDone := make(chan error, 1)
			// Where ICE is slow (under wine, on a loaded machine) a stream
			// would end on the relay before the switch: each side holds its
			// last third until it has switched, so part of each stream
			// surely crosses the channel whatever the timing.
			holdUntil := func(sw *atomic.Int32) {
				for sw.Load() == 0 && ctx.Err() == nil {
					time.Sleep(5 * time.Millisecond)
				}
			}
			run(func() error {
				return stream(ctx, cl, n, func(i int) {
					if i == n/3 {
						go func() { offerDone <- cl.Offer(ctx) }()
					}
					if i%500 == 0 {
						time.Sleep(5 * time.Millisecond) // let the switch land mid-stream
					}
					if i == 2*n/3 {
						holdUntil(&clientSw)
					}
				})
			})
			run(func() error {
				return stream(ctx, ag, n, func(i int) {
					if i%500 == 0 {
						time.Sleep(5 * time.Millisecond)
					}
					if i == 2*n/3 {
						holdUntil(&agentSw)
					}
				})
			})
			run(func() error { return expect(ctx, ag, n, nil) })
			run(func() error { return expect(ctx, cl, n, nil) })
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := <-offerDone; err != nil {
				t.Fatalf("Offer: %v", err)
			}
			// The agent's hook runs when webrtc2 arrives, a moment later.
			deadline := time.Now().Add(5 * time.Second)
			for agentSw.Load() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if agentSw.Load() != 1 || clientSw.Load() != 1 {
				t.Fatalf("OnSwitched calls: agent %d client %d, want 1 each", agentSw.Load(), clientSw.Load())
			}
			// After the switch, data goes over the channel, not the relay.
			ag.mu.Lock()
			out := ag.sw.out
			ag.mu.Unlock()
			if out != outDC {
				t.Fatalf("agent output state %v, want data channel", out)
			}
			// Both directions really carried part of the stream on the channel.
			for _, c := range []*conn{ag, cl.c} {
				c.mu.Lock()
				m := c.rwc.(interface{ MessagesReceived() uint32 }).MessagesReceived()
				c.mu.Unlock()
				if m < 100 {
					t.Fatalf("%s received only %d channel messages: the switch was not mid-stream", c.role, m)
				}
				t.Logf("%s: %d frames arrived on the data channel", c.role, m)
			}
			if err := stream(ctx, cl, 50, nil); err != nil {
				t.Fatal(err)
			}
			if err := expect(ctx, ag, 50, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestEarlyChannelDataIsKept plays the browser, which sends on the data
// channel as soon as it opens. The client's webrtc0/webrtc1 are held back on
// the relay; the agent must already be reading the channel (the reference
// agent drops these messages) and deliver them after the relay frames.
func TestEarlyChannelDataIsKept(t *testing.T) {
	a, b := session.Pipe(64)
	hold := &holdSignals{Channel: b, release: make(chan struct{})}
	ag := Upgradable(a, testConfig()).(*conn)
	cl := NewOfferer(hold, testConfig())
	cl.c.sw.early = true
	defer ag.Close()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	if err := stream(ctx, cl, 10, nil); err != nil { // on the relay
		t.Fatal(err)
	}
	go cl.Offer(ctx)
	// Wait until the client's output moved to the channel, then write.
	deadline := time.Now().Add(10 * time.Second)
	for {
		cl.c.mu.Lock()
		out := cl.c.sw.out
		cl.c.mu.Unlock()
		if out == outDC {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("client channel never opened")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 10; i < 40; i++ {
		if err := cl.Write(ctx, seqFrame(i)); err != nil {
			t.Fatal(err)
		}
	}
	// The agent reads them off the channel while webrtc0 is still held.
	deadline = time.Now().Add(10 * time.Second)
	for len(ag.dcQ) < 30 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := len(ag.dcQ); got < 30 {
		t.Fatalf("agent queued %d channel messages before webrtc0, want them read at once", got)
	}
	if hold.held.Load() == 0 {
		t.Fatal("no signalling was held back")
	}
	close(hold.release)
	if err := expect(ctx, ag, 40, nil); err != nil {
		t.Fatal(err)
	}
}

// holdSignals delays the client's webrtc0/1/2 on the relay until release.
type holdSignals struct {
	session.Channel
	release chan struct{}
	held    atomic.Int32
}

func (h *holdSignals) Write(ctx context.Context, f session.Frame) error {
	if s, ok := parseSignal(f.Data); ok && !f.Binary && s.kind >= sigWebRTC0 {
		h.held.Add(1)
		select {
		case <-h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return h.Channel.Write(ctx, f)
}

// TestKillDataChannelEndsSession kills the data channel mid-transfer, from
// either side: both sessions must end (Read and Write fail with an error
// wrapping session.ErrClosed) and their goroutines must exit.
func TestKillDataChannelEndsSession(t *testing.T) {
	for _, side := range []string{"agent", "client"} {
		t.Run(side, func(t *testing.T) {
			before := runtime.NumGoroutine()
			ag, cl := pair(t, testConfig(), testConfig(), false)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			go func() { // keep the agent busy writing
				for i := 0; ; i++ {
					if ag.Write(ctx, seqFrame(i)) != nil {
						return
					}
				}
			}()
			readErr := make(chan error, 2)
			for _, r := range []session.Channel{ag, cl} {
				go func() {
					for {
						if _, err := r.Read(ctx); err != nil {
							readErr <- err
							return
						}
					}
				}()
			}
			if err := cl.Offer(ctx); err != nil {
				t.Fatal(err)
			}
			victim := ag
			if side == "client" {
				victim = cl.c
			}
			time.Sleep(200 * time.Millisecond) // mid-transfer
			victim.mu.Lock()
			rwc := victim.rwc
			victim.mu.Unlock()
			rwc.Close()
			for range 2 {
				select {
				case err := <-readErr:
					if !errors.Is(err, session.ErrClosed) {
						t.Fatalf("read ended with %v, want session.ErrClosed", err)
					}
				case <-time.After(15 * time.Second):
					t.Fatal("a side did not notice the dead data channel")
				}
			}
			if err := cl.Write(ctx, seqFrame(1)); !errors.Is(err, session.ErrClosed) {
				t.Fatalf("client write after the end: %v", err)
			}
			ag.Close()
			cl.Close()
			waitGoroutines(t, before)
		})
	}
}

func waitGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before+2 { // pion's package-level helpers may linger
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("goroutines: %d before, %d after:\n%s", before, n, buf)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestGarbageOfferStaysOnRelay sends a browser-shaped offer with a broken
// SDP: the agent must log it, send nothing, and keep serving on the relay,
// with ordinary control messages still reaching the handler unchanged.
func TestGarbageOfferStaysOnRelay(t *testing.T) {
	a, b := session.Pipe(64)
	ag := Upgradable(a, testConfig()).(*conn)
	defer ag.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	ping := `{"ctrlChannel":"102938","type":"ping"}`
	rtt := `{"ctrlChannel":102938,"type":"rtt","time":1700000000000}`
	for _, s := range []string{`{"type":"offer","sdp":"v=0 garbage"}`, ping} {
		if err := b.Write(ctx, session.Frame{Data: []byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
	go func() {
		if stream(ctx, b, 500, nil) == nil {
			b.Write(ctx, session.Frame{Data: []byte(rtt)})
		}
	}()
	f, err := ag.Read(ctx)
	if err != nil || f.Binary || string(f.Data) != ping {
		t.Fatalf("first frame %v %q %v, want the ping unchanged", f.Binary, f.Data, err)
	}
	if err := expect(ctx, ag, 500, nil); err != nil {
		t.Fatal(err)
	}
	if f, err := ag.Read(ctx); err != nil || string(f.Data) != rtt {
		t.Fatalf("rtt frame %q %v", f.Data, err)
	}
	// Replies still travel on the relay; the agent sent no answer.
	go stream(ctx, ag, 200, nil)
	if err := expect(ctx, b, 200, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ag.mu.Lock()
		idle := ag.attempt == nil
		ag.mu.Unlock()
		if idle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the failed attempt was not abandoned")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOfferFailuresStayOnRelay: an agent that answers garbage, and one that
// never answers (the reference does so for terminals), leave the client on
// the relay with its session intact.
func TestOfferFailuresStayOnRelay(t *testing.T) {
	for _, tc := range []struct{ name, answer string }{
		{"garbage answer", `{"ctrlChannel":"102938","type":"answer","sdp":"nonsense"}`},
		{"no answer", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := session.Pipe(64)
			cfg := testConfig()
			cfg.Timeout = 5 * time.Second // gathering must fit in it too (slow under wine)
			cl := NewOfferer(b, cfg)
			defer cl.Close()
			defer a.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			offerErr := make(chan error, 1)
			go func() { offerErr <- cl.Offer(ctx) }()
			f, err := a.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s, ok := parseSignal(f.Data); !ok || s.kind != sigOffer || f.Binary {
				t.Fatalf("first frame %q is not an offer", head(f.Data))
			}
			if !strings.Contains(string(f.Data), "a=candidate:") || !strings.Contains(string(f.Data), "127.0.0.1") {
				t.Fatalf("offer has no loopback candidate: %s", f.Data)
			}
			if tc.answer != "" {
				a.Write(ctx, session.Frame{Data: []byte(tc.answer)})
			}
			if err := <-offerErr; !errors.Is(err, ErrNoWebRTC) {
				t.Fatalf("Offer: %v, want ErrNoWebRTC", err)
			}
			go stream(ctx, cl, 300, nil)
			if err := expect(ctx, a, 300, nil); err != nil {
				t.Fatal(err)
			}
			go stream(ctx, a, 300, nil)
			if err := expect(ctx, cl, 300, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestControlPassThrough: after the switch, control text on the relay and
// text on the channel both reach the handler; a closing relay ends both.
func TestControlPassThrough(t *testing.T) {
	ag, cl := pair(t, testConfig(), testConfig(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Offer(ctx); err != nil {
		t.Fatal(err)
	}
	// webrtc2 reaches the agent just after Offer returns.
	for deadline := time.Now().Add(5 * time.Second); ; {
		ag.mu.Lock()
		out := ag.sw.out
		ag.mu.Unlock()
		if out == outDC {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("agent never switched")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Raw relay text from the client side (as sendCtrlMsg does).
	ping := `{"ctrlChannel":"102938","type":"ping"}`
	cl.c.relay.Write(ctx, session.Frame{Data: []byte(ping)})
	f, err := ag.Read(ctx)
	if err != nil || f.Binary || string(f.Data) != ping {
		t.Fatalf("relay control %q %v", f.Data, err)
	}
	// Text over the data channel (meshctrl-style files commands).
	cmd := `{"action":"ls","reqid":1,"path":"/"}`
	if err := cl.Write(ctx, session.Frame{Data: []byte(cmd)}); err != nil {
		t.Fatal(err)
	}
	if f, err := ag.Read(ctx); err != nil || f.Binary || string(f.Data) != cmd {
		t.Fatalf("channel text %q %v", f.Data, err)
	}
	if err := ag.Write(ctx, session.Frame{Data: []byte(`{"ctrlChannel":"102938","type":"pong"}`)}); err != nil {
		t.Fatal(err)
	}
	if f, err := cl.Read(ctx); err != nil || string(f.Data) != `{"ctrlChannel":"102938","type":"pong"}` {
		t.Fatalf("pong %q %v", f.Data, err)
	}
	// An oversized text frame falls back to the relay, intact.
	big := `{"x":"` + strings.Repeat("a", maxMessage+10) + `"}`
	if err := ag.Write(ctx, session.Frame{Data: []byte(big)}); err != nil {
		t.Fatal(err)
	}
	if f, err := cl.Read(ctx); err != nil || string(f.Data) != big {
		t.Fatalf("big text: len %d %v", len(f.Data), err)
	}
	// Closing the relay ends the session on both sides.
	cl.c.relay.Close()
	for _, r := range []session.Channel{ag, cl} {
		if _, err := r.Read(ctx); !errors.Is(err, session.ErrClosed) {
			t.Fatalf("read after relay close: %v", err)
		}
	}
}

// TestFragmentBinary: with FragmentBinary an oversized binary frame is cut
// at the peer's message size, as the desktop viewer expects.
func TestFragmentBinary(t *testing.T) {
	acfg := testConfig()
	acfg.FragmentBinary = true
	ag, cl := pair(t, acfg, testConfig(), false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.Offer(ctx); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 2*maxMessage+5)
	for i := range big {
		big[i] = byte(i % 251)
	}
	go ag.Write(ctx, session.Frame{Binary: true, Data: big})
	var got []byte
	var parts int
	for len(got) < len(big) {
		f, err := cl.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Data) > maxMessage {
			t.Fatalf("fragment of %d bytes exceeds %d", len(f.Data), maxMessage)
		}
		got = append(got, f.Data...)
		parts++
	}
	if string(got) != string(big) || parts != 3 {
		t.Fatalf("reassembled %d bytes in %d parts", len(got), parts)
	}
}

// TestSwitchedNotice: the agent's handler learns of the switch once,
// through session.Switched, after its output moved to the data channel (the
// desktop then sends a full refresh), and OnSwitched fires too.
func TestSwitchedNotice(t *testing.T) {
	acfg := testConfig()
	switched := make(chan struct{})
	acfg.OnSwitched = func() { close(switched) }
	ag, cl := pair(t, acfg, testConfig(), true)
	if session.Switched(ag) == nil {
		t.Fatal("the upgradable channel offers no switch notice")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() {
		for {
			if _, err := cl.Read(ctx); err != nil {
				return
			}
		}
	}()
	go cl.Offer(ctx)
	select {
	case <-session.Switched(ag):
	case <-ctx.Done():
		t.Fatal("no switch notice")
	}
	ag.mu.Lock()
	out := ag.sw.out
	ag.mu.Unlock()
	if out != outDC {
		t.Fatal("switch notice before the output moved")
	}
	waitClosed(t, switched, "OnSwitched")
	if a, _ := session.Pipe(1); session.Switched(a) != nil {
		t.Error("a pipe claims it can switch")
	}
}

// TestCloseWithoutWebRTC: a session that never switches closes cleanly from
// either end and leaves no goroutine behind.
func TestCloseWithoutWebRTC(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, closer := range []string{"agent", "client"} {
		a, b := session.Pipe(8)
		ag := Upgradable(a, testConfig())
		cl := NewOfferer(b, testConfig())
		if err := cl.Write(ctx, session.Frame{Data: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		if f, err := ag.Read(ctx); err != nil || string(f.Data) != "x" {
			t.Fatalf("%q %v", f.Data, err)
		}
		first, second := session.Channel(ag), session.Channel(cl)
		if closer == "client" {
			first, second = cl, ag
		}
		first.Close()
		if _, err := second.Read(ctx); !errors.Is(err, session.ErrClosed) {
			t.Fatalf("%s closed: peer read %v", closer, err)
		}
		if err := first.Write(ctx, session.Frame{Data: []byte("y")}); !errors.Is(err, session.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		second.Close()
	}
	waitGoroutines(t, before)
}

// TestSingleGoroutineHandler: an agent handler that reads and writes on one
// goroutine (echo, like the files handler's request loop) while the client
// streams without pause through the switch: the agent's Write must not
// stall the handler's reading while it waits for webrtc2.
func TestSingleGoroutineHandler(t *testing.T) {
	for _, early := range []bool{false, true} {
		t.Run(fmt.Sprintf("early=%v", early), func(t *testing.T) {
			const n = 5000
			ag, cl := pair(t, testConfig(), testConfig(), early)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			go func() {
				for {
					f, err := ag.Read(ctx)
					if err != nil || ag.Write(ctx, f) != nil {
						return
					}
				}
			}()
			errs := make(chan error, 2)
			go func() {
				offered := make(chan struct{})
				errs <- stream(ctx, cl, n, func(i int) {
					if i == 500 {
						go func() { cl.Offer(ctx); close(offered) }()
					}
					if i == n-500 {
						// Where ICE is slow (under wine, on a loaded
						// machine) the stream would end on the relay before
						// the switch: hold its last frames until the offer
						// is answered. Frames 500 to here still run through
						// the switch without pause.
						select {
						case <-offered:
						case <-ctx.Done():
						}
					}
				})
			}()
			go func() { errs <- expect(ctx, cl, n, nil) }()
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			ag.mu.Lock()
			out := ag.sw.out
			ag.mu.Unlock()
			if out != outDC {
				t.Fatalf("agent output state %d after the stream, want the data channel", out)
			}
		})
	}
}
