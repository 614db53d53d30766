package reconnect

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// plainServer accepts one connection on loopback and answers it with
// answer (after reading whatever the client sent first), then closes.
func plainServer(t *testing.T, answer []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		c.Read(buf) // the ClientHello
		c.Write(answer)
		c.(*net.TCPConn).CloseWrite()
		io.Copy(io.Discard, c)
	}()
	return ln.Addr().String()
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

func dialTLS(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(DetectPlainRefusal(c), &tls.Config{InsecureSkipVerify: true})
	return tc.Handshake()
}

func TestDetectPlainRefusal(t *testing.T) {
	tests := []struct {
		name   string
		answer []byte
		want   *ErrRefused // nil: a failure that is not a refusal
	}{
		{"paced refusal", PlainRefusal(7), &ErrRefused{Status: 503, RetryAfter: 7 * time.Second, BeforeTLS: true}},
		{"refusal without Retry-After", []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n"), &ErrRefused{Status: 503, BeforeTLS: true}},
		{"Retry-After below 1 is sent as 1", PlainRefusal(0), &ErrRefused{Status: 503, RetryAfter: time.Second, BeforeTLS: true}},
		{"HTTP-looking garbage", []byte("HTTP/garbage\r\n\r\n"), &ErrRefused{BeforeTLS: true}},
		{"not HTTP, not TLS", []byte("SSH-2.0-OpenSSH_9.6\r\n"), nil},
		{"closed without a word", nil, nil},
		{"short HTTP prefix, then close", []byte("HTT"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := dialTLS(plainServer(t, tt.answer))
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			var r *ErrRefused
			if tt.want == nil {
				if errors.As(err, &r) {
					t.Fatalf("err = %v, want a failure that is not a refusal", err)
				}
				return
			}
			if !errors.As(err, &r) {
				t.Fatalf("err = %v (%T), want *ErrRefused", err, err)
			}
			if *r != *tt.want {
				t.Fatalf("refusal = %+v, want %+v", *r, *tt.want)
			}
			if RetryAfter(err) != tt.want.RetryAfter {
				t.Fatalf("RetryAfter(err) = %v", RetryAfter(err))
			}
		})
	}
}

// A real TLS server and an HTTP proxy's CONNECT answer pass untouched.
func TestDetectPlainRefusalPassesTLSAndProxy(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	srv.StartTLS()
	defer srv.Close()
	addr := srv.Listener.Addr().String()

	// A proxy in front: it answers CONNECT in plain HTTP, then tunnels.
	pl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	go func() {
		c, err := pl.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		up, err := net.Dial("tcp", addr)
		if err != nil {
			return
		}
		defer up.Close()
		go io.Copy(up, br)
		io.Copy(c, up)
	}()

	for _, viaProxy := range []bool{false, true} {
		target := addr
		if viaProxy {
			target = pl.Addr().String()
		}
		c, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		d := DetectPlainRefusal(c)
		if viaProxy {
			io.WriteString(d, "CONNECT "+addr+" HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(d), nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("CONNECT through the detector: %v %v", resp, err)
			}
		}
		tc := tls.Client(d, &tls.Config{InsecureSkipVerify: true})
		io.WriteString(tc, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		b, err := io.ReadAll(tc)
		if err != nil || !strings.HasSuffix(string(b), "hello") {
			t.Fatalf("proxy %v: got %q, %v", viaProxy, b, err)
		}
		c.Close()
	}
}

// Through gorilla's dialer, as the agent dials, the refusal keeps its
// type and its Retry-After reaches the backoff.
func TestDetectPlainRefusalWebSocket(t *testing.T) {
	addr := plainServer(t, PlainRefusal(12))
	nd := &net.Dialer{}
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, a)
			return DetectPlainRefusal(c), err
		},
		TLSClientConfig:  &tls.Config{InsecureSkipVerify: true},
		HandshakeTimeout: 5 * time.Second,
	}
	_, _, err := d.Dial("wss://"+addr+"/agent.ashx", nil)
	if RetryAfter(err) != 12*time.Second {
		t.Fatalf("err = %v, RetryAfter %v, want 12s", err, RetryAfter(err))
	}
	b := Backoff{Min: time.Second, Max: 5 * time.Second}
	if got := b.NextAfter(err); got < 12*time.Second || got >= 24*time.Second {
		t.Fatalf("NextAfter = %v, want within [12s, 24s)", got)
	}
}

// scriptedConn is a net.Conn whose reads return data in chunks of at most
// chunk bytes, then io.EOF; writes are discarded.
type scriptedConn struct {
	net.Conn // nil: only Read and Write are used
	data     []byte
	chunk    int
}

func (c *scriptedConn) Read(b []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(b[:min(len(b), c.chunk)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func (c *scriptedConn) Write(b []byte) (int, error) { return len(b), nil }

// FuzzDetectPlainRefusal feeds any server answer, in any chunking, to the
// detector after a ClientHello: an answer that starts with "HTTP/" is a
// refusal before TLS; anything else reaches the TLS client byte for byte.
func FuzzDetectPlainRefusal(f *testing.F) {
	f.Add(PlainRefusal(7), 3)
	f.Add([]byte("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 99999999999\r\n\r\n"), 1)
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nbody"), 64)
	f.Add([]byte("HTTP"), 2)
	f.Add([]byte{0x16, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28}, 5)
	f.Add([]byte{}, 1)
	f.Fuzz(func(t *testing.T, answer []byte, chunk int) {
		chunk = 1 + abs(chunk)%600
		c := DetectPlainRefusal(&scriptedConn{data: append([]byte(nil), answer...), chunk: chunk})
		c.Write([]byte{recordTypeHandshake, 3, 1, 0, 0})
		var got []byte
		buf := make([]byte, 1+chunk%300)
		var err error
		for range len(answer) + 2 {
			var n int
			n, err = c.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				break
			}
		}
		var r *ErrRefused
		if strings.HasPrefix(string(answer), "HTTP/") {
			if !errors.As(err, &r) || !r.BeforeTLS {
				t.Fatalf("answer %q read as %q, %v; want a refusal before TLS", answer, got, err)
			}
			return
		}
		if errors.As(err, &r) {
			t.Fatalf("answer %q not starting with HTTP/ read as a refusal: %v", answer, err)
		}
		if string(got) != string(answer) {
			t.Fatalf("answer %q reached the TLS client as %q", answer, got)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
