package consent

import (
	"context"

	"github.com/meshgo/meshagent/agent/osuser"
)

// System is the Presence of this machine: the logged-in users are the
// sessions osuser lists (the console user by its rule outside Windows,
// the active and connected terminal-services sessions on Windows); the
// locked ones are the users logind marks LockedHint on Linux. Elsewhere,
// or without logind, none is known locked, so "auto-accept if locked"
// does not apply, as meshcore.js behaves without a locked-users list.
type System struct{}

// Users implements Presence.
func (System) Users() (active, locked []string, err error) {
	list, err := osuser.Sessions()
	if err != nil {
		return nil, nil, err
	}
	for _, s := range list {
		if s.State == "Active" && s.User != "" {
			name := s.User
			if s.Domain != "" {
				name = s.Domain + `\` + s.User
			}
			active = append(active, name)
		}
	}
	if len(active) == 0 {
		return nil, nil, nil
	}
	locked, _ = osuser.LockedUsers(context.Background()) // unknown means none locked
	return active, locked, nil
}
