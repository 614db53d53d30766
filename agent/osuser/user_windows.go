package osuser

import (
	"errors"
	"fmt"
	"os/exec"
)

// errUnsupported is what every entry point returns on Windows, where
// starting processes as another (or the logged-in) user needs session
// token plumbing the agent does not have yet.
var errUnsupported = fmt.Errorf("running as the logged-in user is not supported on windows: %w", errors.ErrUnsupported)

// Lookup is not supported on Windows.
func Lookup(string) (*User, error) { return nil, errUnsupported }

// CanRun is not supported on Windows.
func (u *User) CanRun() error { return errUnsupported }

// Env is empty on Windows: no User is ever produced there.
func (u *User) Env() []string { return nil }

// Apply is not supported on Windows.
func (u *User) Apply(*exec.Cmd, ...string) error { return errUnsupported }

// Console is not supported on Windows.
func (d *Detector) Console() (*User, error) { return nil, errUnsupported }

// SessionEnv is not supported on Windows.
func SessionEnv(*User) ([]string, error) { return nil, errUnsupported }
