package adminapi

// Listing device groups and devices (meshes, nodes) and the rights
// lookups the other handlers share.

import (
	"errors"
	"fmt"
	"sort"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

func (s *Server) groups() (map[string]store.Group, error) {
	gs, err := s.cfg.Store.Groups()
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	out := make(map[string]store.Group, len(gs))
	for _, g := range gs {
		out[g.ID] = g
	}
	return out, nil
}

// visibleGroups are the groups the user has a link to (site admin status
// adds nothing, admin-api.md §3.3), sorted by name.
func (s *Server) visibleGroups(u accounts.User) ([]store.Group, error) {
	all, err := s.groups()
	if err != nil {
		return nil, err
	}
	var out []store.Group
	for id, g := range all {
		if _, ok := u.Links[id]; ok {
			out = append(out, g)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || (out[i].Name == out[j].Name && out[i].ID < out[j].ID)
	})
	return out, nil
}

func (s *Server) groupJSON(g store.Group) map[string]any {
	links := map[string]any{}
	if mem, err := s.cfg.Accounts.Members(g.ID); err == nil {
		for id, m := range mem {
			links[id] = map[string]any{"name": m.Name, "rights": m.Links[g.ID]}
		}
	}
	return map[string]any{"type": "mesh", "_id": g.ID, "name": g.Name, "mtype": g.MType, "desc": g.Desc,
		"domain": "", "links": links, "creation": g.Created.UnixMilli()}
}

func (s *Server) cmdMeshes(c *conn, u accounts.User, r req) {
	gs, err := s.visibleGroups(u)
	if err != nil {
		s.log.Error("meshes", "err", err)
		c.result(r, "Internal error")
		return
	}
	out := make([]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, s.groupJSON(g))
	}
	c.reply(r, map[string]any{"meshes": out})
}

func (s *Server) deviceJSON(d store.Device, withMesh bool) map[string]any {
	agent := map[string]any{"ver": d.AgentVersion, "id": d.AgentID, "caps": d.Caps, "core": d.CoreName, "root": d.Root}
	if d.Tag != "" {
		agent["tag"] = d.Tag
	}
	// server-lite's own: our agent's version string and binary hash, from
	// its answer to the update query (server-lite/updates).
	if d.AgentVersionName != "" {
		agent["version"] = d.AgentVersionName
	}
	if d.AgentHash != "" {
		agent["hash"] = d.AgentHash
	}
	name := d.Name
	if name == "" {
		name = d.RName
	}
	m := map[string]any{"type": "node", "mtype": 2, "_id": d.ID, "name": name, "rname": d.RName, "icon": d.Icon,
		"domain": "", "agent": agent, "host": nil, "ip": d.IP, "osdesc": d.OSDesc}
	if !d.FirstConnect.IsZero() {
		m["firstconnect"] = d.FirstConnect.UnixMilli()
	}
	if len(d.Tags) > 0 {
		m["tags"] = d.Tags
	}
	if d.Desc != "" {
		m["desc"] = d.Desc
	}
	if len(d.Users) > 0 {
		m["users"] = d.Users
	}
	if withMesh {
		m["meshid"] = d.GroupID
	}
	if st, ok := s.online(d.ID); ok {
		m["conn"], m["pwr"], m["agct"] = 1, 1, st.ConnectTime.UnixMilli()
	}
	return m
}

func (s *Server) online(nodeID string) (AgentState, bool) {
	if s.cfg.Agents == nil {
		return AgentState{}, false
	}
	return s.cfg.Agents.Connected(nodeID)
}

// deviceRights returns the user's effective rights on a device and the
// device; an unknown device yields zero, invisible rights.
func (s *Server) deviceRights(u accounts.User, nodeID string) (accounts.Rights, store.Device, error) {
	d, err := s.cfg.Store.Device(nodeID)
	if errors.Is(err, store.ErrNotFound) {
		return accounts.Rights{}, store.Device{}, nil
	}
	if err != nil {
		return accounts.Rights{}, store.Device{}, fmt.Errorf("look up device: %w", err)
	}
	return accounts.EffectiveRights(u, d.GroupID, d.ID), d, nil
}

// findGroup resolves meshid (short or full) or meshname among the groups
// the user can see; errText is the reply result on failure.
func (s *Server) findGroup(u accounts.User, r req, errText string) (store.Group, string) {
	gs, err := s.visibleGroups(u)
	if err != nil {
		return store.Group{}, "Internal error"
	}
	if id, ok := r.str("meshid"); ok {
		id = normID("mesh", id)
		for _, g := range gs {
			if g.ID == id {
				return g, ""
			}
		}
		return store.Group{}, errText
	}
	if name, ok := r.str("meshname"); ok {
		var found []store.Group
		for _, g := range gs {
			if g.Name == name && g.MType == store.MeshTypeAgent {
				found = append(found, g)
			}
		}
		switch len(found) {
		case 0:
			return store.Group{}, errText
		case 1:
			return found[0], ""
		}
		return store.Group{}, "Duplicate device groups found"
	}
	return store.Group{}, errText
}

func (s *Server) cmdNodes(c *conn, u accounts.User, r req) {
	var only string // one group id, when asked
	if _, ok1 := r["meshid"]; ok1 {
		g, e := s.findGroup(u, r, "Invalid group id")
		if e != "" {
			c.result(r, e)
			return
		}
		only = g.ID
	} else if _, ok2 := r["meshname"]; ok2 {
		g, e := s.findGroup(u, r, "Invalid group id")
		if e != "" {
			c.result(r, e)
			return
		}
		only = g.ID
	}
	var oneNode string
	if id, ok := r.str("id"); ok {
		oneNode = normID("node", id)
	}
	ds, err := s.cfg.Store.Devices()
	if err != nil {
		s.log.Error("nodes", "err", err)
		c.result(r, "Internal error")
		return
	}
	groups, _ := s.groups()
	sort.Slice(ds, func(i, j int) bool {
		return ds[i].Name < ds[j].Name || (ds[i].Name == ds[j].Name && ds[i].ID < ds[j].ID)
	})
	nodes := map[string][]any{}
	for _, d := range ds {
		if only != "" && d.GroupID != only || oneNode != "" && d.ID != oneNode {
			continue
		}
		if _, ok := groups[d.GroupID]; !ok {
			continue // group deleted
		}
		if !accounts.EffectiveRights(u, d.GroupID, d.ID).Visible {
			continue
		}
		nodes[d.GroupID] = append(nodes[d.GroupID], s.deviceJSON(d, false))
	}
	c.reply(r, map[string]any{"nodes": nodes})
}
