//go:build unix

package terminal

import (
	"os"
	"testing"

	"github.com/meshgo/meshagent/internal/agentbin"
)

// TestMain gives the agent's own shells (which inherit the test's
// environment) an empty home, so the tests measure the terminal and not
// this machine's ~/.bashrc (agentbin.Env says why). User shells get the
// console user's own home from osuser and are unaffected.
func TestMain(m *testing.M) { os.Exit(agentbin.RunWithEmptyHome(m)) }
