package core

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"github.com/meshgo/meshagent/internal/atomicfile"
	"github.com/meshgo/meshagent/proto/handshake"
)

// IdentityFile is the file, in the agent's data directory, that holds the
// node key and certificate (PEM, owner-only).
const IdentityFile = "meshagent.identity"

// IdentityKeyBits is the node key size, as the C agent (control.md §1.1).
const IdentityKeyBits = 3072

// Identity is the agent's node key and self-signed certificate. Its node id
// is what the server knows the device by, so it is made once and never
// replaced silently.
type Identity struct {
	Key     *rsa.PrivateKey
	CertDER []byte
	NodeID  [handshake.HashLen]byte
}

// NodeIDString returns the node id in MeshCentral's text form, without the
// "node//" prefix.
func (id *Identity) NodeIDString() string { return handshake.EncodeID(id.NodeID[:]) }

// ErrNoIdentity means the data directory holds no identity yet.
var ErrNoIdentity = errors.New("no agent identity")

// LoadIdentity reads the identity from dir. A missing file gives an error
// wrapping ErrNoIdentity; anything unreadable or inconsistent is an error
// that must stop the agent: making a new identity would turn the device into
// a new one on the server.
func LoadIdentity(dir string) (*Identity, error) {
	path := filepath.Join(dir, IdentityFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, ErrNoIdentity)
	}
	if err != nil {
		return nil, fmt.Errorf("read identity: %w", err)
	}
	id, err := parseIdentity(data)
	if err != nil {
		return nil, fmt.Errorf("identity %s is corrupt (move it away to make a new node id): %w", path, err)
	}
	return id, nil
}

func parseIdentity(data []byte) (*Identity, error) {
	var id Identity
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		switch b.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("key: %w", err)
			}
			rk, ok := k.(*rsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("key is %T, want RSA", k)
			}
			id.Key = rk
		case "CERTIFICATE":
			id.CertDER = b.Bytes
		}
	}
	if id.Key == nil || id.CertDER == nil {
		return nil, errors.New("missing key or certificate")
	}
	cert, err := x509.ParseCertificate(id.CertDER)
	if err != nil {
		return nil, fmt.Errorf("certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&id.Key.PublicKey) {
		return nil, errors.New("certificate does not match the key")
	}
	// The certificate is self-signed: a bad signature means corruption.
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, fmt.Errorf("certificate signature: %w", err)
	}
	if err := id.Key.Validate(); err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	id.NodeID = handshake.NodeID(pub)
	return &id, nil
}

// LoadOrCreateIdentity loads the identity from dir, or makes and stores a
// new one when none exists yet (first run).
func LoadOrCreateIdentity(dir string) (id *Identity, created bool, err error) {
	id, err = LoadIdentity(dir)
	if err == nil || !errors.Is(err, ErrNoIdentity) {
		return id, false, err
	}
	id, err = NewIdentity(IdentityKeyBits)
	if err != nil {
		return nil, false, err
	}
	if err := id.Save(dir); err != nil {
		return nil, false, err
	}
	return id, true, nil
}

// NewIdentity makes a key and a self-signed certificate shaped like the C
// agent's (control.md §1.1): CN=MeshNodeCertificate, CA, SHA-384, a serial
// of eight ASCII digits, valid from 10 days ago for 10,000 days. Like the C
// agent it draws again when the node id's first 32 bits are zero.
func NewIdentity(bits int) (*Identity, error) {
	for {
		key, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("generate node key: %w", err)
		}
		nid := handshake.NodeID(&key.PublicKey)
		if nid[0]|nid[1]|nid[2]|nid[3] == 0 {
			continue
		}
		digits := make([]byte, 8)
		for i := range digits {
			n, err := rand.Int(rand.Reader, big.NewInt(10))
			if err != nil {
				return nil, fmt.Errorf("serial: %w", err)
			}
			digits[i] = '0' + byte(n.Int64())
		}
		ski := sha1.Sum(x509.MarshalPKCS1PublicKey(&key.PublicKey))
		now := time.Now()
		tmpl := &x509.Certificate{
			SerialNumber:          new(big.Int).SetBytes(digits),
			Subject:               pkix.Name{CommonName: "MeshNodeCertificate"},
			NotBefore:             now.Add(-10 * 24 * time.Hour),
			NotAfter:              now.Add(10000 * 24 * time.Hour),
			IsCA:                  true,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			SubjectKeyId:          ski[:],
			SignatureAlgorithm:    x509.SHA384WithRSA,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return nil, fmt.Errorf("create node certificate: %w", err)
		}
		return &Identity{Key: key, CertDER: der, NodeID: nid}, nil
	}
}

// Save writes the identity to dir with owner-only permissions (on
// Windows a protected DACL, acl_windows.go). It never overwrites an
// existing identity. A data directory Save creates is owner-only too; an
// existing one (it may be the folder the binary was started from, shared
// with other files) keeps its permissions, and the key file alone is
// protected.
func (id *Identity) Save(dir string) error {
	_, err := os.Stat(dir)
	fresh := errors.Is(err, fs.ErrNotExist)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	if fresh {
		if err := restrictPath(dir, true); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
	}
	k, err := x509.MarshalPKCS8PrivateKey(id.Key)
	if err != nil {
		return fmt.Errorf("encode node key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: id.CertDER})...)
	path := filepath.Join(dir, IdentityFile)
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("save identity: %s already exists", path)
	}
	return writeFileAtomic(path, data, 0o600)
}

// writeFileAtomic replaces path whole (atomicfile). An owner-only perm is
// also an owner-only ACL on Windows, set before a byte is written; the
// rename keeps it.
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	var o atomicfile.Options
	if perm&0o077 == 0 {
		o.Prepare = func(tmp string) error { return restrictPath(tmp, false) }
	}
	if err := atomicfile.WriteWith(path, data, perm, o); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
