package totp

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// RFC 6238 appendix B, SHA-1 key; the 6-digit codes are the last six
// digits of the RFC's 8-digit ones.
func TestCodeRFC6238(t *testing.T) {
	key := []byte("12345678901234567890")
	for _, tc := range []struct {
		unix int64
		want string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		if got := Code(key, time.Unix(tc.unix, 0)); got != tc.want {
			t.Errorf("Code(%d) = %s, want %s", tc.unix, got, tc.want)
		}
	}
}

func TestCheck(t *testing.T) {
	key := []byte("12345678901234567890")
	now := time.Unix(1111111111, 0)
	cur := now.Unix() / 30
	// A moment whose code starts with zeros, as meshctrl sends it: without them.
	zero := now
	for !strings.HasPrefix(Code(key, zero), "0") {
		zero = zero.Add(30 * time.Second)
	}
	stripped := strings.TrimLeft(Code(key, zero), "0")
	for _, tc := range []struct {
		name string
		code string
		last int64
		ok   bool
	}{
		{"now", Code(key, now), 0, true},
		{"one step late", Code(key, now.Add(-30*time.Second)), 0, true},
		{"two steps early", Code(key, now.Add(60*time.Second)), 0, true},
		{"three steps late", Code(key, now.Add(-90*time.Second)), 0, false},
		{"already used", Code(key, now), cur, false},
		{"older than used", Code(key, now.Add(-30*time.Second)), cur, false},
		{"spaces", Code(key, now)[:3] + " " + Code(key, now)[3:], 0, true},
		{"short", "12345", 0, false},
		{"leading zeros dropped", stripped, 0, true},
		{"letters", "abcdef", 0, false},
		{"empty", "", 0, false},
	} {
		at := now
		if tc.code == stripped {
			at = zero
		}
		if _, ok := Check(key, tc.code, at, tc.last); ok != tc.ok {
			t.Errorf("%s: Check(%q, last %d) = %v, want %v", tc.name, tc.code, tc.last, ok, tc.ok)
		}
	}
}

func TestFactorThroughManager(t *testing.T) {
	m := accounts.New(accounts.NewMemStore())
	m.SetHashCost(bcrypt.MinCost)
	m.AddFactor(Factor{})
	u, err := m.Create("carol", "pw", 0)
	if err != nil {
		t.Fatal(err)
	}
	sec := NewSecret()
	key, err := DecodeSecret(strings.ToLower(sec))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetFactorData(u.ID, Name, Data(sec, 0)); err != nil {
		t.Fatal(err)
	}
	u, _ = m.Get(u.ID)
	if _, err := m.SecondFactor(u, ""); err == nil {
		t.Fatal("no code accepted")
	}
	code := Code(key, time.Now())
	if name, err := m.SecondFactor(u, code); err != nil || name != Name {
		t.Fatalf("good code: %q %v", name, err)
	}
	if _, err := m.SecondFactor(u, code); err == nil {
		t.Fatal("the same code was accepted twice")
	}
}

func TestURL(t *testing.T) {
	got := URL("mesh.example.org", "bob", "JBSWY3DPEHPK3PXP")
	want := "otpauth://totp/mesh.example.org:bob?algorithm=SHA1&digits=6&issuer=mesh.example.org&period=30&secret=JBSWY3DPEHPK3PXP"
	if got != want {
		t.Fatalf("URL = %s\nwant  %s", got, want)
	}
}

func TestDecodeSecret(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{{"JBSWY3DPEHPK3PXP", true}, {"jbsw y3dp ehpk 3pxp", true}, {"JBSW", false}, {"!!!!", false}} {
		if _, err := DecodeSecret(tc.in); (err == nil) != tc.ok {
			t.Errorf("DecodeSecret(%q) err=%v want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func FuzzCheck(f *testing.F) {
	f.Add("123456", int64(0))
	f.Add("", int64(-1))
	f.Fuzz(func(t *testing.T, code string, last int64) {
		Check([]byte("12345678901234567890"), code, time.Unix(1111111111, 0), last)
	})
}
