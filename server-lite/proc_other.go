//go:build !unix

package main

import (
	"log/slog"
	"os/exec"

	"github.com/meshgo/meshagent/server-lite/app"
)

func ownProcessGroup(cmd *exec.Cmd) {}

// stopLocalAgent kills the local agent: without process groups and
// signals there is nothing gentler to send.
func stopLocalAgent(cmd *exec.Cmd) {
	cmd.Process.Kill()
	cmd.Wait()
}

func memoryReportOnSignal(*slog.Logger, string) {}

// reloadOnSignal does nothing: there is no SIGHUP here.
func reloadOnSignal(*slog.Logger, *app.App) {}
