package adminapi

// server-lite's own actions for our agent's self-update (server-lite/updates),
// used by its CLI and web page:
//
//	{action:"agentupdate", nodeids:[...] | meshid:G | all:true, percent:N, trial:S, dir:D}
//	{action:"agentupdates"}                       the rollouts of this run
//	{action:"agentupdatecancel", id:R}

import (
	"fmt"
	"sort"
	"strings"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// UpdateRequest starts a rollout (see server-lite/updates.Request).
type UpdateRequest struct {
	NodeIDs []string
	Percent int
	Trial   int
	Dir     string
	Who     string
}

// AgentUpdater is optionally implemented by Agents to run agent
// self-update rollouts.
type AgentUpdater interface {
	StartUpdate(r UpdateRequest) (any, error)
	UpdateRollouts() any
	CancelUpdate(id, who string) error
}

// cmdAgentUpdate starts a rollout. It needs full rights on every device
// it names (a group or "all" take the devices the user has full rights
// on); naming a binaries directory on the server needs a site
// administrator, as it reads the server's file system.
func (s *Server) cmdAgentUpdate(c *conn, u accounts.User, r req) {
	up, ok := s.cfg.Agents.(AgentUpdater)
	if !ok {
		c.result(r, "Not supported")
		return
	}
	dir := r.s("dir")
	if dir != "" && !u.IsSiteAdmin() {
		c.result(r, "Access denied: naming a binaries directory needs a site administrator")
		return
	}
	percent, _ := r.num("percent")
	trial, _ := r.num("trial")
	if percent < 0 || percent > 100 || trial < 0 || trial > 3600 {
		c.result(r, "Invalid percent or trial")
		return
	}
	var nodes []string
	switch {
	case r.boolean("all") || r.s("meshid") != "":
		group := ""
		if g := r.s("meshid"); g != "" {
			group = normID("mesh", g)
		}
		ds, err := s.cfg.Store.Devices()
		if err != nil {
			c.result(r, "Internal error")
			return
		}
		for _, d := range ds {
			if group != "" && d.GroupID != group {
				continue
			}
			if accounts.EffectiveRights(u, d.GroupID, d.ID).Bits == accounts.FullRights {
				nodes = append(nodes, d.ID)
			}
		}
		sort.Strings(nodes)
	default:
		l, ok := nodeTargets(r)
		if !ok {
			c.result(r, "Invalid nodeids")
			return
		}
		for _, n := range l {
			rights, _, err := s.deviceRights(u, n)
			if err != nil || !rights.Visible || rights.Bits != accounts.FullRights {
				c.result(r, "Access denied: "+n)
				return
			}
		}
		nodes = l
	}
	if len(nodes) == 0 {
		c.result(r, "No devices")
		return
	}
	ro, err := up.StartUpdate(UpdateRequest{NodeIDs: nodes, Percent: int(percent), Trial: int(trial), Dir: dir, Who: u.ID})
	if err != nil {
		c.result(r, strings.TrimPrefix(err.Error(), "updates: "))
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "agentupdate", from: c.ip, msg: fmt.Sprintf("Agent update started for %d devices (%d%% per stage)", len(nodes), percent)})
	c.reply(r, map[string]any{"result": "ok", "rollout": ro})
}

// cmdAgentUpdates lists rollouts, for site administrators (a rollout
// names devices of every group it covers).
func (s *Server) cmdAgentUpdates(c *conn, u accounts.User, r req) {
	up, ok := s.cfg.Agents.(AgentUpdater)
	if !ok {
		c.result(r, "Not supported")
		return
	}
	if !u.IsSiteAdmin() {
		c.result(r, "Access denied")
		return
	}
	c.reply(r, map[string]any{"rollouts": up.UpdateRollouts()})
}

func (s *Server) cmdAgentUpdateCancel(c *conn, u accounts.User, r req) {
	up, ok := s.cfg.Agents.(AgentUpdater)
	if !ok {
		c.result(r, "Not supported")
		return
	}
	if !u.IsSiteAdmin() {
		c.result(r, "Access denied")
		return
	}
	if err := up.CancelUpdate(r.s("id"), u.ID); err != nil {
		c.result(r, strings.TrimPrefix(err.Error(), "updates: "))
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "agentupdatecancel", from: c.ip, msg: "Agent update " + r.s("id") + " cancelled"})
	c.result(r, "ok")
}
