package accounts

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgo/meshagent/server-lite/store"
)

// TestBoltStoreRoundTrip checks that everything a User holds survives the
// server-lite database, including a restart (reopen).
func TestBoltStoreRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	m := New(FromStore(st))
	m.SetHashCost(bcrypt.MinCost)
	if _, err := m.Create("Alice", "pw", SiteManageUsers); err != nil {
		t.Fatal(err)
	}
	m.SetLink("alice", "mesh//G", 8, false)
	tok, err := m.CreateLoginToken("alice", "ci", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.SetFactorData("alice", "totp", json.RawMessage(`{"secret":"X"}`)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	st, err = store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	m = New(FromStore(st))
	l, err := m.Authenticate("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	u := l.User
	if u.Name != "Alice" || u.SiteAdmin != SiteManageUsers || u.Links["mesh//G"] != 8 || u.Creation == 0 || string(u.Factors["totp"]) != `{"secret":"X"}` {
		t.Fatalf("after reopen %+v", u)
	}
	if l, err := m.Authenticate(tok.TokenUser, tok.Pass); err != nil || !l.FromToken {
		t.Fatalf("token after reopen: %v", err)
	}
	if _, err := m.Get("bob"); err != ErrNotFound {
		t.Fatalf("missing user: %v", err)
	}
	us, err := m.List()
	if err != nil || len(us) != 1 {
		t.Fatalf("list %v %v", us, err)
	}
	if err := m.Delete("alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Authenticate("alice", "pw"); err == nil {
		t.Fatal("deleted user logs in")
	}
}
