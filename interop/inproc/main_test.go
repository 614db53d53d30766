package inproc

import (
	"os"
	"testing"

	"github.com/meshgo/meshagent/internal/agentbin"
)

// TestMain: the terminal tests here run the agent's shell in this process;
// it gets an empty home, not this machine's ~/.bashrc (agentbin.Env).
func TestMain(m *testing.M) { os.Exit(agentbin.RunWithEmptyHome(m)) }
