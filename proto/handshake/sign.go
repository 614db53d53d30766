package handshake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"fmt"
)

// transcript hashes the three 48-byte parts of a handshake signature.
func transcript(h [HashLen]byte, first, second [NonceLen]byte) []byte {
	d := sha512.New384()
	d.Write(h[:])
	d.Write(first[:])
	d.Write(second[:])
	return d.Sum(nil)
}

// SignServer computes the server's message-2 signature: RSASSA-PKCS1-v1_5
// with SHA-384 over H ‖ Na ‖ Ns, where H is the hash the agent sent
// (control.md §4.8). Signing the agent's H rather than a locally computed
// one is what lets TLS offload work; the agent compares with its own H.
func SignServer(key *rsa.PrivateKey, h [HashLen]byte, agentNonce, serverNonce [NonceLen]byte) ([]byte, error) {
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA384, transcript(h, agentNonce, serverNonce))
	if err != nil {
		return nil, fmt.Errorf("sign server transcript: %w", err)
	}
	return sig, nil
}

// VerifyServer checks a server signature made by SignServer.
func VerifyServer(pub *rsa.PublicKey, sig []byte, h [HashLen]byte, agentNonce, serverNonce [NonceLen]byte) error {
	if err := verifySHA384(pub, transcript(h, agentNonce, serverNonce), sig); err != nil {
		return fmt.Errorf("%w: server signature: %w", ErrSignature, err)
	}
	return nil
}

// SignAgent computes the agent's message-2 signature: RSASSA-PKCS1-v1_5 with
// SHA-384 over H ‖ Ns ‖ Na (the nonce order is swapped relative to the
// server's, control.md §4.8).
func SignAgent(key *rsa.PrivateKey, h [HashLen]byte, serverNonce, agentNonce [NonceLen]byte) ([]byte, error) {
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA384, transcript(h, serverNonce, agentNonce))
	if err != nil {
		return nil, fmt.Errorf("sign agent transcript: %w", err)
	}
	return sig, nil
}

// VerifyAgent checks an agent signature made by SignAgent. Only raw RSA
// signatures are accepted; the PKCS#7 form that Windows certificate-store
// agents send is not supported (control.md §4.8).
func VerifyAgent(pub *rsa.PublicKey, sig []byte, h [HashLen]byte, serverNonce, agentNonce [NonceLen]byte) error {
	if err := verifySHA384(pub, transcript(h, serverNonce, agentNonce), sig); err != nil {
		return fmt.Errorf("%w: agent signature: %w", ErrSignature, err)
	}
	return nil
}
