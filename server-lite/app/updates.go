package app

import (
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/updates"
)

// wireUpdates builds the agent self-update manager. Its default builds
// directory is the one /meshagents serves our agent from (--agents):
// build/release.sh's output, where an administrator drops a new release.
// It signs offers with the agent-server key, the one agents pin.
func (a *App) wireUpdates() {
	a.Updates = updates.New(updates.Config{Agents: a.Agents, Store: a.Store, Certs: a.Certs, Dir: a.cfg.Downloads.Dir, Logger: a.log})
}

// StartUpdate, UpdateRollouts and CancelUpdate make agentRegistry an
// adminapi.AgentUpdater.
func (g agentRegistry) StartUpdate(r adminapi.UpdateRequest) (any, error) {
	return g.u.Start(updates.Request{NodeIDs: r.NodeIDs, Percent: r.Percent, Trial: r.Trial, Dir: r.Dir, Who: r.Who})
}

func (g agentRegistry) UpdateRollouts() any { return g.u.Rollouts() }

func (g agentRegistry) CancelUpdate(id, who string) error { return g.u.Cancel(id, who) }
