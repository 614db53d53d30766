package core

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/meshgo/meshagent/proto/handshake"
)

func TestIdentityLifecycle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	id, created, err := LoadOrCreateIdentity(dir)
	if err != nil || !created {
		t.Fatalf("first run: created=%v err=%v", created, err)
	}
	cert, err := x509.ParseCertificate(id.CertDER)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "MeshNodeCertificate" || !cert.IsCA || id.Key.N.BitLen() != IdentityKeyBits {
		t.Errorf("certificate: CN %q CA %v bits %d", cert.Subject.CommonName, cert.IsCA, id.Key.N.BitLen())
	}
	if want := handshake.NodeID(&id.Key.PublicKey); id.NodeID != want || len(id.NodeIDString()) != 64 {
		t.Errorf("node id %s", id.NodeIDString())
	}
	for _, p := range []string{dir, filepath.Join(dir, IdentityFile)} {
		checkOwnerOnly(t, p)
	}
	again, created, err := LoadOrCreateIdentity(dir)
	if err != nil || created || again.NodeID != id.NodeID {
		t.Fatalf("second run: created=%v err=%v same=%v", created, err, again != nil && again.NodeID == id.NodeID)
	}
	if err := id.Save(dir); err == nil {
		t.Fatal("Save overwrote an existing identity")
	}
}

func TestCorruptIdentityIsAnErrorNotANewIdentity(t *testing.T) {
	good, err := NewIdentity(1024)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewIdentity(1024)
	goodDir := t.TempDir()
	if err := good.Save(goodDir); err != nil {
		t.Fatal(err)
	}
	goodPEM, _ := os.ReadFile(filepath.Join(goodDir, IdentityFile))
	otherDir := t.TempDir()
	other.Save(otherDir)
	otherPEM, _ := os.ReadFile(filepath.Join(otherDir, IdentityFile))
	keyOnly := goodPEM[:strings.Index(string(goodPEM), "-----BEGIN CERTIFICATE")]
	certOfOther := otherPEM[strings.Index(string(otherPEM), "-----BEGIN CERTIFICATE"):]

	tests := map[string][]byte{
		"garbage":           []byte("not pem at all"),
		"truncated":         goodPEM[:len(goodPEM)/2],
		"key only":          keyOnly,
		"mismatched cert":   append(append([]byte{}, keyOnly...), certOfOther...),
		"empty":             {},
		"flipped key byte":  flip(goodPEM, 200),
		"flipped cert byte": flip(goodPEM, len(goodPEM)-200),
	}
	for name, data := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, IdentityFile)
			os.WriteFile(path, data, 0o600)
			_, created, err := LoadOrCreateIdentity(dir)
			if err == nil || created || errors.Is(err, ErrNoIdentity) {
				t.Fatalf("created=%v err=%v: want a corruption error", created, err)
			}
			after, _ := os.ReadFile(path)
			if string(after) != string(data) {
				t.Fatal("the corrupt identity file was replaced")
			}
		})
	}
	t.Run("unreadable", func(t *testing.T) {
		if os.Geteuid() == 0 || runtime.GOOS == "windows" {
			// root reads anything, and Windows' chmod only sets the
			// read-only attribute; a directory in place of the file is
			// unreadable for all.
			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, IdentityFile), 0o700)
			if _, _, err := LoadOrCreateIdentity(dir); err == nil || errors.Is(err, ErrNoIdentity) {
				t.Fatalf("err = %v", err)
			}
			return
		}
		dir := t.TempDir()
		good.Save(dir)
		os.Chmod(filepath.Join(dir, IdentityFile), 0)
		if _, _, err := LoadOrCreateIdentity(dir); err == nil {
			t.Fatal("no error")
		}
	})
}

func flip(b []byte, i int) []byte {
	c := append([]byte{}, b...)
	if c[i] == 'A' {
		c[i] = 'B'
	} else {
		c[i] = 'A'
	}
	return c
}
