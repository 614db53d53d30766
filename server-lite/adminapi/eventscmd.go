package adminapi

// The events query (listevents).

import (
	"strings"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

func (s *Server) cmdEvents(c *conn, u accounts.User, r req) {
	limit := 10000
	if l, ok := r.num("limit"); ok && l > 0 && l < 1_000_000 {
		limit = int(l)
	}
	filter := r.s("filter")
	groupOf := s.groupOf()
	reply := map[string]any{}
	f := store.EventFilter{}
	forDevice := false
	if id, ok := r.str("nodeid"); ok && id != "" {
		n := normID("node", id)
		reply["nodeid"] = n
		forDevice = true
		if !accounts.EffectiveRights(u, groupOf(n), n).Visible {
			reply["events"] = []any{}
			c.reply(r, reply)
			return
		}
		f.NodeID = n
	}
	// meshctrl sends "user"; MeshCentral reads only "userid" (§6.2 #13).
	byUser := r.s("userid")
	if byUser == "" {
		byUser = r.s("user")
	}
	if byUser != "" && u.HasSite(accounts.SiteManageUsers) {
		if !strings.HasPrefix(byUser, "user/") {
			byUser = accounts.UserID(byUser)
		}
	} else {
		byUser = ""
	}
	if filter == "" && byUser == "" && (forDevice || u.HasSite(accounts.SiteAllEvents)) {
		f.Limit = limit // nothing is filtered out below: let the store stop early
	}
	evs, err := s.cfg.Store.Events(f)
	if err != nil {
		s.log.Error("events", "err", err)
		c.result(r, "Internal error")
		return
	}
	out := []any{}
	for i := len(evs) - 1; i >= 0 && len(out) < limit; i-- { // newest first
		e := evs[i]
		if filter != "" && e.Action != filter {
			continue
		}
		if byUser != "" && e.Who != byUser {
			continue
		}
		if !forDevice && !eventVisible(u, e, groupOf) {
			continue
		}
		out = append(out, eventJSON(e, forDevice))
	}
	reply["events"] = out
	c.reply(r, reply)
}
