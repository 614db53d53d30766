// Package totp is the authenticator-app second factor (RFC 6238 time-based
// one-time passwords: HMAC-SHA1, 30-second steps, 6 digits, what every
// authenticator app and MeshCentral's otplib use). It implements
// accounts.SecondFactor; the secret lives in the user's record under
// "totp". A code is accepted once: the step it belongs to is recorded and
// no code of that step or an earlier one passes again.
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// Name is the factor's name in user records and the API.
const Name = "totp"

const (
	step   = 30 * time.Second
	digits = 6
	// Skew is how many steps either side of now are accepted: clocks of
	// phones drift, and MeshCentral accepts ±2 steps (otplib window 2).
	skew = 2
	// secretBytes: 160 bits, RFC 4226's recommended key length.
	secretBytes = 20
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// data is what the factor keeps in User.Factors["totp"].
type data struct {
	Secret string `json:"secret"` // base32, no padding
	Last   int64  `json:"last"`   // last accepted step
}

// Factor is the TOTP second factor. The zero value is ready to use.
type Factor struct{}

// Name implements accounts.SecondFactor.
func (Factor) Name() string { return Name }

// Enabled implements accounts.SecondFactor.
func (Factor) Enabled(u accounts.User) bool {
	d, ok := load(u)
	return ok && d.Secret != ""
}

// Challenge implements accounts.SecondFactor: the user's app already has
// the codes, nothing is sent.
func (Factor) Challenge(accounts.User) (bool, error) { return false, nil }

// Verify implements accounts.SecondFactor.
func (Factor) Verify(u *accounts.User, code string, now time.Time) bool {
	d, ok := load(*u)
	if !ok || d.Secret == "" {
		return false
	}
	key, err := b32.DecodeString(d.Secret)
	if err != nil {
		return false
	}
	st, ok := Check(key, code, now, d.Last)
	if !ok {
		return false
	}
	d.Last = st
	b, _ := json.Marshal(d)
	u.Factors[Name] = b
	return true
}

func load(u accounts.User) (data, bool) {
	raw := accounts.FactorData(u, Name)
	if raw == nil {
		return data{}, false
	}
	var d data
	if err := json.Unmarshal(raw, &d); err != nil {
		return data{}, false
	}
	return d, true
}

// NewSecret returns a fresh random secret in base32 (what apps take).
func NewSecret() string {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("crypto/rand: %w", err))
	}
	return b32.EncodeToString(b)
}

// DecodeSecret parses a base32 secret as users type or apps show it
// (spaces, lower case and padding allowed).
func DecodeSecret(s string) ([]byte, error) {
	s = strings.ToUpper(strings.NewReplacer(" ", "", "-", "", "=", "").Replace(s))
	k, err := b32.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("totp secret: %w", err)
	}
	if len(k) < 10 {
		return nil, fmt.Errorf("totp secret: %d bytes, want at least 10", len(k))
	}
	return k, nil
}

// Data is the record to store (SetFactorData) once the user proved they
// hold secret: the setup's code's step is the last used one.
func Data(secret string, lastStep int64) json.RawMessage {
	b, _ := json.Marshal(data{Secret: secret, Last: lastStep})
	return b
}

// URL is the otpauth:// URL authenticator apps import (as a QR code or
// pasted), Google Authenticator's key URI format.
func URL(issuer, account, secret string) string {
	v := url.Values{}
	v.Set("secret", secret)
	v.Set("issuer", issuer)
	v.Set("algorithm", "SHA1")
	v.Set("digits", fmt.Sprint(digits))
	v.Set("period", fmt.Sprint(int(step/time.Second)))
	return "otpauth://totp/" + url.PathEscape(issuer+":"+account) + "?" + v.Encode()
}

// Code is the code for key at time t (RFC 6238 with RFC 4226's truncation).
func Code(key []byte, t time.Time) string { return hotp(key, uint64(t.Unix()/int64(step/time.Second))) }

func hotp(key []byte, counter uint64) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	h := hmac.New(sha1.New, key)
	h.Write(msg[:])
	sum := h.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", digits, v%1_000_000)
}

// Check reports whether code is key's code for a step within skew of t and
// after last (0: none used yet), and which step it was.
func Check(key []byte, code string, t time.Time, last int64) (int64, bool) {
	code = accounts.Code(code, digits) // meshctrl drops leading zeros
	if len(code) != digits {
		return 0, false
	}
	now := t.Unix() / int64(step/time.Second)
	var found int64
	ok := false
	for st := now - skew; st <= now+skew; st++ {
		if st <= last || st < 0 {
			continue
		}
		// Compare every candidate, constant time, so timing does not show
		// which step matched.
		if subtle.ConstantTimeCompare([]byte(hotp(key, uint64(st))), []byte(code)) == 1 && !ok {
			found, ok = st, true
		}
	}
	return found, ok
}
