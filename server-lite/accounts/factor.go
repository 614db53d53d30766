package accounts

// Second login factors. The Manager holds a list of them (TOTP from the
// totp package; others, such as a code sent by messaging, plug in the same
// way); a login whose password is right then needs a code that one of the
// factors the user has enabled accepts. The login paths (form, x-meshauth,
// ?user=&pass=) all go through Manager.SecondFactor, so a new factor needs
// no change there.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// SecondFactor is one kind of second login factor.
type SecondFactor interface {
	// Name identifies the factor: its key in User.Factors, in the audit
	// log and in what the login paths tell a client ("totp").
	Name() string
	// Enabled reports whether u has set this factor up.
	Enabled(u User) bool
	// Challenge is called when u's password was right, u has this factor
	// enabled and no code came with the login. A factor that delivers codes
	// sends one now and reports sent (it must bound how often it sends:
	// anyone who knows the password can trigger this); a factor whose codes
	// the user already holds (TOTP) returns false, nil.
	Challenge(u User) (sent bool, err error)
	// Verify checks code for u at now. It runs under the Manager's write
	// lock on a fresh copy of the user, so a factor may record in u what
	// makes a code single-use (TOTP's last accepted time step, a sent code
	// used up); the Manager stores u when Verify returns true.
	Verify(u *User, code string, now time.Time) bool
}

// ErrSecondFactor is returned when a second factor is needed or a code was
// refused; FactorError says which.
var ErrSecondFactor = errors.New("second factor")

// FactorError is the outcome of a login that needs a second factor and did
// not pass it.
type FactorError struct {
	// Required: no code was given. Sent names the factors that sent one.
	Required bool
	Sent     []string
	// Enabled names the factors u has, for the client's prompt.
	Enabled []string
}

func (e *FactorError) Error() string {
	if e.Required {
		return "second factor required"
	}
	return "second factor code refused"
}

func (e *FactorError) Unwrap() error { return ErrSecondFactor }

// AddFactor offers f to users. Call it before serving; the order is the
// order codes are tried and factors listed.
func (m *Manager) AddFactor(f SecondFactor) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.factors = append(m.factors, f)
}

// Factor returns the factor with this name.
func (m *Manager) Factor(name string) (SecondFactor, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.factors {
		if f.Name() == name {
			return f, true
		}
	}
	return nil, false
}

// EnabledFactors returns the names of the factors u has set up.
func (m *Manager) EnabledFactors(u User) []string {
	m.mu.Lock()
	fs := append([]SecondFactor(nil), m.factors...)
	m.mu.Unlock()
	var out []string
	for _, f := range fs {
		if f.Enabled(u) {
			out = append(out, f.Name())
		}
	}
	return out
}

// SecondFactor completes a login whose password was right: nil when u has
// no second factor or one of its factors accepts code (the name of that
// factor is returned), else a *FactorError (wrapping ErrSecondFactor).
// With an empty code every enabled factor is challenged.
func (m *Manager) SecondFactor(u User, code string) (string, error) {
	m.mu.Lock()
	fs := append([]SecondFactor(nil), m.factors...)
	m.mu.Unlock()
	var enabled []SecondFactor
	fe := &FactorError{}
	for _, f := range fs {
		if f.Enabled(u) {
			enabled = append(enabled, f)
			fe.Enabled = append(fe.Enabled, f.Name())
		}
	}
	if len(enabled) == 0 {
		return "", nil
	}
	if code == "" {
		fe.Required = true
		var errs []error
		for _, f := range enabled {
			sent, err := f.Challenge(u)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", f.Name(), err))
			}
			if sent {
				fe.Sent = append(fe.Sent, f.Name())
			}
		}
		if len(errs) > 0 && len(fe.Sent) == 0 && len(enabled) == len(errs) {
			return "", errors.Join(append([]error{fe}, errs...)...)
		}
		return "", fe
	}
	if len(code) > 64 {
		return "", fe
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok, err := m.st.User(u.ID)
	if err != nil {
		return "", fmt.Errorf("look up user: %w", err)
	}
	if !ok {
		return "", ErrInvalidLogin
	}
	now := m.now()
	for _, f := range enabled {
		if !f.Enabled(cur) {
			continue
		}
		if f.Verify(&cur, code, now) {
			if err := m.st.PutUser(cur); err != nil {
				return "", fmt.Errorf("store user: %w", err)
			}
			return f.Name(), nil
		}
	}
	return "", fe
}

// FactorData returns what factor name stored in u (nil when none).
func FactorData(u User, name string) json.RawMessage { return u.Factors[name] }

// SetFactorData stores factor name's data in the user's record (nil
// removes it, which turns the factor off for factors that keep their
// setting there). Factors call it from their enrolment commands.
func (m *Manager) SetFactorData(userID, name string, data json.RawMessage) error {
	return m.update(normID(userID), func(u *User) error {
		if data == nil {
			delete(u.Factors, name)
			return nil
		}
		if u.Factors == nil {
			u.Factors = map[string]json.RawMessage{}
		}
		u.Factors[name] = data
		return nil
	})
}

// ClearFactors removes every factor's data from a user (an administrator's
// reset when the user lost the device).
func (m *Manager) ClearFactors(userID string) error {
	return m.update(normID(userID), func(u *User) error { u.Factors = nil; return nil })
}

// Code gives a numeric login code of n digits as it was issued, from the
// spelling a client sent: spaces dropped, and leading zeros put back when
// only they are missing. meshctrl parses --token with minimist, as a
// number, so "012345" reaches the server as "12345"; every factor whose
// codes are digits must accept that spelling, or one code in ten fails
// for meshctrl users. Anything that is not digits is returned trimmed and
// fails the factor's own comparison. The set of codes that pass is the
// same: "12345" is only another spelling of 012345.
func Code(code string, n int) string {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) > 0 && len(code) < n && strings.Trim(code, "0123456789") == "" {
		code = strings.Repeat("0", n-len(code)) + code
	}
	return code
}
