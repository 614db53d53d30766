package mctest

import (
	"crypto/rsa"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgo/meshagent/proto/handshake"
)

// ServerID returns the agent server id the .msh file carries: SHA-384 of the
// DER PKCS#1 RSAPublicKey of meshcentral-data/agentserver-cert-public.crt,
// as 96 upper-case hex digits.
func (s *Server) ServerID(t testing.TB) string {
	t.Helper()
	cert, err := readCert(filepath.Join(s.dataDir, "agentserver-cert-public.crt"))
	if err != nil {
		t.Fatalf("mctest: %v", err)
	}
	id, err := ServerIDOf(cert)
	if err != nil {
		t.Fatalf("mctest: %v", err)
	}
	return id
}

// ServerIDOf computes the MeshCentral server id of an agent server
// certificate: SHA-384 of its DER PKCS#1 RSA public key, upper-case hex.
func ServerIDOf(cert *x509.Certificate) (string, error) {
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("agent server certificate key is %T, want RSA", cert.PublicKey)
	}
	sum := sha512.Sum384(x509.MarshalPKCS1PublicKey(pub))
	return strings.ToUpper(hex.EncodeToString(sum[:])), nil
}

// WebCertFullHash returns SHA-384 of the DER of
// meshcentral-data/webserver-cert-public.crt (the HTTPS certificate), as 96
// upper-case hex digits; it equals `meshctrl serverinfo`'s tlshash.
func (s *Server) WebCertFullHash(t testing.TB) string {
	t.Helper()
	cert, err := readCert(filepath.Join(s.dataDir, "webserver-cert-public.crt"))
	if err != nil {
		t.Fatalf("mctest: %v", err)
	}
	sum := sha512.Sum384(cert.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

func readCert(path string) (*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s: no PEM block", path)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return cert, nil
}

// NodeIDFromHex turns the 96 hex digits of a node id (as `meshagent -nodeid`
// prints them) into MeshCentral's form: "node//" + base64 with '+' -> '@'
// and '/' -> '$'.
func NodeIDFromHex(h string) (string, error) {
	b, err := hex.DecodeString(strings.TrimSpace(h))
	if err != nil {
		return "", fmt.Errorf("node id %q: %w", h, err)
	}
	if len(b) != 48 {
		return "", fmt.Errorf("node id %q: %d bytes, want 48", h, len(b))
	}
	return handshake.NodeIDPrefix + meshBase64(b), nil
}

// meshBase64 is MeshCentral's id encoding: standard base64 with '+' -> '@'
// and '/' -> '$'.
func meshBase64(b []byte) string {
	s := base64.StdEncoding.EncodeToString(b)
	return strings.NewReplacer("+", "@", "/", "$").Replace(s)
}
