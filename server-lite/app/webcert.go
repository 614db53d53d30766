package app

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/meshgo/meshagent/proto/handshake"
)

// keepServedHashes is how many certificates served before the current one
// agents may still report: an agent that completed TLS just before a
// reload sends the old certificate's hash in message 1 a moment later.
const keepServedHashes = 4

// webCert is the certificate the HTTPS listener presents: server-lite's own
// web certificate, or the administrator's (Config.WebCertFile/WebKeyFile),
// which Reload reads again. Agents connect on the same port and pin the
// ServerID, not this certificate, so any of them works for agents as long
// as the server accepts its hash in message 1 (control.md §2.3).
type webCert struct {
	certFile, keyFile string
	name              string // primary host name, for the trust check
	cur               atomic.Pointer[servedCert]

	mu     sync.Mutex
	hashes [][handshake.HashLen]byte // the certificates served, newest last
}

type servedCert struct {
	cert    *tls.Certificate
	hash    [handshake.HashLen]byte
	trusted bool // verifies against the system's roots for the primary name
}

func newWebCert(own tls.Certificate, certFile, keyFile, name string) (*webCert, error) {
	w := &webCert{certFile: certFile, keyFile: keyFile, name: name}
	if certFile == "" {
		o := &servedCert{cert: &own, hash: handshake.CertHash(own.Certificate[0])}
		w.hashes = append(w.hashes, o.hash)
		w.cur.Store(o)
		return w, nil
	}
	if _, err := w.Reload(); err != nil {
		return nil, err
	}
	return w, nil
}

// Reload reads the administrator's certificate and key again and serves
// them to new connections; on error the current one stays. It reports
// whether the certificate changed.
func (w *webCert) Reload() (bool, error) {
	if w.certFile == "" {
		return false, nil
	}
	c, err := tls.LoadX509KeyPair(w.certFile, w.keyFile)
	if err != nil {
		return false, fmt.Errorf("web certificate %s / key %s: %w", w.certFile, w.keyFile, err)
	}
	if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
		return false, fmt.Errorf("web certificate %s: %w", w.certFile, err)
	}
	s := &servedCert{cert: &c, hash: handshake.CertHash(c.Certificate[0]), trusted: trusted(&c, w.name)}
	w.mu.Lock()
	defer w.mu.Unlock()
	if old := w.cur.Load(); old != nil && old.hash == s.hash {
		return false, nil
	}
	w.hashes = append(w.hashes, s.hash)
	if n := len(w.hashes); n > 1+keepServedHashes {
		w.hashes = slices.Clone(w.hashes[n-1-keepServedHashes:])
	}
	w.cur.Store(s)
	return true, nil
}

func (w *webCert) get(*tls.ClientHelloInfo) (*tls.Certificate, error) { return w.cur.Load().cert, nil }

func trusted(c *tls.Certificate, name string) bool {
	inter := x509.NewCertPool()
	for _, der := range c.Certificate[1:] {
		if ic, err := x509.ParseCertificate(der); err == nil {
			inter.AddCert(ic)
		}
	}
	_, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Intermediates: inter})
	return err == nil
}

// Trusted reports whether the certificate served now verifies against the
// system's roots for the primary host name (server-lite's own never does).
func (w *webCert) Trusted() bool { return w.cur.Load().trusted }

// Hash is the full hash of the certificate served now.
func (w *webCert) Hash() [handshake.HashLen]byte { return w.cur.Load().hash }

// Leaf is the certificate served now.
func (w *webCert) Leaf() *x509.Certificate { return w.cur.Load().cert.Leaf }

// accept reports whether h is the hash of a certificate this server
// presents or recently presented.
func (w *webCert) accept(h [handshake.HashLen]byte) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	ok := 0
	for _, x := range w.hashes {
		ok |= subtle.ConstantTimeCompare(h[:], x[:])
	}
	return ok == 1
}

func hexHash(h [handshake.HashLen]byte) string { return hex.EncodeToString(h[:]) }
