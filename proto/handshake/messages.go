// Package handshake encodes and decodes the binary messages of MeshCentral's
// agent control channel (agent.ashx) and computes their signatures, for both
// roles: the agent and the server. It is pure: functions over bytes, no I/O,
// so server-lite, the agent and the load generator share one implementation
// and tests can run each role against the other in memory.
//
// Wire reference: ../shared/protocol/control.md sections 1-5. Every integer
// is big-endian.
package handshake

import (
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Command ids of the control channel (control.md §5.1; agentcore.h
// MeshCommands_Binary).
const (
	CmdAuthRequest       uint16 = 1  // both directions, handshake
	CmdAuthVerify        uint16 = 2  // both directions, handshake
	CmdAuthInfo          uint16 = 3  // agent → server, handshake
	CmdAuthConfirm       uint16 = 4  // agent: skip path; server: authenticated
	CmdServerID          uint16 = 5  // agent → server, handshake
	CmdCoreModule        uint16 = 10 // server → agent: push or clear the core
	CmdCoreModuleHash    uint16 = 11 // both: request / report the core hash
	CmdAgentHash         uint16 = 12 // both: request / report the binary hash
	CmdAgentUpdate       uint16 = 13 // server → agent: update start / end
	CmdAgentUpdateBlock  uint16 = 14 // server → agent block, agent ack
	CmdAgentTag          uint16 = 15 // agent → server, no request id
	CmdCoreOK            uint16 = 16 // server → agent: run your core
	CmdCompressedCore    uint16 = 20 // server → agent, never sent by 1.1.55
	CmdAgentCommitDate   uint16 = 30 // agent → server, pre-auth
	CmdHostInfo          uint16 = 31 // agent → server, pre-auth
	FirstCoreDefinedCmd  uint16 = 1000
	jsonFirstByte               = '{'
	maxHandshakeCertSize        = 16 << 10
)

// Sizes of the fixed fields.
const (
	HashLen  = 48 // SHA-384
	NonceLen = 48
	// AuthRequestLen is the exact length of message 1 in both directions.
	AuthRequestLen = 2 + HashLen + NonceLen
	// authInfoMinLen is the shortest AuthInfo the server accepts (§4.9).
	authInfoMinLen = 70
	maxHostnameLen = 255
)

// Capability bits sent in AuthInfo (control.md §4.10).
const (
	CapDesktop     uint32 = 0x001
	CapTerminal    uint32 = 0x002
	CapFiles       uint32 = 0x004
	CapConsole     uint32 = 0x008
	CapJavaScript  uint32 = 0x010
	CapTemporary   uint32 = 0x020
	CapRecovery    uint32 = 0x040
	CapCompression uint32 = 0x100
)

// Platform types: the device icon (control.md §4.11).
const (
	PlatformDesktop uint32 = 1
	PlatformLaptop  uint32 = 2
	PlatformMobile  uint32 = 3
	PlatformServer  uint32 = 4
	PlatformNAS     uint32 = 5
	PlatformRouter  uint32 = 6
	PlatformPi      uint32 = 7
	PlatformVM      uint32 = 8
)

// Agent type numbers (ARCHID) the server knows (control.md §8). We report
// the id of the platform we replace so the server's UI and runcommands
// behave as for the C agent.
const (
	AgentIDWindowsConsole64 uint32 = 2
	AgentIDWindowsService64 uint32 = 4
	AgentIDLinuxX64         uint32 = 6
	AgentIDMacX64           uint32 = 16
	AgentIDLinuxARM64       uint32 = 26
	AgentIDMacARM64         uint32 = 29
	AgentIDFreeBSDX64       uint32 = 30
)

// Errors a decoder returns, wrapped with detail. Callers match with errors.Is.
var (
	ErrShort        = errors.New("handshake: message too short")
	ErrLength       = errors.New("handshake: wrong message length")
	ErrCommand      = errors.New("handshake: unexpected command")
	ErrCertificate  = errors.New("handshake: bad certificate")
	ErrSignature    = errors.New("handshake: bad signature")
	ErrServerID     = errors.New("handshake: server certificate does not match ServerID")
	ErrCertHash     = errors.New("handshake: certificate hash mismatch")
	ErrNotRSA       = errors.New("handshake: certificate key is not RSA")
	ErrInvalidField = errors.New("handshake: invalid field")
)

// Command returns the command id at the start of msg. JSON messages (first
// byte '{') have no command id; IsJSON tells them apart.
func Command(msg []byte) (uint16, error) {
	if len(msg) < 2 {
		return 0, fmt.Errorf("%w: %d bytes, need 2", ErrShort, len(msg))
	}
	return binary.BigEndian.Uint16(msg), nil
}

// IsJSON reports whether a control-channel message is JSON rather than a
// binary command: both ends classify by the first byte (control.md §3.2).
func IsJSON(msg []byte) bool { return len(msg) > 0 && msg[0] == jsonFirstByte }

func header(cmd uint16, n int) []byte {
	b := make([]byte, 2, 2+n)
	binary.BigEndian.PutUint16(b, cmd)
	return b
}

func expect(msg []byte, cmd uint16) error {
	c, err := Command(msg)
	if err != nil {
		return err
	}
	if c != cmd {
		return fmt.Errorf("%w: got %d, want %d", ErrCommand, c, cmd)
	}
	return nil
}

// NodeID returns the 48-byte identity of an RSA public key as MeshCentral
// computes it: SHA-384 over the DER PKCS#1 RSAPublicKey, not the SPKI and not
// the certificate (control.md §1.2). It is both the agent's node id and,
// for the agent-server certificate, the ServerID.
func NodeID(pub *rsa.PublicKey) [HashLen]byte {
	return sha512.Sum384(x509.MarshalPKCS1PublicKey(pub))
}

// CertHash returns the full hash of a certificate: SHA-384 of its DER. This
// is H, what the agent reports for the TLS certificate it saw (§2.3).
func CertHash(der []byte) [HashLen]byte { return sha512.Sum384(der) }

var idEncoding = base64.StdEncoding

// Prefixes of MeshCentral's text ids in the default domain (the empty
// domain id): a device is NodeIDPrefix + EncodeID(node id), a device group
// MeshIDPrefix + EncodeID(mesh id) (../shared/protocol/control.md §1.3).
// They live here beside EncodeID because the ids they prefix are the
// hashes this handshake proves.
const (
	NodeIDPrefix = "node//"
	MeshIDPrefix = "mesh//"
)

// EncodeID writes a binary id in MeshCentral's text form: standard base64
// with '+' → '@' and '/' → '$' (control.md §1.3).
func EncodeID(id []byte) string {
	s := idEncoding.EncodeToString(id)
	return strings.NewReplacer("+", "@", "/", "$").Replace(s)
}

// DecodeID reverses EncodeID.
func DecodeID(s string) ([]byte, error) {
	s = strings.NewReplacer("@", "+", "$", "/").Replace(s)
	b, err := idEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode id %q: %w", s, err)
	}
	return b, nil
}

// EncodeCommitDate builds message 30: the agent's build date, NUL-terminated.
func EncodeCommitDate(date string) []byte {
	b := header(CmdAgentCommitDate, len(date)+1)
	b = append(b, date...)
	return append(b, 0)
}

// DecodeCommitDate parses message 30, dropping the terminating NUL.
func DecodeCommitDate(msg []byte) (string, error) {
	if err := expect(msg, CmdAgentCommitDate); err != nil {
		return "", err
	}
	s := strings.TrimRight(string(msg[2:]), "\x00")
	if !utf8.ValidString(s) || len(s) > 64 {
		return "", fmt.Errorf("%w: commit date", ErrInvalidField)
	}
	return s, nil
}

// EncodeHostInfo builds message 31: "<OS name> - <arch>", no terminator.
func EncodeHostInfo(info string) []byte {
	return append(header(CmdHostInfo, len(info)), info...)
}

// DecodeHostInfo parses message 31.
func DecodeHostInfo(msg []byte) (string, error) {
	if err := expect(msg, CmdHostInfo); err != nil {
		return "", err
	}
	if !utf8.Valid(msg[2:]) || len(msg) > 2+1024 {
		return "", fmt.Errorf("%w: host info", ErrInvalidField)
	}
	return string(msg[2:]), nil
}

// EncodeServerID builds message 5: the ServerID the agent expects.
func EncodeServerID(id [HashLen]byte) []byte {
	return append(header(CmdServerID, HashLen), id[:]...)
}

// DecodeServerID parses message 5.
func DecodeServerID(msg []byte) ([HashLen]byte, error) {
	var id [HashLen]byte
	if err := expect(msg, CmdServerID); err != nil {
		return id, err
	}
	if len(msg) != 2+HashLen {
		return id, fmt.Errorf("%w: server id is %d bytes, want %d", ErrLength, len(msg), 2+HashLen)
	}
	copy(id[:], msg[2:])
	return id, nil
}

// EncodeConfirm builds message 4: from the agent it means "I already trust
// this TLS certificate" (skip path); from the server, "you are authenticated".
func EncodeConfirm() []byte { return header(CmdAuthConfirm, 0) }

// AuthRequest is message 1, identical in both directions: the TLS
// certificate hash H and the sender's nonce.
type AuthRequest struct {
	CertHash [HashLen]byte
	Nonce    [NonceLen]byte
}

// Marshal encodes message 1.
func (r AuthRequest) Marshal() []byte {
	b := header(CmdAuthRequest, HashLen+NonceLen)
	b = append(b, r.CertHash[:]...)
	return append(b, r.Nonce[:]...)
}

// ParseAuthRequest decodes message 1; it must be exactly 98 bytes.
func ParseAuthRequest(msg []byte) (AuthRequest, error) {
	var r AuthRequest
	if err := expect(msg, CmdAuthRequest); err != nil {
		return r, err
	}
	if len(msg) != AuthRequestLen {
		return r, fmt.Errorf("%w: auth request is %d bytes, want %d", ErrLength, len(msg), AuthRequestLen)
	}
	copy(r.CertHash[:], msg[2:2+HashLen])
	copy(r.Nonce[:], msg[2+HashLen:])
	return r, nil
}

// AuthVerify is message 2: the sender's certificate and its signature over
// the handshake transcript (see SignServer and SignAgent).
type AuthVerify struct {
	CertDER   []byte
	Signature []byte
}

// Marshal encodes message 2.
func (v AuthVerify) Marshal() ([]byte, error) {
	if len(v.CertDER) == 0 || len(v.CertDER) > 0xFFFF {
		return nil, fmt.Errorf("%w: certificate of %d bytes", ErrLength, len(v.CertDER))
	}
	b := header(CmdAuthVerify, 2+len(v.CertDER)+len(v.Signature))
	b = binary.BigEndian.AppendUint16(b, uint16(len(v.CertDER)))
	b = append(b, v.CertDER...)
	return append(b, v.Signature...), nil
}

// ParseAuthVerify decodes message 2 and parses its certificate, which must
// carry an RSA key (MeshCentral's forge cannot load any other kind).
func ParseAuthVerify(msg []byte) (AuthVerify, *x509.Certificate, error) {
	var v AuthVerify
	if err := expect(msg, CmdAuthVerify); err != nil {
		return v, nil, err
	}
	if len(msg) < 4 {
		return v, nil, fmt.Errorf("%w: auth verify of %d bytes", ErrShort, len(msg))
	}
	n := int(binary.BigEndian.Uint16(msg[2:]))
	if n == 0 || n > maxHandshakeCertSize || len(msg) <= 4+n {
		return v, nil, fmt.Errorf("%w: certificate length %d in a %d-byte message", ErrLength, n, len(msg))
	}
	v.CertDER = msg[4 : 4+n]
	v.Signature = msg[4+n:]
	cert, err := x509.ParseCertificate(v.CertDER)
	if err != nil {
		return v, nil, fmt.Errorf("%w: %w", ErrCertificate, err)
	}
	if _, ok := cert.PublicKey.(*rsa.PublicKey); !ok {
		return v, nil, fmt.Errorf("%w: %T", ErrNotRSA, cert.PublicKey)
	}
	return v, cert, nil
}

// AuthInfo is message 3, the agent's description of itself (control.md §4.9).
type AuthInfo struct {
	InfoVersion  uint32 // always 1
	AgentID      uint32 // ARCHID, AgentID* constants
	AgentVersion uint32 // 0 in the C agent
	PlatformType uint32 // Platform* constants
	MeshID       [HashLen]byte
	Capabilities uint32 // Cap* bits
	Hostname     string
}

// Marshal encodes message 3. A hostname longer than 255 bytes is cut, as the
// C agent does.
func (a AuthInfo) Marshal() []byte {
	host := a.Hostname
	if len(host) > maxHostnameLen {
		host = host[:maxHostnameLen]
	}
	b := header(CmdAuthInfo, authInfoMinLen+len(host))
	b = binary.BigEndian.AppendUint32(b, a.InfoVersion)
	b = binary.BigEndian.AppendUint32(b, a.AgentID)
	b = binary.BigEndian.AppendUint32(b, a.AgentVersion)
	b = binary.BigEndian.AppendUint32(b, a.PlatformType)
	b = append(b, a.MeshID[:]...)
	b = binary.BigEndian.AppendUint32(b, a.Capabilities)
	b = binary.BigEndian.AppendUint16(b, uint16(len(host)))
	return append(b, host...)
}

// ParseAuthInfo decodes message 3. Like MeshCentral it accepts a message of
// exactly 70 bytes as having no hostname; a longer one must carry a
// hostname whose length field matches.
func ParseAuthInfo(msg []byte) (AuthInfo, error) {
	var a AuthInfo
	if err := expect(msg, CmdAuthInfo); err != nil {
		return a, err
	}
	if len(msg) < authInfoMinLen {
		return a, fmt.Errorf("%w: auth info of %d bytes, need %d", ErrShort, len(msg), authInfoMinLen)
	}
	a.InfoVersion = binary.BigEndian.Uint32(msg[2:])
	a.AgentID = binary.BigEndian.Uint32(msg[6:])
	a.AgentVersion = binary.BigEndian.Uint32(msg[10:])
	a.PlatformType = binary.BigEndian.Uint32(msg[14:])
	copy(a.MeshID[:], msg[18:66])
	a.Capabilities = binary.BigEndian.Uint32(msg[66:])
	if len(msg) == authInfoMinLen {
		return a, nil
	}
	if len(msg) < 72 {
		return a, fmt.Errorf("%w: auth info of %d bytes", ErrLength, len(msg))
	}
	n := int(binary.BigEndian.Uint16(msg[70:]))
	if n > maxHostnameLen || len(msg) != 72+n {
		return a, fmt.Errorf("%w: hostname length %d in a %d-byte auth info", ErrLength, n, len(msg))
	}
	if !utf8.Valid(msg[72:]) {
		return a, fmt.Errorf("%w: hostname is not UTF-8", ErrInvalidField)
	}
	a.Hostname = string(msg[72:])
	return a, nil
}

// MeshKeyID returns the group id as the server writes it in keys: legacy
// 32-byte ids (last 16 bytes zero) as lower-case hex, others as @/$ base64
// (control.md §4.9).
func (a AuthInfo) MeshKeyID() string {
	legacy := true
	for _, c := range a.MeshID[32:] {
		if c != 0 {
			legacy = false
			break
		}
	}
	if legacy {
		return fmt.Sprintf("%x", a.MeshID[:32])
	}
	return EncodeID(a.MeshID[:])
}

// EncodeTag builds message 15: the agent tag (no request id).
func EncodeTag(tag []byte) []byte { return append(header(CmdAgentTag, len(tag)), tag...) }

// EncodeRequest builds a post-authentication command: id, request id,
// payload (control.md §3.3).
func EncodeRequest(cmd, req uint16, payload []byte) []byte {
	b := header(cmd, 2+len(payload))
	b = binary.BigEndian.AppendUint16(b, req)
	return append(b, payload...)
}

// DecodeRequest splits a post-authentication command (id ≥ 10, except the
// agent's tag) into its id, request id and payload.
func DecodeRequest(msg []byte) (cmd, req uint16, payload []byte, err error) {
	if len(msg) < 4 {
		return 0, 0, nil, fmt.Errorf("%w: command of %d bytes, need 4", ErrShort, len(msg))
	}
	return binary.BigEndian.Uint16(msg), binary.BigEndian.Uint16(msg[2:]), msg[4:], nil
}
