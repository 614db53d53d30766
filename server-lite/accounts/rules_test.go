package accounts

import (
	"errors"
	"strings"
	"testing"
)

func TestPasswordRules(t *testing.T) {
	strict := PasswordRules{MinLength: 10, Upper: 1, Lower: 1, Numeric: 2, NonAlpha: 1}
	for _, tc := range []struct {
		name  string
		rules PasswordRules
		pass  string
		ok    bool
	}{
		{"default ok", DefaultPasswordRules, "abcdefgh", true},
		{"default short", DefaultPasswordRules, "abcdefg", false},
		{"empty", PasswordRules{}, "", false},
		{"too long for bcrypt", PasswordRules{}, strings.Repeat("a", 73), false},
		{"max", PasswordRules{MaxLength: 10}, strings.Repeat("a", 11), false},
		{"strict ok", strict, "Abcdefg12!", true},
		{"strict no upper", strict, "abcdefg12!", false},
		{"strict one digit", strict, "Abcdefgh2!", false},
		{"strict no symbol", strict, "Abcdefgh12", false},
		{"runes count as characters", PasswordRules{MinLength: 4}, "äöüß", true},
	} {
		err := tc.rules.Check(tc.pass)
		if (err == nil) != tc.ok {
			t.Errorf("%s: Check(%q) = %v, want ok=%v", tc.name, tc.pass, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadPassword) {
			t.Errorf("%s: %v does not wrap ErrBadPassword", tc.name, err)
		}
		if err != nil && tc.pass != "" && strings.Contains(err.Error(), tc.pass) {
			t.Errorf("%s: error shows the password", tc.name)
		}
	}
}

func TestGeneratePasswordMeetsRules(t *testing.T) {
	m := newMgr(t)
	for _, r := range []PasswordRules{DefaultPasswordRules, {MinLength: 30, Upper: 3, Numeric: 3, NonAlpha: 4}, {MaxLength: 12, NonAlpha: 2}} {
		if err := r.Validate(); err != nil {
			t.Fatal(err)
		}
		m.SetPasswordRules(r)
		seen := map[string]bool{}
		for range 50 {
			p := m.GeneratePassword()
			if err := r.Check(p); err != nil {
				t.Fatalf("rules %+v: generated %q: %v", r, p, err)
			}
			if seen[p] {
				t.Fatal("the same password twice")
			}
			seen[p] = true
		}
	}
	if (PasswordRules{MinLength: 10, MaxLength: 5}).Validate() == nil {
		t.Fatal("min > max accepted")
	}
}
