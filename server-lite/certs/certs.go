// Package certs creates, persists and loads server-lite's identity: a root
// CA, the TLS web certificate it issues for 127.0.0.1/localhost, and the
// agent-server certificate whose key signs handshake message 2.
//
// The agent-server key is the server's real identity: its public-key hash is
// the ServerID written into every .msh, and agents refuse a server whose
// key changed. That is why Load never silently regenerates anything: a data
// directory holding only some of the files, or files that do not parse, is
// an error the administrator must look at (control.md §2).
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/meshgo/meshagent/internal/atomicfile"
	"github.com/meshgo/meshagent/proto/handshake"
)

// File names inside the data directory. They follow MeshCentral's names so
// an administrator who knows one knows the other.
const (
	RootCertFile  = "root-cert-public.crt"
	RootKeyFile   = "root-cert-private.key"
	WebCertFile   = "webserver-cert-public.crt"
	WebKeyFile    = "webserver-cert-private.key"
	AgentCertFile = "agentserver-cert-public.crt"
	AgentKeyFile  = "agentserver-cert-private.key"
)

// DefaultHosts are always in a generated web certificate, so the quick
// start and local tools work whatever names the administrator adds.
var DefaultHosts = []string{"127.0.0.1", "::1", "localhost"}

var allFiles = []string{RootCertFile, RootKeyFile, WebCertFile, WebKeyFile, AgentCertFile, AgentKeyFile}

// ErrIncomplete reports a data directory holding some but not all of the
// certificate files. Regenerating would orphan every agent, so the caller
// must stop and let a human decide.
var ErrIncomplete = errors.New("certs: data directory has an incomplete set of certificate files")

// AgentKeyBits is the agent-server key size. RSA-3072 as MeshCentral uses
// (control.md §2.1); tests may lower it through Options.
const AgentKeyBits = 3072

// Set is the loaded identity.
type Set struct {
	Root      *x509.Certificate
	Web       tls.Certificate // leaf first; used for every TLS listener
	WebLeaf   *x509.Certificate
	AgentKey  *rsa.PrivateKey
	AgentCert []byte // DER, sent in handshake message 2
	// ServerID is SHA-384 of the agent-server public key (PKCS#1 DER), the
	// value agents pin through the .msh file (control.md §2.2).
	ServerID [handshake.HashLen]byte
	// WebCertHash is the full hash (SHA-384 of the DER) of the TLS
	// certificate: the H agents report in message 1 (control.md §2.3).
	WebCertHash [handshake.HashLen]byte
}

// ServerIDHex returns the ServerID as the .msh writes it: 96 upper-case hex.
func (s *Set) ServerIDHex() string { return strings.ToUpper(hex.EncodeToString(s.ServerID[:])) }

// WebCertHashHex returns the TLS certificate full hash as lower-case hex,
// the form MeshCentral puts in servertlshash fields.
func (s *Set) WebCertHashHex() string { return hex.EncodeToString(s.WebCertHash[:]) }

// Options tune generation. The zero value is what production uses.
type Options struct {
	// AgentKeyBits overrides AgentKeyBits (tests use 2048 for speed; the C
	// agent accepts any RSA size).
	AgentKeyBits int
	// Hosts are names and addresses the web certificate covers besides
	// DefaultHosts (the server's --hostname values).
	Hosts []string
}

// LoadOrCreate loads the identity from dir, creating the directory (0700)
// and all files (0600) when none of them exists. It reports whether it
// created them.
func LoadOrCreate(dir string, opt Options) (*Set, bool, error) {
	present := 0
	for _, f := range allFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			present++
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, false, fmt.Errorf("certs: %w", err)
		}
	}
	switch present {
	case 0:
		if err := create(dir, opt); err != nil {
			return nil, false, err
		}
		s, err := Load(dir)
		return s, true, err
	case len(allFiles):
		s, err := Load(dir)
		return s, false, err
	default:
		return nil, false, fmt.Errorf("%w (%d of %d present in %s); restore them from a backup, or move the directory away to start over with a new ServerID", ErrIncomplete, present, len(allFiles), dir)
	}
}

// Load reads an existing identity from dir.
func Load(dir string) (*Set, error) {
	rootCert, err := readCert(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, err
	}
	if _, err := readKey(filepath.Join(dir, RootKeyFile)); err != nil {
		return nil, err
	}
	web, err := tls.LoadX509KeyPair(filepath.Join(dir, WebCertFile), filepath.Join(dir, WebKeyFile))
	if err != nil {
		return nil, fmt.Errorf("certs: web certificate in %s: %w", dir, err)
	}
	webLeaf, err := x509.ParseCertificate(web.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("certs: web certificate: %w", err)
	}
	web.Leaf = webLeaf
	agentCert, err := readCert(filepath.Join(dir, AgentCertFile))
	if err != nil {
		return nil, err
	}
	k, err := readKey(filepath.Join(dir, AgentKeyFile))
	if err != nil {
		return nil, err
	}
	agentKey, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("certs: %s: agent-server key must be RSA, is %T", AgentKeyFile, k)
	}
	pub, ok := agentCert.PublicKey.(*rsa.PublicKey)
	if !ok || !pub.Equal(&agentKey.PublicKey) {
		return nil, fmt.Errorf("certs: %s does not match %s", AgentCertFile, AgentKeyFile)
	}
	return &Set{
		Root:        rootCert,
		Web:         web,
		WebLeaf:     webLeaf,
		AgentKey:    agentKey,
		AgentCert:   agentCert.Raw,
		ServerID:    handshake.NodeID(pub),
		WebCertHash: handshake.CertHash(webLeaf.Raw),
	}, nil
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("certs: %s: no PEM certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	return c, nil
}

func readKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("certs: %s: no PEM private key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: %s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certs: %s: unsupported key %T", path, k)
	}
	return s, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 63))
	return n.Add(n, big.NewInt(1))
}

// create writes a fresh identity. The root and web keys are ECDSA P-256:
// agents pin the web certificate by its full hash only (control.md §2.3,
// §10.10), and an ECDSA TLS handshake costs a fraction of an RSA one, which
// matters when thousands of agents reconnect at once. The agent-server key
// is RSA because the C agent verifies message 2 with RSA only.
func create(dir string, opt Options) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	bits := opt.AgentKeyBits
	if bits == 0 {
		bits = AgentKeyBits
	}
	hosts := withDefaultHosts(opt.Hosts)
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("certs: root key: %w", err)
	}
	suffix := make([]byte, 3)
	rand.Read(suffix)
	now := time.Now()
	rootTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ServerLiteRoot-" + hex.EncodeToString(suffix)},
		NotBefore:             now.Add(-24 * time.Hour),
		NotAfter:              now.AddDate(30, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return fmt.Errorf("certs: root: %w", err)
	}
	root, _ := x509.ParseCertificate(rootDER)

	webKey, webDER, err := issueWeb(root, rootKey, hosts)
	if err != nil {
		return err
	}

	agentKey, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		return fmt.Errorf("certs: agent-server key: %w", err)
	}
	id := handshake.NodeID(&agentKey.PublicKey)
	agentTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "ServerLiteAgentServer-" + hex.EncodeToString(id[:3])},
		NotBefore:             time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2049, 12, 31, 0, 0, 0, 0, time.UTC),
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageDataEncipherment,
	}
	agentDER, err := x509.CreateCertificate(rand.Reader, agentTmpl, root, &agentKey.PublicKey, rootKey)
	if err != nil {
		return fmt.Errorf("certs: agent-server: %w", err)
	}

	// Keys first, certificates last: an interrupted first start leaves an
	// incomplete set, which LoadOrCreate reports instead of half-using.
	writes := []struct {
		name string
		typ  string
		der  []byte
		key  any
	}{
		{RootKeyFile, "PRIVATE KEY", nil, rootKey},
		{WebKeyFile, "PRIVATE KEY", nil, webKey},
		{AgentKeyFile, "PRIVATE KEY", nil, agentKey},
		{RootCertFile, "CERTIFICATE", rootDER, nil},
		{WebCertFile, "CERTIFICATE", webDER, nil},
		{AgentCertFile, "CERTIFICATE", agentDER, nil},
	}
	for _, w := range writes {
		der := w.der
		if w.key != nil {
			if der, err = x509.MarshalPKCS8PrivateKey(w.key); err != nil {
				return fmt.Errorf("certs: %s: %w", w.name, err)
			}
		}
		data := pem.EncodeToMemory(&pem.Block{Type: w.typ, Bytes: der})
		if w.name == WebCertFile {
			// Send the chain so browsers that trust the root accept it.
			data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})...)
		}
		if err := writeFile(filepath.Join(dir, w.name), data); err != nil {
			return err
		}
	}
	return nil
}

func withDefaultHosts(extra []string) []string {
	hosts := slices.Clone(DefaultHosts)
	for _, h := range extra {
		if h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// issueWeb creates a web (TLS) key and a certificate for hosts signed by
// the root.
func issueWeb(root *x509.Certificate, rootKey crypto.Signer, hosts []string) (*ecdsa.PrivateKey, []byte, error) {
	webKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: web key: %w", err)
	}
	now := time.Now()
	cn := "localhost"
	if len(hosts) > len(DefaultHosts) {
		cn = hosts[len(DefaultHosts)] // the administrator's first name
	}
	webTmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-24 * time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			webTmpl.IPAddresses = append(webTmpl.IPAddresses, ip)
		} else {
			webTmpl.DNSNames = append(webTmpl.DNSNames, h)
		}
	}
	webDER, err := x509.CreateCertificate(rand.Reader, webTmpl, root, &webKey.PublicKey, rootKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: web: %w", err)
	}
	return webKey, webDER, nil
}

// Covers reports whether the web certificate names every host.
func (s *Set) Covers(hosts []string) bool {
	for _, h := range hosts {
		if s.WebLeaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

// EnsureWebHosts reissues the web certificate from the root when it does
// not name every one of hosts (an administrator added a --hostname after
// the first start), and reloads the set. Only the web certificate changes:
// the root and the agent-server key (the ServerID) stay, so agents keep
// trusting the server; they see a new TLS certificate hash and take the
// full handshake once. It reports whether it reissued.
func EnsureWebHosts(dir string, s *Set, hosts []string) (*Set, bool, error) {
	if s.Covers(hosts) {
		return s, false, nil
	}
	k, err := readKey(filepath.Join(dir, RootKeyFile))
	if err != nil {
		return nil, false, err
	}
	webKey, webDER, err := issueWeb(s.Root, k, withDefaultHosts(hosts))
	if err != nil {
		return nil, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(webKey)
	if err != nil {
		return nil, false, fmt.Errorf("certs: web key: %w", err)
	}
	// Each file is replaced atomically; a crash between the two leaves a
	// key that does not match the certificate, which Load reports.
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: webDER}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Root.Raw})...)
	if err := writeFile(filepath.Join(dir, WebKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, false, err
	}
	if err := writeFile(filepath.Join(dir, WebCertFile), chain); err != nil {
		return nil, false, err
	}
	ns, err := Load(dir)
	if err != nil {
		return nil, false, err
	}
	return ns, true, nil
}

// writeFile writes atomically (temp file + rename) with owner-only access.
func writeFile(path string, data []byte) error {
	if err := atomicfile.Write(path, data, 0o600); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
