package adminapi

// Requests routed to agents: relay tunnels, messages, toasts, power,
// wake-on-LAN, and server-lite's own pushscript and devicecores.

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/relay"
)

// cmdAuthCookie issues the relay credential meshctrl asks for before a
// shell, upload or download: a single-use relay token in [A-Za-z0-9_-], so
// never a "$" that meshctrl's string replace could corrupt (admin-api.md
// §6.3). It grants nothing by itself: the relay pairs it only with an agent
// end of the same user, and the agent end's credential is issued in cmdMsg
// after the tunnel's rights checks, bound to the device and pairing id.
func (s *Server) cmdAuthCookie(c *conn, u accounts.User, r req) {
	ck := s.cfg.RelayTokens.Issue(relay.Grant{Side: relay.SideUser, UserID: u.ID, Credential: c.tokenUser, Expires: tokenExpiry(u, c.tokenUser)}, userCookieLife)
	// The agent side is re-issued per tunnel; this one only fills the slot.
	c.reply(r, map[string]any{"cookie": ck, "rcookie": randomHex(16)})
}

// cmdMsg routes a message to an agent: tunnels (shell, files), message
// boxes, open-URL. One reply, after the rights check (§6.2 #6).
func (s *Server) cmdMsg(c *conn, u accounts.User, r req) {
	n := normID("node", r.s("nodeid"))
	if n == "" || len(n) > 1024 {
		c.result(r, "Unable to route")
		return
	}
	rights, _, err := s.deviceRights(u, n)
	if err != nil || !rights.Visible || !rights.Has(session.RightRemoteControl) && !rights.Has(session.RightRemoteViewOnly) {
		c.result(r, "Unable to route")
		return
	}
	typ := r.s("type")
	// MeshCentral routes any type on 8 or 256 and leaves the rest to the
	// agent. Here the console (arbitrary agent commands) also needs
	// AgentConsole, and types outside the tunnel/message-box/open-URL
	// subset need RemoteControl rather than view-only.
	switch typ {
	case "tunnel", "messagebox", "openUrl":
	case "console":
		if !session.AllowConsole(rights.Bits) && rights.Bits != accounts.FullRights {
			c.result(r, "Unable to route")
			return
		}
	default:
		if !rights.Has(session.RightRemoteControl) {
			c.result(r, "Unable to route")
			return
		}
	}
	out := map[string]any{}
	for k, v := range r {
		if k != "nodeid" && k != "responseid" && k != "tag" {
			out[k] = v
		}
	}
	target := n
	if typ == "tunnel" {
		value, proto, pairID, ok := rewriteTunnelValue(r.s("value"), n)
		if !ok {
			c.result(r, "Unable to route")
			return
		}
		if !tunnelAllowed(proto, rights.Bits) {
			c.result(r, "Unable to route")
			return
		}
		// The agent end gets a fresh single-use credential bound to this
		// device, pairing id and user, issued only after the rights checks.
		rauth := s.cfg.RelayTokens.Issue(relay.Grant{Side: relay.SideAgent, UserID: u.ID, ID: pairID, NodeID: n,
			Credential: c.tokenUser, Expires: tokenExpiry(u, c.tokenUser)}, relayCookieLife)
		out["value"] = value + "&rauth=" + rauth
		if h := s.tlsHash(); h != "" {
			out["servertlshash"] = strings.ToLower(h)
		}
		out["soptions"] = map[string]any{}
		out["consent"] = 0
	}
	out["userid"], out["username"], out["realname"] = u.ID, u.Name, u.RealName
	out["sessionid"], out["rights"], out["remoteaddr"] = c.id, rights.Bits, c.ip
	if _, on := s.online(target); !on || s.cfg.Agents.SendJSON(target, out) != nil {
		c.result(r, "Unable to route")
		return
	}
	s.audit(auditEntry{userID: u.ID, action: "msg", target: n, from: c.ip, msg: "Message to agent: " + typ})
	c.result(r, "OK")
}

// tunnelAllowed checks rights for the relay protocol the agent will run
// (sessions.md §1.7): terminals, desktop and files by their own rules,
// anything else needs full remote control.
func tunnelAllowed(proto int, rights uint32) bool {
	if rights == accounts.FullRights {
		return true
	}
	switch proto {
	case session.ProtoTerminal, session.ProtoPowerShell, session.ProtoUserShell, session.ProtoUserPS:
		return session.AllowTerminal(rights)
	case session.ProtoDesktop:
		return session.AllowDesktopView(rights)
	case 4, session.ProtoFiles, session.ProtoFileTransfer:
		return session.AllowFiles(rights)
	}
	return rights&session.RightRemoteControl != 0 && rights&session.RightRemoteViewOnly == 0
}

// rewriteTunnelValue checks a tunnel "value" URL and rebuilds it: the
// nodeid rewritten to the canonical id, the client's rauth dropped (the
// caller appends a new one), every other parameter decoded and re-encoded
// once. Its nodeid must name the same device as the command. A parameter
// given twice (p=5&p=1, or p and %70) is refused rather than resolved, so
// the protocol whose rights the caller checks is the only one the agent
// can read, whichever occurrence it would pick (issue 20, finding 7).
func rewriteTunnelValue(v, nodeID string) (value string, proto int, pairID string, ok bool) {
	const prefix = "*/meshrelay.ashx?"
	if !strings.HasPrefix(v, prefix) {
		return "", 0, "", false
	}
	q, err := url.ParseQuery(v[len(prefix):])
	if err != nil {
		return "", 0, "", false
	}
	keys := make([]string, 0, len(q))
	for k, vals := range q {
		if len(vals) != 1 || k == "" {
			return "", 0, "", false
		}
		keys = append(keys, k)
	}
	if normID("node", q.Get("nodeid")) != nodeID {
		return "", 0, "", false
	}
	pairID = q.Get("id")
	if pairID == "" {
		return "", 0, "", false
	}
	proto = 0
	if ps, present := q["p"]; present {
		n, err := strconv.Atoi(ps[0])
		if err != nil || n < 0 || n > 1000 {
			return "", 0, "", false
		}
		proto = n
	}
	sort.Strings(keys)
	out := []string{"p=" + strconv.Itoa(proto), "nodeid=" + nodeID, "id=" + url.QueryEscape(pairID)}
	for _, k := range keys {
		switch k {
		case "p", "nodeid", "id", "rauth", "auth":
			continue
		}
		out = append(out, url.QueryEscape(k)+"="+url.QueryEscape(q.Get(k)))
	}
	return prefix + strings.Join(out, "&"), proto, pairID, true
}

func (s *Server) cmdToast(c *conn, u accounts.User, r req) {
	nodes, ok := nodeTargets(r)
	if !ok {
		c.result(r, "Invalid nodeids")
		return
	}
	title, msg := r.s("title"), r.s("msg")
	result := "ok"
	for _, n := range nodes {
		rights, _, err := s.deviceRights(u, n)
		if err != nil || !rights.Visible || !rights.Has(session.RightChatNotify) {
			result = "Access Denied"
			continue
		}
		if _, on := s.online(n); !on {
			result = "Agent not connected"
			continue
		}
		s.cfg.Agents.SendJSON(n, map[string]any{"action": "toast", "title": title, "msg": msg, "sessionid": c.id, "username": u.Name, "userid": u.ID})
		s.audit(auditEntry{userID: u.ID, action: "toast", target: n, from: c.ip, msg: "Toast: " + truncate(msg, 200)})
	}
	c.result(r, result)
}

func (s *Server) cmdPower(c *conn, u accounts.User, r req) {
	nodes, ok := nodeTargets(r)
	at, ok2 := r.num("actiontype")
	if !ok || !ok2 || at < 2 || at > 4 { // only off, reset, sleep (§6.2 #7)
		c.result(r, "Invalid action type")
		return
	}
	result := "ok"
	for _, n := range nodes {
		rights, _, err := s.deviceRights(u, n)
		if err != nil || !rights.Visible || !rights.Has(session.RightResetOff) {
			result = "Access Denied"
			continue
		}
		if _, on := s.online(n); !on {
			result = "Agent not connected"
			continue
		}
		s.cfg.Agents.SendJSON(n, map[string]any{"action": "poweraction", "actiontype": at, "userid": u.ID, "username": u.Name, "remoteaddr": c.ip})
		s.audit(auditEntry{userID: u.ID, action: "poweraction", target: n, from: c.ip, msg: fmt.Sprintf("Power action %d", at)})
	}
	c.result(r, result)
}

// cmdPushScript is server-lite's own action (used by its CLI): install a
// JavaScript core on devices. It needs full rights on each device.
func (s *Server) cmdPushScript(c *conn, u accounts.User, r req) {
	p, ok := s.cfg.Agents.(ScriptPusher)
	if !ok {
		c.result(r, "Not supported")
		return
	}
	nodes, ok := nodeTargets(r)
	script, ok2 := r.str("script")
	if !ok || !ok2 || script == "" {
		c.result(r, "Invalid request")
		return
	}
	results := map[string]string{}
	for _, n := range nodes {
		rights, _, err := s.deviceRights(u, n)
		switch {
		case err != nil || !rights.Visible || rights.Bits != accounts.FullRights:
			results[n] = "Access denied"
		default:
			if _, on := s.online(n); !on {
				results[n] = "Agent not connected"
			} else if err := p.PushScript(n, []byte(script), u.ID); err != nil {
				results[n] = "Error: " + err.Error()
			} else {
				results[n] = "ok"
				s.audit(auditEntry{userID: u.ID, action: "pushscript", target: n, from: c.ip, msg: fmt.Sprintf("Pushed script (%d bytes)", len(script))})
			}
		}
	}
	c.reply(r, map[string]any{"results": results})
}

// cmdDeviceCores is server-lite's own action (used by its CLI): which core
// each visible device runs, from the live registry and the stored record.
func (s *Server) cmdDeviceCores(c *conn, u accounts.User, r req) {
	ds, err := s.cfg.Store.Devices()
	if err != nil {
		c.result(r, "Internal error")
		return
	}
	groups, _ := s.groups()
	sort.Slice(ds, func(i, j int) bool {
		return ds[i].Name < ds[j].Name || (ds[i].Name == ds[j].Name && ds[i].ID < ds[j].ID)
	})
	out := []any{}
	for _, d := range ds {
		g, ok := groups[d.GroupID]
		if !ok || !accounts.EffectiveRights(u, d.GroupID, d.ID).Visible {
			continue
		}
		m := map[string]any{"_id": d.ID, "name": d.Name, "meshid": d.GroupID, "groupname": g.Name, "online": false,
			"core": d.CoreName, "coreHash": d.CoreHash, "pinnedCoreHash": d.PinnedCoreHash}
		if st, on := s.online(d.ID); on {
			m["online"] = true
			if st.CoreName != "" {
				m["core"] = st.CoreName
			}
			if st.CoreHash != "" {
				m["coreHash"] = st.CoreHash
			}
			m["flavor"] = st.Flavor
		}
		out = append(out, m)
	}
	c.reply(r, map[string]any{"devices": out})
}

// cmdWake asks online agents in the same groups to send Wake-on-LAN packets
// for the devices' MAC addresses (from their stored netinfo).
func (s *Server) cmdWake(c *conn, u accounts.User, r req) {
	nodes, ok := nodeTargets(r)
	if !ok {
		c.result(r, "Invalid nodeid")
		return
	}
	results := make([]string, 0, len(nodes))
	for _, n := range nodes {
		rights, d, err := s.deviceRights(u, n)
		if err != nil || !rights.Visible || !rights.Has(session.RightWakeDevice) {
			results = append(results, "Invalid nodeid")
			continue
		}
		if len(d.NetInfo) == 0 {
			results = append(results, "No network information for this device")
			continue
		}
		macs := macsOf(d.NetInfo)
		if len(macs) == 0 {
			results = append(results, "No known MAC addresses for this device")
			continue
		}
		used := 0
		if ds, err := s.cfg.Store.Devices(); err == nil {
			for _, peer := range ds {
				if peer.GroupID != d.GroupID || peer.ID == n {
					continue
				}
				if _, on := s.online(peer.ID); on && s.cfg.Agents.SendJSON(peer.ID, map[string]any{"action": "wakeonlan", "macs": macs}) == nil {
					used++
				}
			}
		}
		s.audit(auditEntry{userID: u.ID, action: "wakedevices", target: n, from: c.ip, msg: fmt.Sprintf("Wake-on-LAN through %d device(s)", used)})
		results = append(results, fmt.Sprintf("Used %d device(s) to send wake packets", used))
	}
	if len(results) == 1 {
		c.result(r, results[0])
		return
	}
	c.result(r, "ok")
}

// macsOf collects the MAC addresses of a stored netinfo message
// ({netif2: {name: [{mac, …}, …]}}), without duplicates or all-zero ones.
func macsOf(netinfo []byte) []string {
	var ni struct {
		NetIf2 map[string][]struct {
			MAC string `json:"mac"`
		} `json:"netif2"`
	}
	if json.Unmarshal(netinfo, &ni) != nil {
		return nil
	}
	var out []string
	for _, addrs := range ni.NetIf2 {
		for _, a := range addrs {
			if a.MAC != "" && a.MAC != "00:00:00:00:00:00" && !slices.Contains(out, a.MAC) {
				out = append(out, a.MAC)
			}
		}
	}
	sort.Strings(out)
	return out
}
