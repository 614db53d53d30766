package accounts

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

// codeFactor is a factor for the seam's own test: enabled by data
// {"code":...}, accepting that code once.
type codeFactor struct {
	name       string
	challenged int
	sends      bool
}

func (f *codeFactor) Name() string { return f.name }
func (f *codeFactor) Enabled(u User) bool {
	return len(FactorData(u, f.name)) > 0
}
func (f *codeFactor) Challenge(User) (bool, error) { f.challenged++; return f.sends, nil }
func (f *codeFactor) Verify(u *User, code string, _ time.Time) bool {
	var d struct{ Code string }
	if json.Unmarshal(FactorData(*u, f.name), &d) != nil || d.Code == "" || d.Code != code {
		return false
	}
	u.Factors[f.name] = json.RawMessage(`{"code":"","used":true}`)
	return true
}

func TestSecondFactorSeam(t *testing.T) {
	m := newMgr(t)
	a := &codeFactor{name: "a"}
	b := &codeFactor{name: "b", sends: true}
	m.AddFactor(a)
	m.AddFactor(b)
	u, err := m.Create("bob", "pw", 0)
	if err != nil {
		t.Fatal(err)
	}
	if name, err := m.SecondFactor(u, ""); err != nil || name != "" {
		t.Fatalf("no factor enabled: %q %v", name, err)
	}
	if err := m.SetFactorData(u.ID, "b", json.RawMessage(`{"code":"123"}`)); err != nil {
		t.Fatal(err)
	}
	u, _ = m.Get(u.ID)
	if got := m.EnabledFactors(u); len(got) != 1 || got[0] != "b" {
		t.Fatalf("enabled %v", got)
	}
	var fe *FactorError
	_, err = m.SecondFactor(u, "")
	if !errors.As(err, &fe) || !fe.Required || len(fe.Sent) != 1 || fe.Sent[0] != "b" || !errors.Is(err, ErrSecondFactor) {
		t.Fatalf("empty code: %v %+v", err, fe)
	}
	if a.challenged != 0 || b.challenged != 1 {
		t.Fatalf("challenged a=%d b=%d", a.challenged, b.challenged)
	}
	if _, err := m.SecondFactor(u, "999"); !errors.As(err, &fe) || fe.Required {
		t.Fatalf("wrong code: %v", err)
	}
	if name, err := m.SecondFactor(u, "123"); err != nil || name != "b" {
		t.Fatalf("right code: %q %v", name, err)
	}
	// The factor's update was stored: the code is used up.
	if _, err := m.SecondFactor(u, "123"); !errors.Is(err, ErrSecondFactor) {
		t.Fatalf("replayed code accepted: %v", err)
	}
	if err := m.ClearFactors(u.ID); err != nil {
		t.Fatal(err)
	}
	u, _ = m.Get(u.ID)
	if got := m.EnabledFactors(u); len(got) != 0 {
		t.Fatalf("after clear: %v", got)
	}
}

func TestCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"012345", "012345"},
		{"12345", "012345"}, // meshctrl's minimist dropped the zero
		{"5", "000005"},
		{" 123 456 ", "123456"},
		{"1234567", "1234567"}, // too long stays wrong
		{"12a45", "12a45"},     // not digits: left to fail
		{"", ""},
		{"-1234", "-1234"},
	} {
		if got := Code(tc.in, 6); got != tc.want {
			t.Errorf("Code(%q, 6) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
