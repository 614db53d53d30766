package script

import (
	"errors"
	"os/exec"
)

var errRunAsUnsupported = errors.New("running as the logged-in user is not supported on windows")

// runUser is never produced on Windows: commands run as the agent.
type runUser struct{ name string }

func lookupRunUser(string) (*runUser, error) { return nil, errRunAsUnsupported }

func applyRunUser(*exec.Cmd, *runUser) {}

func platformConsoleUser() (string, bool, error) { return "", true, errRunAsUnsupported }
