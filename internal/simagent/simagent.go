// Package simagent is a minimal simulated agent for server-lite's tests and
// load generator: it dials agent.ashx over TLS, runs the agent role of
// proto/handshake to message 4, and answers the core check with the zero
// hash the way our Go agent does. It is not an agent: nothing after that.
package simagent

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/reconnect"
)

// Identity is a node key and its self-signed certificate.
type Identity struct {
	Key     *rsa.PrivateKey
	CertDER []byte
}

// NewIdentity makes a node certificate for key the way the C agent does in
// the parts the server looks at: self-signed, CN=MeshNodeCertificate.
func NewIdentity(key *rsa.PrivateKey) (Identity, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "MeshNodeCertificate"},
		NotBefore:             time.Now().Add(-240 * time.Hour),
		NotAfter:              time.Now().AddDate(27, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return Identity{}, fmt.Errorf("simagent: certificate: %w", err)
	}
	return Identity{Key: key, CertDER: der}, nil
}

// Options for one connection.
type Options struct {
	URL      string // wss://host:port/agent.ashx
	ServerID [handshake.HashLen]byte
	MeshID   [handshake.HashLen]byte
	Identity Identity
	// Trusted is the TLS hash from an earlier successful full handshake;
	// when it matches, the skip path is taken.
	Trusted  []byte
	Hostname string
	// TLSSessions, when set, lets TLS resume sessions across connections.
	TLSSessions tls.ClientSessionCache
	LocalAddr   net.Addr // optional source address
	Timeout     time.Duration
	// TLSMaxVersion caps the TLS version (0: Go's default, TLS 1.3); the
	// load generator uses it to price TLS 1.2 session resumption.
	TLSMaxVersion uint16
	// Announce, when set, makes the agent behave like a core after the
	// core check, as our agent's default core does: send coreinfo and
	// netinfo, then answer the server's sysinfo request with SysInfo
	// unless the request carries SysInfoHash. Connect returns after that.
	Announce *Announce
}

// Announce holds what a simulated core sends after connecting: complete
// JSON messages.
type Announce struct {
	CoreInfo, NetInfo, SysInfo []byte
	SysInfoHash                string
}

// Conn is an authenticated simulated agent connection.
type Conn struct {
	WS *websocket.Conn
	// Trust is the TLS hash to pass as Options.Trusted next time.
	Trust []byte
	Skip  bool
}

// Dial opens the TLS WebSocket and returns it with H, the full hash of the
// TLS certificate the server presented.
func Dial(ctx context.Context, url string, sessions tls.ClientSessionCache) (*websocket.Conn, [handshake.HashLen]byte, error) {
	return DialFrom(ctx, url, sessions, nil)
}

// DialFrom is Dial from a given local address (the load generator spreads
// connections over 127.0.0.x to stay clear of ephemeral-port exhaustion).
func DialFrom(ctx context.Context, url string, sessions tls.ClientSessionCache, local net.Addr) (*websocket.Conn, [handshake.HashLen]byte, error) {
	return dial(ctx, url, sessions, local, 0)
}

func dial(ctx context.Context, url string, sessions tls.ClientSessionCache, local net.Addr, maxVersion uint16) (*websocket.Conn, [handshake.HashLen]byte, error) {
	var h [handshake.HashLen]byte
	nd := &net.Dialer{LocalAddr: local}
	d := websocket.Dialer{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			// As our agent: a refusal before TLS carries a Retry-After.
			return reconnect.DetectPlainRefusal(c), nil
		},
		// Trust comes from the in-band handshake, as with the C agent
		// (control.md §3.1): any TLS certificate is accepted here.
		// X25519 only, as the C agent's OpenSSL offers: Go's default
		// hybrid post-quantum exchange would make the server's TLS work
		// unlike a real agent's.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ClientSessionCache: sessions, MaxVersion: maxVersion,
			CurvePreferences: []tls.CurveID{tls.X25519}},
		HandshakeTimeout: 20 * time.Second,
		ReadBufferSize:   1024,
		WriteBufferSize:  1024,
	}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if r := reconnect.Refused(resp); r != nil {
			// A busy server's 503 and its Retry-After, for callers that
			// retry as an agent does (reconnect.RetryAfter).
			return nil, h, fmt.Errorf("simagent: dial: %w (%w)", err, r)
		}
		return nil, h, fmt.Errorf("simagent: dial: %w", err)
	}
	tc, ok := ws.NetConn().(*tls.Conn)
	if !ok {
		ws.Close()
		return nil, h, errors.New("simagent: not a TLS connection")
	}
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 {
		ws.Close()
		return nil, h, errors.New("simagent: no peer certificate")
	}
	return ws, handshake.CertHash(st.PeerCertificates[0].Raw), nil
}

// Connect dials and authenticates, returning once the server sent message 4
// and the core check was answered.
func Connect(ctx context.Context, o Options) (*Conn, error) {
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	ws, h, err := dial(ctx, o.URL, o.TLSSessions, o.LocalAddr, o.TLSMaxVersion)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		ws.SetReadDeadline(dl)
	}
	host := o.Hostname
	if host == "" {
		host = "simagent"
	}
	ag, err := handshake.NewAgent(handshake.AgentConfig{
		Key: o.Identity.Key, CertDER: o.Identity.CertDER, ServerID: o.ServerID, TLSCertHash: h,
		Trusted: o.Trusted,
		Info: handshake.AuthInfo{InfoVersion: 1, AgentID: handshake.AgentIDLinuxX64, PlatformType: handshake.PlatformVM,
			MeshID: o.MeshID, Capabilities: handshake.CapConsole | handshake.CapJavaScript, Hostname: host},
		CommitDate: "2026-Nov-23 00:00:00+0000",
	})
	if err != nil {
		ws.Close()
		return nil, err
	}
	send := func(msgs [][]byte) error {
		for _, m := range msgs {
			typ := websocket.BinaryMessage
			if handshake.IsJSON(m) {
				typ = websocket.TextMessage
			}
			if err := ws.WriteMessage(typ, m); err != nil {
				return fmt.Errorf("simagent: write: %w", err)
			}
		}
		return nil
	}
	fail := func(err error) (*Conn, error) { ws.Close(); return nil, err }
	if err := send(ag.Start()); err != nil {
		return fail(err)
	}
	for !ag.Done() {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return fail(fmt.Errorf("simagent: read: %w", err))
		}
		out, err := ag.Handle(msg)
		if err != nil {
			return fail(err)
		}
		if err := send(out); err != nil {
			return fail(err)
		}
	}
	if err := send([][]byte{handshake.EncodeTag(nil)}); err != nil {
		return fail(err)
	}
	// The server asks for the core hash next; answer like our agent: a local
	// core, do not replace (48 zero bytes).
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return fail(fmt.Errorf("simagent: read: %w", err))
		}
		if handshake.IsJSON(msg) {
			continue
		}
		cmd, req, _, err := handshake.DecodeRequest(msg)
		if err != nil {
			continue
		}
		if cmd == handshake.CmdAgentHash {
			// Never update me (MeshCentral asks before the core check).
			if err := send([][]byte{handshake.EncodeRequest(cmd, req, make([]byte, handshake.HashLen))}); err != nil {
				return fail(err)
			}
		}
		if cmd == handshake.CmdCoreModuleHash {
			if err := send([][]byte{handshake.EncodeRequest(cmd, req, make([]byte, handshake.HashLen))}); err != nil {
				return fail(err)
			}
		}
		if cmd == handshake.CmdCoreOK {
			break
		}
	}
	if a := o.Announce; a != nil {
		if err := send([][]byte{a.CoreInfo, a.NetInfo}); err != nil {
			return fail(err)
		}
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return fail(fmt.Errorf("simagent: read: %w", err))
			}
			var req struct{ Action, Hash string }
			if json.Unmarshal(msg, &req) != nil || req.Action != "sysinfo" {
				continue
			}
			if req.Hash != a.SysInfoHash {
				if err := send([][]byte{a.SysInfo}); err != nil {
					return fail(err)
				}
			}
			break
		}
	}
	ws.SetReadDeadline(time.Time{})
	trust := ag.Trust()
	if trust == nil {
		trust = o.Trusted
	}
	return &Conn{WS: ws, Trust: trust, Skip: ag.Skip()}, nil
}
