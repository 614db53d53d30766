package accounts

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgo/meshagent/proto/session"
)

func newMgr(t *testing.T) *Manager {
	t.Helper()
	m := New(NewMemStore())
	m.SetHashCost(bcrypt.MinCost)
	return m
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"admin", true}, {"Bob.Smith", true}, {"", false}, {"~t:abc", false},
		{"a b", false}, {`a"b`, false}, {"a,b", false}, {"a/b", false},
		{strings.Repeat("x", 256), true}, {strings.Repeat("x", 257), false},
	} {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
	}
}

func TestCreateAndAuthenticate(t *testing.T) {
	m := newMgr(t)
	u, err := m.Create("Alice", "s3cret", 0)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "user//alice" || u.Name != "Alice" {
		t.Fatalf("got id %q name %q", u.ID, u.Name)
	}
	if string(u.PasswordHash) == "s3cret" || len(u.PasswordHash) == 0 {
		t.Fatal("password not hashed")
	}
	if _, err := m.Create("alice", "x", 0); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate (case-insensitive) create: %v", err)
	}
	for _, tc := range []struct {
		user, pass string
		ok         bool
	}{
		{"Alice", "s3cret", true}, {"ALICE", "s3cret", true}, {"alice", "wrong", false},
		{"bob", "s3cret", false}, {"alice", "", false},
	} {
		_, err := m.Authenticate(tc.user, tc.pass)
		if (err == nil) != tc.ok {
			t.Errorf("Authenticate(%q,%q) err=%v want ok=%v", tc.user, tc.pass, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidLogin) {
			t.Errorf("error %v is not ErrInvalidLogin", err)
		}
	}
	for _, bad := range []string{"", strings.Repeat("p", 73)} {
		if _, err := m.Create("carol", bad, 0); !errors.Is(err, ErrBadPassword) {
			t.Errorf("Create with password len %d: %v", len(bad), err)
		}
	}
}

func TestLockedAccount(t *testing.T) {
	m := newMgr(t)
	if _, err := m.Create("locked", "pw", SiteLocked); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate("locked", "pw"); !errors.Is(err, ErrInvalidLogin) {
		t.Fatalf("locked login: %v", err)
	}
	// A full admin has every bit set, including "locked": it must still log in.
	if _, err := m.Create("root", "pw", SiteAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate("root", "pw"); err != nil {
		t.Fatalf("full admin login: %v", err)
	}
}

func TestEnsureAdmin(t *testing.T) {
	m := newMgr(t)
	name, pass, created, err := m.EnsureAdmin()
	if err != nil || !created || name != "admin" || len(pass) < 16 {
		t.Fatalf("EnsureAdmin = %q, len(pass)=%d, %v, %v", name, len(pass), created, err)
	}
	l, err := m.Authenticate(name, pass)
	if err != nil || !l.User.IsSiteAdmin() {
		t.Fatalf("admin login: %v %+v", err, l.User)
	}
	_, pass2, created, err := m.EnsureAdmin()
	if err != nil || created || pass2 != "" {
		t.Fatalf("second EnsureAdmin created=%v pass=%q err=%v", created, pass2, err)
	}
	// Two fresh servers never share a password.
	m2 := newMgr(t)
	_, p2, _, _ := m2.EnsureAdmin()
	if p2 == pass {
		t.Fatal("random admin password repeated")
	}
}

func TestEffectiveRights(t *testing.T) {
	const mesh, node, other = "mesh//M", "node//N", "mesh//O"
	for _, tc := range []struct {
		name    string
		links   map[string]uint32
		site    uint32
		want    uint32
		visible bool
	}{
		{"none", nil, 0, 0, false},
		{"site admin alone has no device rights", nil, SiteAdmin, 0, false},
		{"other group only", map[string]uint32{other: FullRights}, 0, 0, false},
		{"group link", map[string]uint32{mesh: session.RightRemoteControl}, 0, session.RightRemoteControl, true},
		{"zero link is visible", map[string]uint32{mesh: 0}, 0, 0, true},
		{"device link", map[string]uint32{node: session.RightRemoteCommand}, 0, session.RightRemoteCommand, true},
		{"or of both", map[string]uint32{node: 8, mesh: 16}, 0, 24, true},
		{"full group wins", map[string]uint32{node: 8, mesh: FullRights}, 0, FullRights, true},
		{"full device wins", map[string]uint32{node: FullRights, mesh: 16}, 0, FullRights, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := User{Links: tc.links, SiteAdmin: tc.site}
			r := EffectiveRights(u, mesh, node)
			if r.Bits != tc.want || r.Visible != tc.visible {
				t.Fatalf("got %+v want bits %#x visible %v", r, tc.want, tc.visible)
			}
		})
	}
}

func TestRightsHas(t *testing.T) {
	for _, tc := range []struct {
		r    uint32
		need uint32
		ok   bool
	}{
		{FullRights, session.RightRemoteCommand, true},
		{session.RightRemoteCommand, session.RightRemoteCommand, true},
		{session.RightRemoteControl, session.RightRemoteCommand, false},
		{24, 24, true}, {8, 24, false},
	} {
		if got := (Rights{Bits: tc.r}).Has(tc.need); got != tc.ok {
			t.Errorf("Rights(%#x).Has(%#x) = %v", tc.r, tc.need, got)
		}
	}
}

func TestLinks(t *testing.T) {
	m := newMgr(t)
	m.Create("a", "pw", 0)
	m.Create("b", "pw", 0)
	if err := m.SetLink("user//a", "mesh//X", FullRights, false); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLink("b", "mesh//X", 8, false); err != nil {
		t.Fatal(err)
	}
	mem, _ := m.Members("mesh//X")
	if len(mem) != 2 || mem["user//b"].Links["mesh//X"] != 8 {
		t.Fatalf("members %+v", mem)
	}
	m.SetLink("b", "mesh//X", 0, true)
	if mem, _ := m.Members("mesh//X"); len(mem) != 1 {
		t.Fatalf("after unlink: %+v", mem)
	}
	m.RemoveLinksTo("mesh//X")
	if mem, _ := m.Members("mesh//X"); len(mem) != 0 {
		t.Fatalf("after RemoveLinksTo: %+v", mem)
	}
	if err := m.SetLink("nobody", "mesh//X", 1, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("link unknown user: %v", err)
	}
}

func TestLoginTokens(t *testing.T) {
	m := newMgr(t)
	now := time.Unix(1_800_000_000, 0)
	m.now = func() time.Time { return now }
	m.Create("alice", "pw", 0)
	tok, err := m.CreateLoginToken("user//alice", "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.TokenUser, TokenPrefix) || len(tok.TokenUser) != 19 || len(tok.Pass) != 20 {
		t.Fatalf("token shape %+v", tok)
	}
	l, err := m.Authenticate(tok.TokenUser, tok.Pass)
	if err != nil || !l.FromToken || l.User.ID != "user//alice" {
		t.Fatalf("token login %+v %v", l, err)
	}
	if _, err := m.Authenticate(tok.TokenUser, "wrong"); err == nil {
		t.Fatal("token login with wrong password")
	}
	never, _ := m.CreateLoginToken("alice", "forever", 0)
	now = now.Add(2 * time.Hour)
	if _, err := m.Authenticate(tok.TokenUser, tok.Pass); err == nil {
		t.Fatal("expired token accepted")
	}
	left, err := m.LoginTokens("alice", nil)
	if err != nil || len(left) != 1 || left[0].TokenUser != never.TokenUser {
		t.Fatalf("purge: %+v %v", left, err)
	}
	left, _ = m.LoginTokens("alice", []string{never.TokenUser})
	if len(left) != 0 {
		t.Fatalf("remove: %+v", left)
	}
	if _, err := m.Authenticate(never.TokenUser, never.Pass); err == nil {
		t.Fatal("removed token accepted")
	}
}
