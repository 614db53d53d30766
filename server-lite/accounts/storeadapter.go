package accounts

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/meshgo/meshagent/server-lite/store"
)

// boltStore adapts server-lite's store to Store. The store keeps user records
// opaque to itself; fields it has no column for (login tokens, real name)
// travel in its Extra blob.
type boltStore struct{ st *store.Store }

// FromStore returns a Store backed by server-lite's database.
func FromStore(st *store.Store) Store { return boltStore{st} }

type extra struct {
	RealName    string                     `json:"realname,omitempty"`
	LoginTokens []LoginToken               `json:"loginTokens,omitempty"`
	Factors     map[string]json.RawMessage `json:"factors,omitempty"`
	PassChange  int64                      `json:"passchange,omitempty"`
	External    string                     `json:"external,omitempty"`
}

func toRecord(u User) (store.User, error) {
	r := store.User{ID: u.ID, Name: u.Name, PasswordHash: string(u.PasswordHash), SiteAdmin: u.SiteAdmin,
		Links: u.Links, Email: u.Email, Created: time.Unix(u.Creation, 0).UTC()}
	x := extra{RealName: u.RealName, LoginTokens: u.LoginTokens, Factors: u.Factors, PassChange: u.PassChange, External: u.External}
	if x.RealName != "" || len(x.LoginTokens) > 0 || len(x.Factors) > 0 || x.PassChange != 0 || x.External != "" {
		b, err := json.Marshal(x)
		if err != nil {
			return store.User{}, fmt.Errorf("encode user extra: %w", err)
		}
		r.Extra = b
	}
	return r, nil
}

func fromRecord(r store.User) (User, error) {
	u := User{ID: r.ID, Name: r.Name, PasswordHash: []byte(r.PasswordHash), SiteAdmin: r.SiteAdmin,
		Links: r.Links, Email: r.Email, Creation: r.Created.Unix()}
	if u.Links == nil {
		u.Links = map[string]uint32{}
	}
	if len(r.Extra) > 0 {
		var x extra
		if err := json.Unmarshal(r.Extra, &x); err != nil {
			return User{}, fmt.Errorf("decode user %s extra: %w", r.ID, err)
		}
		u.RealName, u.LoginTokens, u.Factors, u.PassChange, u.External = x.RealName, x.LoginTokens, x.Factors, x.PassChange, x.External
	}
	return u, nil
}

func (b boltStore) User(id string) (User, bool, error) {
	r, err := b.st.User(id)
	if errors.Is(err, store.ErrNotFound) {
		return User{}, false, nil
	}
	if err != nil {
		return User{}, false, err
	}
	u, err := fromRecord(r)
	return u, err == nil, err
}

func (b boltStore) PutUser(u User) error {
	r, err := toRecord(u)
	if err != nil {
		return err
	}
	return b.st.PutUser(r)
}

func (b boltStore) DeleteUser(id string) error { return b.st.DeleteUser(id) }

func (b boltStore) Users() ([]User, error) {
	rs, err := b.st.Users()
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(rs))
	for _, r := range rs {
		u, err := fromRecord(r)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}
