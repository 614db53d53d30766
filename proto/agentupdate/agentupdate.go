// Package agentupdate is the wire format of our agent's self-update with
// server-lite, for both roles: the signed manifest that names a binary,
// the JSON messages of the exchange and the binary block request and
// block (command 14, as MeshCentral's native update uses it, with an
// offset added so that a transfer cut mid-way resumes). Pure: no files,
// no sockets.
//
// The exchange (server-lite only; with MeshCentral our agent keeps
// answering command 12 with the zero hash, control.md §5.4):
//
//	S→A {"action":"meshgoupdate","op":"query"}
//	A→S {"action":"meshgoupdate","op":"info","version":..,"platform":..,"sha384":..,"updatable":..,"last":{..}}
//	S→A {"action":"meshgoupdate","op":"offer","id":..,"manifest":b64,"sig":b64,"cert":b64}
//	A→S {"action":"meshgoupdate","op":"status","id":..,"state":"downloading",..}
//	A→S 000E ‖ u16 0 ‖ u64 offset ‖ b[48] sha384          (block request; up to Window outstanding)
//	S→A 000E ‖ u16 1 ‖ u64 offset ‖ data                  (block, at most BlockSize bytes)
//	A→S status "downloaded", "installed", "restarting"; after the restart
//	    the new binary answers "info" with last.state "confirmed", or the
//	    restored old one with "rolledback".
//
// The signature: the manifest is signed with server-lite's agent-server
// key, RSA-PSS over SHA-384 of SigContext ‖ manifest. That is the key
// whose public-key hash is the ServerID every agent pins in its .msh and
// checks in every handshake (control.md §2.2), so the agent verifies an
// update against what it already trusts, and a stolen web certificate
// (which may be the administrator's own, e.g. Let's Encrypt) cannot sign
// one. SigContext keeps these signatures apart from the handshake's,
// which sign a fixed 144-byte transcript with the same key.
package agentupdate

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/subtle"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/meshgo/meshagent/proto/handshake"
)

// Action is the JSON action of every update message.
const Action = "meshgoupdate"

// JSON ops.
const (
	OpQuery  = "query"  // S→A: tell me your version
	OpInfo   = "info"   // A→S: the answer
	OpOffer  = "offer"  // S→A: install this binary
	OpStatus = "status" // A→S: a step of an update happened (or was refused)
)

// States an agent reports in status messages and in Info.Last.
const (
	StateDownloading = "downloading"
	StateDownloaded  = "downloaded" // size, SHA-384 and platform checked
	StateInstalled   = "installed"  // previous binary kept aside, new one in place, watchdog running
	StateRestarting  = "restarting" // exiting for the service manager to start the new binary
	StateConfirmed   = "confirmed"  // the new binary came online within its trial
	StateRolledBack  = "rolledback" // the trial expired; the previous binary is back
	StateRefused     = "refused"    // offer or binary refused; nothing changed
	StateFailed      = "failed"     // a step failed; nothing changed
	StateCurrent     = "current"    // already running the offered binary
)

// Limits.
const (
	// BlockSize is the most data one block carries: MeshCentral's
	// 65 531-byte blocks minus the 8-byte offset.
	BlockSize = 65523
	// Window is how many block requests an agent keeps outstanding.
	Window = 4
	// MaxSize bounds a binary's size (ours is about 15 MB).
	MaxSize = 256 << 20
	// MaxManifest bounds the manifest's encoded size.
	MaxManifest = 4096
	// DefaultTrial is how long a new binary has to come online before the
	// previous one is restored.
	DefaultTrial = 120
	// MinTrial and MaxTrial bound Manifest.Trial (seconds).
	MinTrial, MaxTrial = 5, 3600
)

// SigContext is prepended to the manifest before hashing for the signature.
const SigContext = "meshgo agent update manifest v1\n"

// Manifest names one binary. It is sent as the exact bytes that were
// signed; the agent parses those bytes only after the signature checked.
type Manifest struct {
	V        int    `json:"v"`        // 1
	Platform string `json:"platform"` // GOOS/GOARCH, e.g. "linux/amd64"
	Version  string `json:"version"`  // the version string the binary reports (informational)
	Size     int64  `json:"size"`
	SHA384   string `json:"sha384"` // lower-case hex of the whole file
	Trial    int    `json:"trial"`  // seconds the new binary has to come online
}

// Hash returns the SHA-384 as bytes.
func (m *Manifest) Hash() ([handshake.HashLen]byte, error) {
	var h [handshake.HashLen]byte
	b, err := hex.DecodeString(m.SHA384)
	if err != nil || len(b) != handshake.HashLen {
		return h, fmt.Errorf("agentupdate: manifest sha384 %q is not 96 hex digits", clip(m.SHA384))
	}
	copy(h[:], b)
	return h, nil
}

// Validate checks the fields' shapes.
func (m *Manifest) Validate() error {
	if m.V != 1 {
		return fmt.Errorf("agentupdate: manifest version %d not supported", m.V)
	}
	goos, goarch, ok := strings.Cut(m.Platform, "/")
	if !ok || goos == "" || goarch == "" || len(m.Platform) > 64 {
		return fmt.Errorf("agentupdate: platform %q is not GOOS/GOARCH", clip(m.Platform))
	}
	if len(m.Version) > 128 {
		return errors.New("agentupdate: version longer than 128 bytes")
	}
	if m.Size <= 0 || m.Size > MaxSize {
		return fmt.Errorf("agentupdate: size %d outside 1..%d", m.Size, MaxSize)
	}
	if m.SHA384 != strings.ToLower(m.SHA384) {
		return errors.New("agentupdate: sha384 must be lower-case hex")
	}
	if _, err := m.Hash(); err != nil {
		return err
	}
	if m.Trial < MinTrial || m.Trial > MaxTrial {
		return fmt.Errorf("agentupdate: trial %d s outside %d..%d", m.Trial, MinTrial, MaxTrial)
	}
	return nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// Offer is the signed offer as it travels in the JSON message.
type Offer struct {
	ID       string `json:"id"`       // the rollout's id, echoed in status messages
	Manifest []byte `json:"manifest"` // base64 in JSON: the signed bytes
	Sig      []byte `json:"sig"`
	Cert     []byte `json:"cert"` // the agent-server certificate (DER)
}

func digest(manifest []byte) []byte {
	h := sha512.New384()
	h.Write([]byte(SigContext))
	h.Write(manifest)
	return h.Sum(nil)
}

var pssOpts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA384}

// Sign makes an offer for m, signed with the agent-server key whose
// certificate is certDER.
func Sign(key *rsa.PrivateKey, certDER []byte, id string, m Manifest) (Offer, error) {
	if err := m.Validate(); err != nil {
		return Offer{}, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return Offer{}, fmt.Errorf("agentupdate: %w", err)
	}
	sig, err := rsa.SignPSS(rand.Reader, key, crypto.SHA384, digest(b), pssOpts)
	if err != nil {
		return Offer{}, fmt.Errorf("agentupdate: sign: %w", err)
	}
	return Offer{ID: id, Manifest: b, Sig: sig, Cert: certDER}, nil
}

// Errors of Verify that tell an agent why it refused.
var (
	ErrServerID  = errors.New("agentupdate: offer signed by a key that is not the pinned ServerID")
	ErrSignature = errors.New("agentupdate: bad signature")
)

// Verify checks an offer against the ServerID the agent pins for the
// server it is connected to, then parses and validates the manifest.
func Verify(o Offer, serverID [handshake.HashLen]byte) (Manifest, error) {
	var m Manifest
	if len(o.Manifest) == 0 || len(o.Manifest) > MaxManifest {
		return m, fmt.Errorf("agentupdate: manifest of %d bytes", len(o.Manifest))
	}
	cert, err := x509.ParseCertificate(o.Cert)
	if err != nil {
		return m, fmt.Errorf("agentupdate: certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return m, errors.New("agentupdate: certificate key is not RSA")
	}
	id := handshake.NodeID(pub)
	if subtle.ConstantTimeCompare(id[:], serverID[:]) != 1 {
		return m, ErrServerID
	}
	if err := rsa.VerifyPSS(pub, crypto.SHA384, digest(o.Manifest), o.Sig, pssOpts); err != nil {
		return m, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	d := json.NewDecoder(bytes.NewReader(o.Manifest))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return m, fmt.Errorf("agentupdate: manifest: %w", err)
	}
	return m, m.Validate()
}

// Message is every JSON message of the exchange; which fields are set
// depends on Op.
type Message struct {
	Action string `json:"action"`
	Op     string `json:"op"`
	ID     string `json:"id,omitempty"` // offer and status: the rollout
	// offer
	Manifest []byte `json:"manifest,omitempty"`
	Sig      []byte `json:"sig,omitempty"`
	Cert     []byte `json:"cert,omitempty"`
	// info and status
	Version   string `json:"version,omitempty"`
	Platform  string `json:"platform,omitempty"`
	SHA384    string `json:"sha384,omitempty"`
	Updatable bool   `json:"updatable,omitempty"`
	Why       string `json:"why,omitempty"` // info: why not updatable
	Last      *Last  `json:"last,omitempty"`
	// status
	State string `json:"state,omitempty"`
	Msg   string `json:"msg,omitempty"`
}

// Last is the outcome of the most recent update an agent tried.
type Last struct {
	ID     string `json:"id,omitempty"`
	State  string `json:"state"`
	From   string `json:"from,omitempty"` // version
	To     string `json:"to,omitempty"`   // version
	SHA384 string `json:"sha384,omitempty"`
	Msg    string `json:"msg,omitempty"`
	Time   int64  `json:"time,omitempty"` // unix seconds
}

// Offer returns the offer a message carries.
func (m *Message) Offer() Offer {
	return Offer{ID: m.ID, Manifest: m.Manifest, Sig: m.Sig, Cert: m.Cert}
}

// OfferMessage wraps an offer in its JSON message.
func OfferMessage(o Offer) Message {
	return Message{Action: Action, Op: OpOffer, ID: o.ID, Manifest: o.Manifest, Sig: o.Sig, Cert: o.Cert}
}

// Conn is one authenticated control connection as the agent's side of
// the exchange uses it.
type Conn interface {
	SendJSON(v any) error
	SendBinary(msg []byte) error
	// ServerID is the ServerID pinned for this connection's server.
	ServerID() [handshake.HashLen]byte
}

// IsUpdateMessage reports whether a JSON object from the server is an
// update message (its action is Action), cheaply for the others.
func IsUpdateMessage(b []byte) bool {
	if !bytes.Contains(b, []byte(`"`+Action+`"`)) {
		return false
	}
	var m struct {
		Action string `json:"action"`
	}
	return json.Unmarshal(b, &m) == nil && m.Action == Action
}

// MaxMessage bounds an update JSON message.
const MaxMessage = 16 << 10

// ParseMessage decodes one update JSON message from untrusted bytes.
func ParseMessage(b []byte) (Message, error) {
	var m Message
	if len(b) > MaxMessage {
		return m, fmt.Errorf("agentupdate: message of %d bytes", len(b))
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("agentupdate: %w", err)
	}
	if m.Action != Action {
		return m, fmt.Errorf("agentupdate: action %q", clip(m.Action))
	}
	switch m.Op {
	case OpQuery, OpInfo, OpStatus:
	case OpOffer:
		if len(m.Manifest) == 0 || len(m.Sig) == 0 || len(m.Cert) == 0 {
			return m, errors.New("agentupdate: offer without manifest")
		}
	default:
		return m, fmt.Errorf("agentupdate: op %q", clip(m.Op))
	}
	for _, s := range []string{m.ID, m.Version, m.Platform, m.SHA384, m.State, m.Why, m.Msg} {
		if len(s) > 1024 {
			return m, errors.New("agentupdate: field longer than 1024 bytes")
		}
	}
	return m, nil
}

// Request is the agent's block request.
type Request struct {
	Offset uint64
	SHA384 [handshake.HashLen]byte // which binary
}

// EncodeRequest builds 000E ‖ u16 0 ‖ u64 offset ‖ b[48] hash.
func EncodeRequest(r Request) []byte {
	p := make([]byte, 8, 8+handshake.HashLen)
	binary.BigEndian.PutUint64(p, r.Offset)
	return handshake.EncodeRequest(handshake.CmdAgentUpdateBlock, 0, append(p, r.SHA384[:]...))
}

// DecodeRequest parses a block request (the whole frame).
func DecodeRequest(msg []byte) (Request, error) {
	var r Request
	cmd, req, p, err := handshake.DecodeRequest(msg)
	if err != nil {
		return r, err
	}
	if cmd != handshake.CmdAgentUpdateBlock || req != 0 || len(p) != 8+handshake.HashLen {
		return r, fmt.Errorf("agentupdate: not a block request (cmd %d, req %d, %d bytes)", cmd, req, len(p))
	}
	r.Offset = binary.BigEndian.Uint64(p)
	copy(r.SHA384[:], p[8:])
	return r, nil
}

// EncodeBlock builds 000E ‖ u16 1 ‖ u64 offset ‖ data.
func EncodeBlock(offset uint64, data []byte) []byte {
	p := make([]byte, 8, 8+len(data))
	binary.BigEndian.PutUint64(p, offset)
	return handshake.EncodeRequest(handshake.CmdAgentUpdateBlock, 1, append(p, data...))
}

// DecodeBlock parses a block (the whole frame); data aliases msg.
func DecodeBlock(msg []byte) (offset uint64, data []byte, err error) {
	cmd, req, p, err := handshake.DecodeRequest(msg)
	if err != nil {
		return 0, nil, err
	}
	if cmd != handshake.CmdAgentUpdateBlock || req != 1 || len(p) < 8 || len(p)-8 > BlockSize {
		return 0, nil, fmt.Errorf("agentupdate: not a block (cmd %d, req %d, %d bytes)", cmd, req, len(p))
	}
	return binary.BigEndian.Uint64(p), p[8:], nil
}
