//go:build !windows

package osuser

import (
	"errors"
	"fmt"
	"strconv"
)

// Sessions lists the login sessions a desktop can be opened in. Outside
// Windows that is the console user's session (the package rule), keyed by
// uid as the C agent's Linux answer is (it too lists only logind's active
// session); none when nobody is at the console. The C agent also offers
// virtual Xvfb sessions it could spawn; this agent spawns none, so lists
// none.
func Sessions() ([]Session, error) {
	u, err := Console()
	if errors.Is(err, ErrNoConsoleUser) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console user: %w", err)
	}
	uid, err := strconv.ParseUint(u.UID, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("console user %s: uid %q: %w", u.Name, u.UID, err)
	}
	return []Session{{ID: uint32(uid), Station: "Console", State: "Active", User: u.Name, UID: u.UID}}, nil
}
