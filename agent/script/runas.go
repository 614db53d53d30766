package script

import (
	"errors"
	"fmt"

	"github.com/meshgo/meshagent/agent/osuser"
)

// lookupRunUser resolves proc.shell's user option (a name or a decimal
// uid) to an account the agent can start the script as. It fails, rather
// than fall back to the agent's own identity, when the account does not
// exist or the agent cannot switch to it (not root; Windows).
func lookupRunUser(spec string) (*osuser.User, error) {
	u, err := osuser.Lookup(spec)
	if err == nil {
		err = u.CanRun()
	}
	if err != nil {
		return nil, fmt.Errorf("run as user: %w", err)
	}
	return u, nil
}

// consoleUserName is Config.ConsoleUser's default: the console user by
// osuser's rule (the same one terminals use), "" when nobody is logged
// in. It fails where commands cannot run as another user (Windows).
func consoleUserName() (string, error) {
	u, err := osuser.Console()
	if errors.Is(err, osuser.ErrNoConsoleUser) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return u.Name, nil
}
