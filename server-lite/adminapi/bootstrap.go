package adminapi

import (
	"fmt"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

// FirstAdmin is the account created on a server's first start. The caller
// prints Password once; it is stored only as a bcrypt hash.
type FirstAdmin struct {
	Name, Password string
}

// EnsureFirstAdmin creates the first administrator when the store has no
// users (returned, else nil) with a random password and full rights on
// every existing group, so the new admin sees the default group at once.
func EnsureFirstAdmin(st *store.Store, acc *accounts.Manager) (*FirstAdmin, error) {
	name, pass, created, err := acc.EnsureAdmin()
	if err != nil {
		return nil, fmt.Errorf("create first admin: %w", err)
	}
	if !created {
		return nil, nil
	}
	gs, err := st.Groups()
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	for _, g := range gs {
		if err := acc.SetLink(accounts.UserID(name), g.ID, accounts.FullRights, false); err != nil {
			return nil, err
		}
	}
	return &FirstAdmin{Name: name, Password: pass}, nil
}

// LoginHelp is the text the main package prints once on first start: the
// new administrator's password (the only time it is shown) and how to log
// in with meshctrl and with server-lite's own CLI. baseURL is e.g.
// wss://127.0.0.1:4443.
func LoginHelp(first *FirstAdmin, baseURL string) string {
	return fmt.Sprintf(`Administrator account created: %s
  password:   %s
  (shown only now; stored as a bcrypt hash)
Log in with MeshCentral's CLI:
  node meshctrl.js serverinfo --url %s --loginuser %s --loginpass '<password>'
or with server-lite's own CLI:
  SERVERLITE_PASS='<password>' server-lite devices --url %s --user %s
meshctrl can also log in without a password with the login key file in the
data directory: --loginuser %s --loginkeyfile <data dir>/%s
`, first.Name, first.Password, baseURL, first.Name, baseURL, first.Name, first.Name, LoginKeyFile)
}
