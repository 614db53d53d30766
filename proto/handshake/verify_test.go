package handshake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"math/big"
	"sync"
	"testing"
)

var (
	verifyKeysOnce sync.Once
	verifyKey3072  *rsa.PrivateKey
	verifyKey1024  *rsa.PrivateKey
)

// verifyKeys returns a 3072-bit key like an agent's (fast path) and a
// 1024-bit one (handed to crypto/rsa).
func verifyKeys(tb testing.TB) (*rsa.PrivateKey, *rsa.PrivateKey) {
	verifyKeysOnce.Do(func() {
		var err error
		if verifyKey3072, err = rsa.GenerateKey(rand.Reader, 3072); err != nil {
			panic(err)
		}
		if verifyKey1024, err = rsa.GenerateKey(rand.Reader, 1024); err != nil {
			panic(err)
		}
	})
	return verifyKey3072, verifyKey1024
}

func TestVerifySHA384(t *testing.T) {
	k, small := verifyKeys(t)
	digest := sha512.Sum384([]byte("transcript"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA384, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	otherDigest := sha512.Sum384([]byte("other"))
	sha256Sig, _ := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, digest[:32])
	smallSig, _ := rsa.SignPKCS1v15(rand.Reader, small, crypto.SHA384, digest[:])
	nPlusSig := new(big.Int).Add(new(big.Int).SetBytes(sig), k.N).Bytes()
	evenE := &rsa.PublicKey{N: k.N, E: 65536}

	tests := []struct {
		name   string
		pub    *rsa.PublicKey
		digest []byte
		sig    []byte
		ok     bool
	}{
		{"valid", &k.PublicKey, digest[:], sig, true},
		{"other digest", &k.PublicKey, otherDigest[:], sig, false},
		{"first byte flipped", &k.PublicKey, digest[:], flip(sig, 0), false},
		{"last byte flipped", &k.PublicKey, digest[:], flip(sig, len(sig)-1), false},
		{"short signature", &k.PublicKey, digest[:], sig[1:], false},
		{"long signature", &k.PublicKey, digest[:], append([]byte{0}, sig...), false},
		{"signature plus modulus", &k.PublicKey, digest[:], nPlusSig, false},
		{"zero signature", &k.PublicKey, digest[:], make([]byte, len(sig)), false},
		{"SHA-256 DigestInfo", &k.PublicKey, digest[:], sha256Sig, false},
		{"short digest", &k.PublicKey, digest[:32], sig, false},
		{"1024-bit key (crypto/rsa decides)", &small.PublicKey, digest[:], smallSig, true},
		{"even exponent", evenE, digest[:], sig, false},
		{"nil key", nil, digest[:], sig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := verifySHA384(tt.pub, tt.digest, tt.sig)
			if (err == nil) != tt.ok {
				t.Fatalf("verifySHA384 = %v, want ok=%v", err, tt.ok)
			}
			if tt.pub != nil {
				std := rsa.VerifyPKCS1v15(tt.pub, crypto.SHA384, tt.digest, tt.sig)
				if (std == nil) != (err == nil) {
					t.Fatalf("crypto/rsa says %v, verifySHA384 says %v", std, err)
				}
			}
		})
	}
}

// FuzzVerifySHA384 checks the fast verifier against crypto/rsa on
// mutated signatures, digests and exponents: they must always agree.
func FuzzVerifySHA384(f *testing.F) {
	k, _ := verifyKeys(f)
	digest := sha512.Sum384([]byte("transcript"))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA384, digest[:])
	f.Add(sig, digest[:], uint32(k.E))
	f.Add(sig[:10], digest[:], uint32(3))
	f.Add(make([]byte, len(sig)), digest[:47], uint32(65537))
	f.Fuzz(func(t *testing.T, sig, digest []byte, e uint32) {
		pub := &rsa.PublicKey{N: k.N, E: int(e)}
		if e%7 == 0 {
			pub.E = k.E // keep the real exponent often, so valid shapes are reached
		}
		ours := verifySHA384(pub, digest, sig)
		std := rsa.VerifyPKCS1v15(pub, crypto.SHA384, digest, sig)
		if (ours == nil) != (std == nil) {
			t.Fatalf("disagree: ours %v, crypto/rsa %v", ours, std)
		}
	})
}

func BenchmarkVerifySHA384(b *testing.B) {
	k, _ := verifyKeys(b)
	digest := sha512.Sum384([]byte("transcript"))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA384, digest[:])
	b.Run("handshake", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := verifySHA384(&k.PublicKey, digest[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("crypto-rsa", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := rsa.VerifyPKCS1v15(&k.PublicKey, crypto.SHA384, digest[:], sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
