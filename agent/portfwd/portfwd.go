// Package portfwd bridges a relay session to a TCP or UDP port, as
// MeshCentral's port-forwarding tunnels want: the server's tunnel request
// names tcpport/udpport (and optionally tcpaddr/udpaddr), and everything
// the user's side sends in binary frames goes to that port and back.
// MeshCentral Router, Web-SSH, Web-VNC, Web-RDP and the HTTP/HTTPS web
// relay all ride on it (sessions.md, meshcore.js onTunnelUpgrade).
//
// Both directions copy one frame or one read at a time with a fixed
// buffer, so a slow side stalls the other through the transports' own
// flow control instead of growing a queue here.
package portfwd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// Limits of one forwarded session.
const (
	// BufferSize is the largest TCP read, hence the largest frame sent
	// to the relay; a UDP datagram can be at most 64 KiB anyway.
	BufferSize = 64 << 10
	// DialTimeout bounds the connect to the target.
	DialTimeout = 15 * time.Second
	// Linger bounds how long the target may keep talking after the user's
	// side closed: the relay cannot carry more, so the agent waits only
	// for the target to see its half-close and finish.
	Linger = 5 * time.Second
	// writeTimeout bounds one write to either side, so a peer that stops
	// reading ends the session instead of holding it forever.
	writeTimeout = 2 * time.Minute
)

// Target is where a forwarded session goes.
type Target struct {
	Network string // "tcp" or "udp"
	Host    string // empty means 127.0.0.1, as MeshCentral's agent does
	Port    int
}

// ParseTarget checks the server's tcpport/udpport and tcpaddr/udpaddr
// values. Ports arrive as numbers or strings (MeshCentral passes the URL's
// query text through), so both are accepted.
func ParseTarget(network, addr string, port any) (Target, error) {
	t := Target{Network: network, Host: addr}
	switch v := port.(type) {
	case float64:
		if v != float64(int(v)) {
			return t, fmt.Errorf("%s port %v is not an integer", network, v)
		}
		t.Port = int(v)
	case string:
		p, err := strconv.Atoi(v)
		if err != nil {
			return t, fmt.Errorf("%s port %q: %w", network, v, err)
		}
		t.Port = p
	default:
		return t, fmt.Errorf("%s port of type %T", network, port)
	}
	if t.Port < 1 || t.Port > 65535 {
		return t, fmt.Errorf("%s port %d out of range", network, t.Port)
	}
	if network != "tcp" && network != "udp" {
		return t, fmt.Errorf("network %q: only tcp and udp", network)
	}
	if t.Host == "" {
		t.Host = "127.0.0.1"
	}
	return t, nil
}

// Addr is the target as host:port.
func (t Target) Addr() string { return net.JoinHostPort(t.Host, strconv.Itoa(t.Port)) }

// Forwarder serves forwarded sessions.
type Forwarder struct {
	Logger *slog.Logger
	// Dial connects to the target; nil means a net.Dialer with DialTimeout.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Serve connects to t and bridges ch to it until either side ends or ctx
// is done. It closes ch and the connection before returning. A nil error
// means the session ended cleanly (a side closed).
func (f *Forwarder) Serve(ctx context.Context, ch session.Channel, t Target) error {
	defer ch.Close()
	dial := f.Dial
	if dial == nil {
		d := &net.Dialer{Timeout: DialTimeout}
		dial = d.DialContext
	}
	network := t.Network
	if network == "udp" {
		network = "udp4" // as MeshCentral's agent, which opens a udp4 socket
		if ip := net.ParseIP(t.Host); ip != nil && ip.To4() == nil {
			network = "udp6"
		}
	}
	dctx, cancel := context.WithTimeout(ctx, DialTimeout)
	conn, err := dial(dctx, network, t.Addr())
	cancel()
	if err != nil {
		return fmt.Errorf("connect %s %s: %w", t.Network, t.Addr(), err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close(); ch.Close() })
	defer stop()
	return bridge(ctx, ch, conn, t.Network == "udp", f.logger())
}

func (f *Forwarder) logger() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// bridge copies both ways, one binary frame to one write (a datagram for
// UDP) and one read to one frame. The relay has no half-close, so:
//   - the target's end (TCP EOF; a UDP socket has none and ends only when
//     it is closed): everything it sent has been written to the relay,
//     then the relay is closed (a WebSocket close after the last frame);
//   - the relay's close: a TCP target gets a half-close (FIN) after the
//     last byte and has Linger to finish before the socket is closed; a
//     UDP socket is closed at once.
//
// A relay that takes no frame for writeTimeout ends the session. While
// the down pump waits for the relay, UDP datagrams pile up in the
// kernel's socket buffer, which drops them as a UDP path would.
func bridge(ctx context.Context, ch session.Channel, conn net.Conn, udp bool, log *slog.Logger) error {
	p := pump{ctx: ctx, ch: ch, conn: conn, udp: udp}
	up := make(chan error, 1) // relay -> target
	go func() { up <- p.relayToConn() }()
	down := make(chan error, 1) // target -> relay
	go func() { down <- p.connToRelay() }()

	select {
	case err := <-down:
		// The target is done (EOF or error): its data has been sent.
		ch.Close()
		<-up
		return err
	case err := <-up:
		// The user's side is done: half-close towards the target so it
		// sees the end of input after the last byte, then let it finish.
		if cw, ok := conn.(interface{ CloseWrite() error }); ok && !udp {
			cw.CloseWrite()
		} else {
			conn.Close()
		}
		conn.SetReadDeadline(time.Now().Add(Linger))
		derr := <-down
		log.Debug("forwarded session: user side ended", "err", err, "target", derr)
		return err
	}
}

// pump is one forwarded session's two copy loops.
type pump struct {
	ctx  context.Context
	ch   session.Channel
	conn net.Conn
	udp  bool
}

// transient reports whether err from the target's socket leaves the
// session going: a UDP socket reports an earlier datagram's ICMP refusal
// (ECONNREFUSED) on its next read or write, as a UDP socket would to any
// program. A TCP error always ends it.
func (p pump) transient(err error) bool {
	var oe *net.OpError
	return p.udp && errors.As(err, &oe) && !errors.Is(err, net.ErrClosed) && !oe.Timeout() && p.ctx.Err() == nil
}

// relayToConn writes each binary frame to the target. Text frames are the
// relay's and the client's control messages, never data (MeshCentral's
// agent skips them too). A closed relay returns nil.
func (p pump) relayToConn() error {
	for {
		fr, err := p.ch.Read(p.ctx)
		if err != nil {
			if errors.Is(err, session.ErrClosed) || errors.Is(err, io.EOF) || p.ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read relay: %w", err)
		}
		if !fr.Binary || len(fr.Data) == 0 {
			continue
		}
		p.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := p.conn.Write(fr.Data); err != nil && !p.transient(err) {
			return fmt.Errorf("write target: %w", err)
		}
	}
}

// connToRelay sends what the target's socket reads as binary frames; the
// target's end (EOF, the socket closed, Linger run out) returns nil.
func (p pump) connToRelay() error {
	buf := make([]byte, BufferSize)
	for {
		n, err := p.conn.Read(buf)
		if n > 0 {
			wctx, cancel := context.WithTimeout(p.ctx, writeTimeout)
			werr := p.ch.Write(wctx, session.Frame{Binary: true, Data: buf[:n]})
			cancel()
			if werr != nil {
				if errors.Is(werr, session.ErrClosed) {
					return nil
				}
				return fmt.Errorf("write relay: %w", werr)
			}
		}
		if err != nil {
			if p.transient(err) {
				continue
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || p.ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil // Linger ran out after the user's side closed
			}
			return fmt.Errorf("read target: %w", err)
		}
	}
}
