package reconnect

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
)

// A server under a reconnect storm may refuse a connection before TLS: it
// answers the agent's ClientHello with a plain HTTP 503 and a Retry-After
// and closes, so the refusal costs it no key exchange and no signature
// (server-lite does when its handshake slots are full). A TLS client
// alone sees only "first record does not look like a TLS handshake"; the
// conn from DetectPlainRefusal reads the answer and reports it as an
// *ErrRefused, so the agent comes back when the server asked, as it does
// after a 503 to the WebSocket upgrade. Other clients (MeshCentral's C
// agent, a browser) see a TLS failure and retry on their own schedule.

// PlainRefusal is what a server writes instead of a ServerHello to refuse
// a connection before TLS, asking the agent back in retryAfter seconds
// (at least 1).
func PlainRefusal(retryAfter int) []byte {
	return []byte("HTTP/1.1 503 Service Unavailable\r\nRetry-After: " + strconv.Itoa(max(retryAfter, 1)) +
		"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
}

// maxPlainRefusal bounds what is read of a plain answer: a refusal is a
// status line and a few headers.
const maxPlainRefusal = 1024

// DetectPlainRefusal wraps c (a TCP connection about to carry TLS) so that
// a plain HTTP answer to the TLS ClientHello fails the read with an
// *ErrRefused (BeforeTLS set) carrying the server's status and
// Retry-After. Only the first read after a write that starts a TLS
// handshake record is inspected, so an HTTP proxy's CONNECT answer on the
// same connection passes untouched; a TLS answer passes untouched too.
func DetectPlainRefusal(c net.Conn) net.Conn {
	if c == nil {
		return nil
	}
	return &plainDetector{Conn: c}
}

type plainDetector struct {
	net.Conn
	// armed: a TLS handshake record was written (Write sets it; reads and
	// writes may run concurrently once TLS is up). done: the first answer
	// was inspected, everything passes through. pending: bytes read while
	// inspecting, not yet handed out. Reads come from one goroutine at a
	// time (crypto/tls serialises them), so done and pending need no lock
	// on the read side.
	armed   atomic.Bool
	done    atomic.Bool
	pending []byte
}

// recordTypeHandshake is the first byte of a TLS handshake record.
const recordTypeHandshake = 0x16

func (p *plainDetector) Write(b []byte) (int, error) {
	if len(b) > 0 && b[0] == recordTypeHandshake && !p.done.Load() {
		p.armed.Store(true)
	}
	return p.Conn.Write(b)
}

func (p *plainDetector) Read(b []byte) (int, error) {
	if len(p.pending) > 0 {
		return p.drain(b, nil)
	}
	if p.done.Load() || !p.armed.Load() {
		return p.Conn.Read(b)
	}
	p.done.Store(true)
	// Read until the first 5 bytes say whether this is "HTTP/" (a TLS
	// record header is 5 bytes too).
	var got []byte
	buf := make([]byte, 512)
	for len(got) < 5 {
		n, err := p.Conn.Read(buf)
		got = append(got, buf[:n]...)
		if !bytes.HasPrefix([]byte("HTTP/"), got[:min(len(got), 5)]) {
			break
		}
		if err != nil {
			p.pending = got
			return p.drain(b, err)
		}
	}
	if !bytes.HasPrefix(got, []byte("HTTP/")) {
		p.pending = got
		return p.drain(b, nil)
	}
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(got), io.LimitReader(p.Conn, maxPlainRefusal))), nil)
	if err != nil {
		return 0, &ErrRefused{BeforeTLS: true}
	}
	resp.Body.Close()
	r := Refused(resp)
	r.BeforeTLS = true
	return 0, r
}

// drain hands out pending bytes (at least one read's worth), then err.
func (p *plainDetector) drain(b []byte, err error) (int, error) {
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	if len(p.pending) > 0 {
		return n, nil
	}
	return n, err
}

var _ net.Conn = (*plainDetector)(nil)
