package main

import (
	"log/slog"

	"github.com/meshgo/meshagent/agent/power"
)

// powerAction is the script host's PowerAction: the server's power off,
// reset and sleep (control.md 6.7), carried out by agent/power.
func powerAction(log *slog.Logger) func(int) error {
	c := &power.Controller{Logger: log.With("component", "power")}
	return func(a int) error {
		_, err := c.Do(power.Action(a), false)
		return err
	}
}
