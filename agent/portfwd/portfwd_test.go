package portfwd

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

func TestParseTarget(t *testing.T) {
	tests := []struct {
		network, addr string
		port          any
		want          string
		ok            bool
	}{
		{"tcp", "", float64(22), "127.0.0.1:22", true},
		{"tcp", "", "8080", "127.0.0.1:8080", true},
		{"tcp", "10.0.0.5", "3389", "10.0.0.5:3389", true},
		{"udp", "::1", float64(53), "[::1]:53", true},
		{"tcp", "", float64(0), "", false},
		{"tcp", "", float64(65536), "", false},
		{"tcp", "", "22x", "", false},
		{"tcp", "", 22.5, "", false},
		{"tcp", "", nil, "", false},
		{"sctp", "", "22", "", false},
	}
	for _, tc := range tests {
		got, err := ParseTarget(tc.network, tc.addr, tc.port)
		if (err == nil) != tc.ok {
			t.Errorf("ParseTarget(%q, %q, %v): err %v, want ok=%v", tc.network, tc.addr, tc.port, err, tc.ok)
			continue
		}
		if tc.ok && got.Addr() != tc.want {
			t.Errorf("ParseTarget(%q, %q, %v) = %s, want %s", tc.network, tc.addr, tc.port, got.Addr(), tc.want)
		}
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"22", "0", "-1", "65535", "99999999999999999999", " 1"} {
		f.Add("tcp", "", s)
	}
	f.Fuzz(func(t *testing.T, network, addr, port string) {
		tg, err := ParseTarget(network, addr, port)
		if err == nil && (tg.Port < 1 || tg.Port > 65535 || (network != "tcp" && network != "udp")) {
			t.Fatalf("accepted %q %q %q as %+v", network, addr, port, tg)
		}
	})
}

// listen starts a TCP server on loopback that runs serve per connection.
func listen(t *testing.T, serve func(c *net.TCPConn)) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serve(c.(*net.TCPConn))
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// echo copies everything back and half-closes after the client's EOF.
func echo(c *net.TCPConn) {
	defer c.Close()
	io.Copy(c, c)
	c.CloseWrite()
}

// start serves one forwarded session on a pipe and returns the user's end.
func start(t *testing.T, ctx context.Context, tg Target) (session.Channel, chan error) {
	t.Helper()
	user, agent := session.Pipe(4)
	done := make(chan error, 1)
	go func() { done <- (&Forwarder{}).Serve(ctx, agent, tg) }()
	t.Cleanup(func() { user.Close() })
	return user, done
}

// Large random data goes through a real TCP echo server both ways intact,
// in frames no larger than BufferSize; the text frames a client sends
// (control messages) never reach the target.
func TestTCPEcho(t *testing.T) {
	port := listen(t, echo)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, done := start(t, ctx, Target{Network: "tcp", Port: port})

	const size = 16 << 20
	data := make([]byte, size)
	rand.Read(data)
	want := sha256.Sum256(data)
	go func() {
		user.Write(ctx, session.Frame{Data: []byte(`{"ctrlChannel":"102938","type":"ping"}`)})
		for off := 0; off < size; {
			n := min(100_000, size-off)
			if err := user.Write(ctx, session.Frame{Binary: true, Data: data[off : off+n]}); err != nil {
				t.Error(err)
				return
			}
			off += n
		}
	}()
	h := sha256.New()
	got := 0
	for got < size {
		f, err := user.Read(ctx)
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		if !f.Binary {
			t.Fatalf("text frame from the target: %q", f.Data)
		}
		if len(f.Data) > BufferSize {
			t.Fatalf("frame of %d bytes", len(f.Data))
		}
		h.Write(f.Data)
		got += len(f.Data)
	}
	if got != size || !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatalf("echo: %d bytes, checksum mismatch=%v", got, !bytes.Equal(h.Sum(nil), want[:]))
	}
	user.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(Linger + 5*time.Second):
		t.Fatal("Serve did not end after the user closed")
	}
}

// When the user's side closes, the target gets every byte and then EOF
// (a half-close), and may still finish its work.
func TestTCPUserCloseHalfCloses(t *testing.T) {
	type result struct {
		n   int64
		err error
	}
	seen := make(chan result, 1)
	port := listen(t, func(c *net.TCPConn) {
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		_, werr := c.Write([]byte("bye")) // our write side is still open
		if err == nil {
			err = werr
		}
		seen <- result{n, err}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, done := start(t, ctx, Target{Network: "tcp", Port: port})
	chunk := make([]byte, 32<<10)
	for range 64 {
		if err := user.Write(ctx, session.Frame{Binary: true, Data: chunk}); err != nil {
			t.Fatal(err)
		}
	}
	user.Close()
	select {
	case r := <-seen:
		if r.n != 64*32<<10 || r.err != nil {
			t.Fatalf("target read %d bytes then EOF, err %v; want %d, nil", r.n, r.err, 64*32<<10)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("target never saw EOF")
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// When the target closes, the user gets every byte and then the channel
// closes.
func TestTCPTargetClose(t *testing.T) {
	payload := make([]byte, 3<<20+17)
	rand.Read(payload)
	port := listen(t, func(c *net.TCPConn) {
		c.Write(payload)
		c.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, done := start(t, ctx, Target{Network: "tcp", Port: port})
	var got []byte
	for {
		f, err := user.Read(ctx)
		if err != nil {
			if !errors.Is(err, session.ErrClosed) {
				t.Fatalf("read: %v", err)
			}
			break
		}
		got = append(got, f.Data...)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("got %d bytes, want %d identical", len(got), len(payload))
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// A target that does not read stalls the user's writes: nothing between
// them queues without bound.
func TestTCPBackPressure(t *testing.T) {
	hold := make(chan struct{})
	port := listen(t, func(c *net.TCPConn) {
		<-hold
		c.Close()
	})
	defer close(hold)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user, _ := start(t, ctx, Target{Network: "tcp", Port: port})
	chunk := make([]byte, 64<<10)
	written := 0
	for written < 512<<20 {
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		err := user.Write(wctx, session.Frame{Binary: true, Data: chunk})
		wcancel()
		if err != nil {
			break
		}
		written += len(chunk)
	}
	if written >= 64<<20 {
		t.Fatalf("%d MiB accepted towards a target that reads nothing", written>>20)
	}
	t.Logf("writes stalled after %d KiB", written>>10)
}

func TestTCPRefused(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	user, done := start(t, ctx, Target{Network: "tcp", Port: port})
	if err := <-done; err == nil {
		t.Fatal("Serve to a closed port returned nil")
	}
	if _, err := user.Read(ctx); !errors.Is(err, session.ErrClosed) {
		t.Fatalf("user side not closed: %v", err)
	}
}

// Cancelling the context (the agent stopping, or endtunnel) ends both sides.
func TestTCPCancel(t *testing.T) {
	closed := make(chan struct{})
	port := listen(t, func(c *net.TCPConn) {
		io.Copy(io.Discard, c)
		close(closed)
	})
	ctx, cancel := context.WithCancel(context.Background())
	user, done := start(t, ctx, Target{Network: "tcp", Port: port})
	user.Write(context.Background(), session.Frame{Binary: true, Data: []byte("x")})
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not end on cancel")
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("target connection not closed on cancel")
	}
}

// Each binary frame is one datagram to a real UDP echo server, and each
// reply one frame back. (Under wine it runs thanks to the lane's go
// -overlay: wine 8 refuses the SIO_UDP_CONNRESET/NETRESET ioctls Go makes
// on every UDP socket; see winetest.Overlay.)
func TestUDPEcho(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	user, done := start(t, ctx, Target{Network: "udp", Port: pc.LocalAddr().(*net.UDPAddr).Port})
	for i := range 50 {
		msg := make([]byte, 1+i*700)
		rand.Read(msg)
		if err := user.Write(ctx, session.Frame{Binary: true, Data: msg}); err != nil {
			t.Fatal(err)
		}
		f, err := user.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(f.Data, msg) {
			t.Fatalf("datagram %d: got %d bytes back, want %d identical", i, len(f.Data), len(msg))
		}
	}
	user.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("UDP session did not end when the user closed")
	}
}
