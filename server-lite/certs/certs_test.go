package certs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/meshgo/meshagent/proto/handshake"
)

func TestLoadOrCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s, created, err := LoadOrCreate(dir, Options{AgentKeyBits: 2048})
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if len(s.ServerIDHex()) != 96 || s.ServerIDHex() != stringsUpper(s.ServerIDHex()) {
		t.Fatalf("ServerID %q", s.ServerIDHex())
	}
	if s.ServerID != handshake.NodeID(&s.AgentKey.PublicKey) {
		t.Fatal("ServerID is not the key hash")
	}
	if s.WebCertHash != handshake.CertHash(s.Web.Certificate[0]) {
		t.Fatal("web hash")
	}
	if err := s.WebLeaf.CheckSignatureFrom(s.Root); err != nil {
		t.Fatalf("web not signed by root: %v", err)
	}
	st, _ := os.Stat(dir)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", st.Mode())
	}
	for _, f := range allFiles {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, st.Mode(), err)
		}
	}
	s2, created, err := LoadOrCreate(dir, Options{})
	if err != nil || created {
		t.Fatalf("reload: %v %v", created, err)
	}
	if s2.ServerID != s.ServerID || s2.WebCertHash != s.WebCertHash {
		t.Fatal("identity changed across reload")
	}
}

func stringsUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 32
		}
	}
	return string(b)
}

func TestBrokenDirectoryIsAnError(t *testing.T) {
	cases := []struct {
		name   string
		break_ func(dir string)
		want   error
	}{
		{"missing key", func(d string) { os.Remove(filepath.Join(d, AgentKeyFile)) }, ErrIncomplete},
		{"corrupt cert", func(d string) { os.WriteFile(filepath.Join(d, AgentCertFile), []byte("junk"), 0o600) }, nil},
		{"corrupt web key", func(d string) { os.WriteFile(filepath.Join(d, WebKeyFile), []byte("junk"), 0o600) }, nil},
		{"swapped agent key", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, WebKeyFile))
			os.WriteFile(filepath.Join(d, AgentKeyFile), b, 0o600)
		}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _, err := LoadOrCreate(dir, Options{AgentKeyBits: 1024})
			if err != nil {
				t.Fatal(err)
			}
			tc.break_(dir)
			_, created, err := LoadOrCreate(dir, Options{AgentKeyBits: 1024})
			if err == nil || created {
				t.Fatalf("broken dir accepted (created=%v)", created)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			_ = s
		})
	}
}

// TestEnsureWebHosts: adding a host name reissues only the web
// certificate (the ServerID and the root stay), and a covered set changes
// nothing.
func TestEnsureWebHosts(t *testing.T) {
	dir := t.TempDir()
	s, _, err := LoadOrCreate(dir, Options{AgentKeyBits: 1024, Hosts: []string{"a.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if !s.Covers([]string{"a.example.test", "127.0.0.1", "localhost"}) || s.Covers([]string{"b.example.test"}) {
		t.Fatalf("names %v %v", s.WebLeaf.DNSNames, s.WebLeaf.IPAddresses)
	}
	same, re, err := EnsureWebHosts(dir, s, []string{"a.example.test"})
	if err != nil || re || same.WebCertHash != s.WebCertHash {
		t.Fatalf("covered set reissued: %v %v", re, err)
	}
	n, re, err := EnsureWebHosts(dir, s, []string{"b.example.test", "10.1.2.3"})
	if err != nil || !re {
		t.Fatalf("not reissued: %v", err)
	}
	if !n.Covers([]string{"b.example.test", "10.1.2.3", "127.0.0.1"}) || n.WebLeaf.Subject.CommonName != "b.example.test" {
		t.Fatalf("reissued names %v %v", n.WebLeaf.DNSNames, n.WebLeaf.IPAddresses)
	}
	if n.ServerID != s.ServerID || !n.Root.Equal(s.Root) || n.WebCertHash == s.WebCertHash {
		t.Fatal("identity changed or web certificate did not")
	}
	if err := n.WebLeaf.CheckSignatureFrom(n.Root); err != nil {
		t.Fatalf("reissued certificate not from the root: %v", err)
	}
	loaded, err := Load(dir)
	if err != nil || loaded.WebCertHash != n.WebCertHash {
		t.Fatalf("not persisted: %v", err)
	}
}
