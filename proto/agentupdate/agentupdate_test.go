package agentupdate

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
)

func testKey(t testing.TB) (*rsa.PrivateKey, []byte) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return k, der
}

func goodManifest() Manifest {
	return Manifest{V: 1, Platform: "linux/amd64", Version: "1.2.3", Size: 10, SHA384: strings.Repeat("ab", 48), Trial: 60}
}

func TestSignVerify(t *testing.T) {
	k, der := testKey(t)
	id := handshake.NodeID(&k.PublicKey)
	other, otherDER := testKey(t)
	o, err := Sign(k, der, "r1", goodManifest())
	if err != nil {
		t.Fatal(err)
	}
	m, err := Verify(o, id)
	if err != nil || m != goodManifest() {
		t.Fatalf("Verify: %v %+v", err, m)
	}
	// Through the JSON message and back.
	b, _ := json.Marshal(OfferMessage(o))
	msg, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(msg.Offer(), id); err != nil {
		t.Fatal(err)
	}

	tamper := func(f func(*Offer)) Offer {
		c := Offer{ID: o.ID, Manifest: bytes.Clone(o.Manifest), Sig: bytes.Clone(o.Sig), Cert: o.Cert}
		f(&c)
		return c
	}
	otherSigned, _ := Sign(other, otherDER, "r1", goodManifest())
	for _, tc := range []struct {
		name string
		o    Offer
		want error
	}{
		{"manifest changed", tamper(func(c *Offer) { c.Manifest = bytes.Replace(c.Manifest, []byte("1.2.3"), []byte("1.2.4"), 1) }), ErrSignature},
		{"signature flipped", tamper(func(c *Offer) { c.Sig[10] ^= 1 }), ErrSignature},
		{"another key, its own cert", otherSigned, ErrServerID},
		{"another key's signature, our cert", tamper(func(c *Offer) { c.Sig = otherSigned.Sig }), ErrSignature},
		{"no cert", tamper(func(c *Offer) { c.Cert = nil }), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verify(tc.o, id)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestManifestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    func(*Manifest)
	}{
		{"version", func(m *Manifest) { m.V = 2 }},
		{"platform", func(m *Manifest) { m.Platform = "linux" }},
		{"size 0", func(m *Manifest) { m.Size = 0 }},
		{"size huge", func(m *Manifest) { m.Size = MaxSize + 1 }},
		{"hash short", func(m *Manifest) { m.SHA384 = "abcd" }},
		{"hash upper", func(m *Manifest) { m.SHA384 = strings.Repeat("AB", 48) }},
		{"trial short", func(m *Manifest) { m.Trial = 1 }},
	} {
		m := goodManifest()
		tc.f(&m)
		if m.Validate() == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	m := goodManifest()
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestBlocks(t *testing.T) {
	var h [handshake.HashLen]byte
	hex.Decode(h[:], []byte(strings.Repeat("cd", 48)))
	r, err := DecodeRequest(EncodeRequest(Request{Offset: 1 << 40, SHA384: h}))
	if err != nil || r.Offset != 1<<40 || r.SHA384 != h {
		t.Fatalf("%v %+v", err, r)
	}
	off, data, err := DecodeBlock(EncodeBlock(77, []byte("hello")))
	if err != nil || off != 77 || string(data) != "hello" {
		t.Fatalf("%v %d %q", err, off, data)
	}
	if _, _, err := DecodeBlock(EncodeBlock(0, make([]byte, BlockSize+1))); err == nil {
		t.Error("oversized block accepted")
	}
	if _, err := DecodeRequest(EncodeBlock(0, nil)); err == nil {
		t.Error("a block decoded as a request")
	}
}

func FuzzParseMessage(f *testing.F) {
	k, der := testKey(f)
	o, _ := Sign(k, der, "r", goodManifest())
	b, _ := json.Marshal(OfferMessage(o))
	f.Add(b)
	f.Add([]byte(`{"action":"meshgoupdate","op":"query"}`))
	f.Add([]byte(`{"action":"meshgoupdate","op":"info","version":"1","last":{"state":"confirmed"}}`))
	id := handshake.NodeID(&k.PublicKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMessage(b)
		if err != nil || m.Op != OpOffer {
			return
		}
		if man, err := Verify(m.Offer(), id); err == nil {
			if err := man.Validate(); err != nil {
				t.Fatalf("verified manifest invalid: %v", err)
			}
		}
	})
}

func FuzzBlocks(f *testing.F) {
	f.Add(EncodeBlock(5, []byte("abc")))
	f.Add(EncodeRequest(Request{Offset: 9}))
	f.Fuzz(func(t *testing.T, b []byte) {
		if off, data, err := DecodeBlock(b); err == nil {
			if !bytes.Equal(EncodeBlock(off, data), b) {
				t.Fatal("block does not round-trip")
			}
		}
		if r, err := DecodeRequest(b); err == nil {
			if !bytes.Equal(EncodeRequest(r), b) {
				t.Fatal("request does not round-trip")
			}
		}
	})
}
