//go:build unix

package terminal

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the agent's own shells (which inherit the test's
// environment) an empty home, so the tests measure the terminal and not
// this machine's ~/.bashrc: a root bashrc with pyenv's prompt hook took
// seconds per prompt under load here and timed the tests out. User shells
// get the console user's own home from osuser and are unaffected.
func TestMain(m *testing.M) {
	home, err := os.MkdirTemp("", "terminal-home-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("HOME", home)
	os.Unsetenv("BASH_ENV")
	os.Unsetenv("ENV")
	os.Unsetenv("PROMPT_COMMAND")
	code := m.Run()
	os.RemoveAll(home)
	os.Exit(code)
}
