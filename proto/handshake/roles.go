package handshake

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ErrState reports a message that the protocol does not allow at this point
// (a repeat, or a command outside the handshake). MeshCentral silently
// ignores these; our roles report them so the caller can disconnect.
var ErrState = errors.New("handshake: unexpected message")

// AgentConfig is what the agent role needs for one connection.
type AgentConfig struct {
	Key     *rsa.PrivateKey // node key
	CertDER []byte          // node certificate
	// ServerID is the expected SHA-384 of the agent-server certificate's
	// public key, from the .msh file.
	ServerID [HashLen]byte
	// TLSCertHash is H: SHA-384 of the TLS leaf certificate as seen on this
	// connection. The caller computes it from the TLS state, never from
	// anything the server says.
	TLSCertHash [HashLen]byte
	// Trusted is the H of the last connection whose server signature
	// verified (C agent DB key ServerTlsCertHash). When it equals
	// TLSCertHash the agent takes the skip path.
	Trusted    []byte
	Info       AuthInfo
	CommitDate string // message 30; empty = not sent
	HostInfo   string // message 31; empty = not sent
	AgentName  string // pre-auth agentName JSON; empty = not sent
	Rand       io.Reader
}

// Agent is the agent role of the handshake: a state machine fed with the
// server's messages. It is not safe for concurrent use.
type Agent struct {
	cfg            AgentConfig
	nonce          [NonceLen]byte
	serverNonce    [NonceLen]byte
	skip           bool
	sentVerify     bool
	serverVerified bool
	confirmed      bool
}

// NewAgent prepares the agent role of one handshake.
func NewAgent(cfg AgentConfig) (*Agent, error) {
	if cfg.Key == nil || len(cfg.CertDER) == 0 {
		return nil, errors.New("handshake: agent needs a key and certificate")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	a := &Agent{cfg: cfg}
	if _, err := io.ReadFull(cfg.Rand, a.nonce[:]); err != nil {
		return nil, fmt.Errorf("agent nonce: %w", err)
	}
	a.skip = len(cfg.Trusted) == HashLen && subtle.ConstantTimeCompare(cfg.Trusted, cfg.TLSCertHash[:]) == 1
	return a, nil
}

// Skip reports whether this handshake takes the skip path.
func (a *Agent) Skip() bool { return a.skip }

// Start returns the agent's opening messages, in order: 30, 31, 5, then 4
// and 1 and the AuthInfo (3) on the skip path, or just 1 otherwise.
// Messages that are JSON (IsJSON) must be sent as text frames.
func (a *Agent) Start() [][]byte {
	var out [][]byte
	if a.cfg.CommitDate != "" {
		out = append(out, EncodeCommitDate(a.cfg.CommitDate))
	}
	if a.cfg.HostInfo != "" {
		out = append(out, EncodeHostInfo(a.cfg.HostInfo))
	}
	out = append(out, EncodeServerID(a.cfg.ServerID))
	if a.skip {
		out = append(out, EncodeConfirm())
		a.serverVerified = true
	}
	out = append(out, AuthRequest{CertHash: a.cfg.TLSCertHash, Nonce: a.nonce}.Marshal())
	if a.skip {
		out = append(out, a.infoMessages()...)
	}
	return out
}

func (a *Agent) infoMessages() [][]byte {
	var out [][]byte
	if n := a.cfg.AgentName; n != "" && len(n) < 255 {
		j, _ := json.Marshal(map[string]string{"action": "agentName", "value": n})
		out = append(out, j)
	}
	return append(out, a.cfg.Info.Marshal())
}

// Handle processes one server message received before authentication
// completed and returns the messages to send in reply. An error means the
// server failed authentication (bad hash, certificate, ServerID or
// signature) or broke the protocol: the caller must drop the connection and
// act on nothing the server sent.
func (a *Agent) Handle(msg []byte) ([][]byte, error) {
	if IsJSON(msg) {
		return nil, fmt.Errorf("%w: JSON before authentication", ErrState)
	}
	cmd, err := Command(msg)
	if err != nil {
		return nil, err
	}
	switch cmd {
	case CmdAuthRequest:
		if a.sentVerify {
			return nil, fmt.Errorf("%w: second auth request", ErrState)
		}
		r, err := ParseAuthRequest(msg)
		if err != nil {
			return nil, err
		}
		if subtle.ConstantTimeCompare(r.CertHash[:], a.cfg.TLSCertHash[:]) != 1 {
			return nil, fmt.Errorf("%w: server echoed a hash that is not the TLS certificate's", ErrCertHash)
		}
		a.serverNonce = r.Nonce
		sig, err := SignAgent(a.cfg.Key, a.cfg.TLSCertHash, r.Nonce, a.nonce)
		if err != nil {
			return nil, err
		}
		v, err := AuthVerify{CertDER: a.cfg.CertDER, Signature: sig}.Marshal()
		if err != nil {
			return nil, err
		}
		a.sentVerify = true
		return [][]byte{v}, nil
	case CmdAuthVerify:
		if a.serverVerified {
			return nil, fmt.Errorf("%w: server auth verify after the server was verified", ErrState)
		}
		if !a.sentVerify {
			// The server's 1 carries Ns; without it the signature cannot be checked.
			return nil, fmt.Errorf("%w: server auth verify before its auth request", ErrState)
		}
		if err := a.verifyServer(msg); err != nil {
			return nil, err
		}
		a.serverVerified = true
		return a.infoMessages(), nil
	case CmdAuthConfirm:
		if len(msg) != 2 {
			return nil, fmt.Errorf("%w: auth confirm of %d bytes", ErrLength, len(msg))
		}
		if !a.serverVerified || !a.sentVerify {
			return nil, fmt.Errorf("%w: auth confirm before the server was verified", ErrState)
		}
		a.confirmed = true
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: command %d before authentication", ErrState, cmd)
	}
}

// verifyServer checks the server's message 2 against the ServerID pin and
// the agent's own H, never against anything the server echoed.
func (a *Agent) verifyServer(msg []byte) error {
	v, cert, err := ParseAuthVerify(msg)
	if err != nil {
		return err
	}
	pub := cert.PublicKey.(*rsa.PublicKey)
	id := NodeID(pub)
	if subtle.ConstantTimeCompare(id[:], a.cfg.ServerID[:]) != 1 {
		return fmt.Errorf("%w: certificate key hash %X", ErrServerID, id[:8])
	}
	return VerifyServer(pub, v.Signature, a.cfg.TLSCertHash, a.nonce, a.serverNonce)
}

// Done reports whether authentication completed: the server proved its
// identity (or was trusted on the skip path) and confirmed with message 4.
func (a *Agent) Done() bool { return a.confirmed && a.serverVerified }

// Trust returns the H to store as trusted for the next connection's skip
// path, or nil when this handshake did not verify a server signature.
func (a *Agent) Trust() []byte {
	if !a.serverVerified || a.skip {
		return nil
	}
	return append([]byte(nil), a.cfg.TLSCertHash[:]...)
}

// ServerConfig is what the server role needs for one connection.
type ServerConfig struct {
	Key     *rsa.PrivateKey // agent-server certificate key
	CertDER []byte          // agent-server certificate
	// AcceptHash reports whether H, the TLS certificate hash the agent
	// reports, names a certificate this server presents (§2.3).
	AcceptHash func(h [HashLen]byte) bool
	Rand       io.Reader
}

// ServerResult is what a completed server-role handshake learned.
type ServerResult struct {
	NodeID     [HashLen]byte
	Cert       *x509.Certificate
	Info       AuthInfo
	Skip       bool   // agent took the skip path
	CommitDate string // message 30, if sent
	HostInfo   string // message 31, if sent
	AgentName  string // pre-auth agentName, if sent
}

// Server is the server role of the handshake. It does not send the final
// message 4: the caller does that once it has registered the device.
type Server struct {
	cfg        ServerConfig
	nonce      [NonceLen]byte
	seen       uint8 // bitmask of handled commands 1..5
	agentNonce [NonceLen]byte
	certHash   [HashLen]byte
	pendingSig []byte // agent's 2 received before its 1
	pendingPub *rsa.PublicKey
	verified   bool
	hasInfo    bool
	res        ServerResult
}

// NewServer prepares the server role of one handshake.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Key == nil || len(cfg.CertDER) == 0 || cfg.AcceptHash == nil {
		return nil, errors.New("handshake: server needs a key, certificate and hash check")
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	s := &Server{cfg: cfg}
	if _, err := io.ReadFull(cfg.Rand, s.nonce[:]); err != nil {
		return nil, fmt.Errorf("server nonce: %w", err)
	}
	return s, nil
}

func (s *Server) once(bit uint8) error {
	if s.seen&bit != 0 {
		return fmt.Errorf("%w: repeated handshake message", ErrState)
	}
	s.seen |= bit
	return nil
}

// Handle processes one agent message received before authentication
// completed and returns the messages to send back. An error means the agent
// failed authentication or broke the protocol; the caller should drop it.
func (s *Server) Handle(msg []byte) ([][]byte, error) {
	if IsJSON(msg) {
		return nil, s.handleJSON(msg)
	}
	cmd, err := Command(msg)
	if err != nil {
		return nil, err
	}
	switch cmd {
	case CmdAgentCommitDate:
		d, err := DecodeCommitDate(msg)
		s.res.CommitDate = d
		return nil, err
	case CmdHostInfo:
		h, err := DecodeHostInfo(msg)
		s.res.HostInfo = h
		return nil, err
	case CmdServerID:
		if err := s.once(16); err != nil {
			return nil, err
		}
		_, err := DecodeServerID(msg)
		return nil, err
	case CmdAuthConfirm:
		if len(msg) != 2 {
			return nil, fmt.Errorf("%w: skip message of %d bytes", ErrLength, len(msg))
		}
		if s.seen&1 != 0 {
			return nil, fmt.Errorf("%w: skip message after auth request", ErrState)
		}
		if err := s.once(8); err != nil {
			return nil, err
		}
		s.res.Skip = true
		return nil, nil
	case CmdAuthRequest:
		r, err := ParseAuthRequest(msg)
		if err != nil {
			return nil, err
		}
		if err := s.once(1); err != nil {
			return nil, err
		}
		if !s.cfg.AcceptHash(r.CertHash) {
			return nil, fmt.Errorf("%w: agent saw a TLS certificate this server does not present (%X…)", ErrCertHash, r.CertHash[:6])
		}
		s.certHash, s.agentNonce = r.CertHash, r.Nonce
		out := [][]byte{AuthRequest{CertHash: r.CertHash, Nonce: s.nonce}.Marshal()}
		if !s.res.Skip {
			sig, err := SignServer(s.cfg.Key, r.CertHash, r.Nonce, s.nonce)
			if err != nil {
				return nil, err
			}
			v, err := AuthVerify{CertDER: s.cfg.CertDER, Signature: sig}.Marshal()
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if s.pendingSig != nil {
			if err := s.verifyAgent(s.pendingPub, s.pendingSig); err != nil {
				return nil, err
			}
		}
		return out, nil
	case CmdAuthVerify:
		v, cert, err := ParseAuthVerify(msg)
		if err != nil {
			return nil, err
		}
		if err := s.once(2); err != nil {
			return nil, err
		}
		pub := cert.PublicKey.(*rsa.PublicKey)
		s.res.Cert = cert
		s.res.NodeID = NodeID(pub)
		if s.seen&1 == 0 {
			s.pendingSig, s.pendingPub = append([]byte(nil), v.Signature...), pub
			return nil, nil
		}
		return nil, s.verifyAgent(pub, v.Signature)
	case CmdAuthInfo:
		info, err := ParseAuthInfo(msg)
		if err != nil {
			return nil, err
		}
		if err := s.once(4); err != nil {
			return nil, err
		}
		s.res.Info, s.hasInfo = info, true
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: command %d before authentication", ErrState, cmd)
	}
}

func (s *Server) verifyAgent(pub *rsa.PublicKey, sig []byte) error {
	s.pendingSig, s.pendingPub = nil, nil
	if err := VerifyAgent(pub, sig, s.certHash, s.nonce, s.agentNonce); err != nil {
		return err
	}
	s.verified = true
	return nil
}

// handleJSON accepts the one JSON action allowed before authentication,
// agentName, and ignores any other, as MeshCentral does (control.md §4.12).
func (s *Server) handleJSON(msg []byte) error {
	var m struct {
		Action string `json:"action"`
		Value  string `json:"value"`
	}
	if err := json.Unmarshal(msg, &m); err != nil {
		return fmt.Errorf("%w: pre-auth JSON: %w", ErrInvalidField, err)
	}
	if m.Action == "agentName" && len(m.Value) > 0 && len(m.Value) <= 255 {
		s.res.AgentName = m.Value
	}
	return nil
}

// Authenticated reports whether the agent proved its key and sent AuthInfo:
// the caller may now register the device and send message 4.
func (s *Server) Authenticated() bool { return s.verified && s.hasInfo }

// Result returns what the handshake learned; meaningful once Authenticated.
func (s *Server) Result() ServerResult { return s.res }
