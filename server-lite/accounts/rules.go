package accounts

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"unicode"
)

// PasswordRules are what a password chosen through the API (new account,
// own change, administrator's reset) must meet, after MeshCentral's
// domain passwordrequirements (min, max, upper, lower, numeric, nonalpha).
// Zero fields impose nothing beyond 1–72 bytes (bcrypt reads 72).
type PasswordRules struct {
	MinLength int `json:"min,omitempty"`
	MaxLength int `json:"max,omitempty"`
	Upper     int `json:"upper,omitempty"`    // at least this many upper-case letters
	Lower     int `json:"lower,omitempty"`    // lower-case letters
	Numeric   int `json:"numeric,omitempty"`  // digits
	NonAlpha  int `json:"nonalpha,omitempty"` // characters that are neither letters nor digits
}

// DefaultPasswordRules is what server-lite applies unless configured:
// length only (NIST SP 800-63B advises length over composition rules).
var DefaultPasswordRules = PasswordRules{MinLength: 8}

// Check reports why pass does not meet the rules (nil: it does). The
// error text is meant for the user and never contains the password.
func (r PasswordRules) Check(pass string) error {
	n := len([]rune(pass))
	max := maxPassword
	if r.MaxLength > 0 && r.MaxLength < max {
		max = r.MaxLength
	}
	switch {
	case pass == "":
		return fmt.Errorf("%w: empty", ErrBadPassword)
	case n < r.MinLength:
		return fmt.Errorf("%w: shorter than %d characters", ErrBadPassword, r.MinLength)
	case len(pass) > max:
		return fmt.Errorf("%w: longer than %d bytes", ErrBadPassword, max)
	}
	var up, lo, num, other int
	for _, c := range pass {
		switch {
		case unicode.IsUpper(c):
			up++
		case unicode.IsLower(c):
			lo++
		case unicode.IsDigit(c):
			num++
		case !unicode.IsLetter(c):
			other++
		}
	}
	for _, k := range []struct {
		have, want int
		what       string
	}{{up, r.Upper, "upper-case letters"}, {lo, r.Lower, "lower-case letters"}, {num, r.Numeric, "digits"}, {other, r.NonAlpha, "characters other than letters and digits"}} {
		if k.have < k.want {
			return fmt.Errorf("%w: needs at least %d %s", ErrBadPassword, k.want, k.what)
		}
	}
	return nil
}

// Validate reports rules that cannot be met.
func (r PasswordRules) Validate() error {
	if r.MinLength < 0 || r.MaxLength < 0 || r.Upper < 0 || r.Lower < 0 || r.Numeric < 0 || r.NonAlpha < 0 {
		return fmt.Errorf("password rules: negative value")
	}
	if r.MinLength > maxPassword || r.MaxLength > 0 && r.MaxLength < r.MinLength {
		return fmt.Errorf("password rules: min %d, max %d (at most %d)", r.MinLength, r.MaxLength, maxPassword)
	}
	if r.Upper+r.Lower+r.Numeric+r.NonAlpha > maxPassword {
		return fmt.Errorf("password rules: more required characters than a password can hold")
	}
	return nil
}

// SetPasswordRules sets the rules CheckPassword applies.
func (m *Manager) SetPasswordRules(r PasswordRules) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rules = r
}

// PasswordRules returns the rules in force.
func (m *Manager) PasswordRules() PasswordRules {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rules
}

// CheckPassword applies the configured rules to a password a person chose.
func (m *Manager) CheckPassword(pass string) error { return m.PasswordRules().Check(pass) }

// GeneratePassword returns a random password that meets the rules (an
// administrator's reset, shown once): at least 20 random characters from
// crypto/rand, plus as many of each class as the rules ask for.
func (m *Manager) GeneratePassword() string {
	r := m.PasswordRules()
	extra := r.Upper + r.Lower + r.Numeric + r.NonAlpha
	n := max(20, r.MinLength)
	limit := maxPassword
	if r.MaxLength > 0 {
		limit = min(limit, r.MaxLength)
	}
	n = max(min(n, limit-extra), 0)
	var b strings.Builder
	b.WriteString(randomAlnum(n))
	for _, k := range []struct {
		n   int
		set string
	}{{r.Upper, "ABCDEFGHJKLMNPQRSTUVWXYZ"}, {r.Lower, "abcdefghijkmnopqrstuvwxyz"}, {r.Numeric, "23456789"}, {r.NonAlpha, "-_.!+"}} {
		for range k.n {
			b.WriteByte(k.set[randIndex(len(k.set))])
		}
	}
	return b.String()
}

func randIndex(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		panic(fmt.Errorf("crypto/rand: %w", err))
	}
	return int(v.Int64())
}
