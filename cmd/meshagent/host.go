package main

import (
	"log/slog"

	"github.com/meshgo/meshagent/agent/core"
)

// scriptHost ties the script runtime to the agent. bind gives the runtime
// the agent's send path once the agent exists.
type scriptHost struct {
	host        core.ScriptHost
	defaultCore []byte
	bind        func(*core.Agent)
	close       func()
}

func newScriptHost(log *slog.Logger, settings *core.MSH, id *core.Identity, dataDir string) (*scriptHost, error) {
	return &scriptHost{bind: func(*core.Agent) {}, close: func() {}}, nil
}
