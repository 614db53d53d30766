package agentconn

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/store"
)

func (c *conn) handshake() error {
	web := c.s.cfg.Certs.WebCertHash
	accept := c.s.cfg.AcceptWebHash
	if accept == nil {
		accept = func(h [handshake.HashLen]byte) bool { return subtle.ConstantTimeCompare(h[:], web[:]) == 1 }
	}
	hs, err := handshake.NewServer(handshake.ServerConfig{
		Key:        c.s.cfg.Certs.AgentKey,
		CertDER:    c.s.cfg.Certs.AgentCert,
		AcceptHash: accept,
	})
	if err != nil {
		return err
	}
	c.ws.SetReadLimit(c.s.cfg.PreAuthLimit)
	c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.HandshakeTimeout))
	for !hs.Authenticated() {
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			return errors.New(readReason(err))
		}
		out, err := hs.Handle(msg)
		if err != nil {
			return err
		}
		for _, m := range out {
			if err := c.write(m); err != nil {
				return err
			}
		}
	}
	c.res = hs.Result()
	c.nodeID = handshake.NodeIDPrefix + handshake.EncodeID(c.res.NodeID[:])
	return nil
}

// startSession registers the device, makes this the node's live
// connection, sends 4 and starts the core check (control.md §4.13, §5.2).
func (c *conn) startSession() error {
	st := c.s.cfg.Store
	info := c.res.Info
	groupID := handshake.MeshIDPrefix + info.MeshKeyID()
	existing, err := st.Device(c.nodeID)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if found && existing.GroupID != "" {
		groupID = existing.GroupID // the server's record wins (§4.13)
	}
	g, err := st.Group(groupID)
	if err != nil || g.MType != store.MeshTypeAgent {
		return fmt.Errorf("unknown device group %s", groupID)
	}
	now := time.Now().UTC()
	ip, _, _ := net.SplitHostPort(c.remote)
	name := existing.Name
	if !found {
		name = c.res.AgentName
		if name == "" {
			name = info.Hostname
		}
		name = clip(name, MaxNameLen)
	}
	// Queued, not awaited: in a reconnect storm thousands of these share one
	// commit instead of paying an fsync each before message 4.
	st.UpdateDeviceAsync(c.nodeID, func(d *store.Device, found bool) error {
		if !found || d.GroupID == "" {
			d.GroupID = groupID
			d.Name = name
			d.Icon = info.PlatformType
			if d.Icon < 1 || d.Icon > 8 {
				d.Icon = 1
			}
			d.FirstConnect = now
		}
		d.RName = clip(info.Hostname, MaxNameLen)
		d.AgentID, d.AgentVersion = info.AgentID, info.AgentVersion
		d.Caps = info.Capabilities
		d.CommitDate, d.HostInfo = c.res.CommitDate, c.res.HostInfo
		d.IP = ip
		d.LastConnect, d.LastSeen = now, now
		return nil
	}, store.Event{Kind: store.EvConnect, Who: c.nodeID, NodeID: c.nodeID, From: c.remote,
		Msg: fmt.Sprintf("agent id %d caps %#x skip=%v", info.AgentID, info.Capabilities, c.res.Skip)})
	c.groupID = groupID
	c.mu.Lock()
	c.name, c.caps, c.pinned, c.savedCoreHash = name, info.Capabilities, existing.PinnedCoreHash, existing.CoreHash
	c.sysInfoHash = existing.SysInfoHash
	c.mu.Unlock()

	if old := c.s.register(c); old != nil {
		c.s.log.Info("duplicate agent: closing the older connection", "node", c.nodeID, "old", old.remote, "new", c.remote)
		old.close(reasonReplaced)
	}
	// A new device is news for the console; reconnects are in the event
	// log (a formatted line costs ~40 µs, a fifth of a reconnect's CPU
	// beyond TLS and the signature check).
	level := slog.LevelDebug
	if !found {
		level = slog.LevelInfo
	}
	c.s.log.Log(context.Background(), level, "agent connected", "node", c.nodeID, "remote", c.remote, "name", name, "agentId", info.AgentID, "caps", fmt.Sprintf("%#x", info.Capabilities), "skip", c.res.Skip, "new", !found)
	err = c.write(handshake.EncodeConfirm())
	// Published after message 4: a subscriber that answers a connect at
	// once (server-lite/updates sends its version query) must not reach
	// the agent before its handshake ends, which agents refuse. Published
	// even when the write failed, so the disconnect that follows has its
	// connect.
	c.s.publish(Event{Kind: Connected, NodeID: c.nodeID, Agent: c.snapshot()})
	if err != nil {
		return err
	}
	// We never update agent binaries, so unlike MeshCentral we do not ask
	// for the agent hash (12). Agents that run JavaScript get a core check.
	if info.Capabilities&handshake.CapJavaScript != 0 {
		return c.write(handshake.EncodeRequest(handshake.CmdCoreModuleHash, 0, nil))
	}
	return c.coreStable()
}

// coreStable starts the JSON conversation (control.md §6.2): ask for
// sysinfo and send serverInfo, as MeshCentral does on every connection;
// cores use serverInfo to announce themselves again after a reconnect.
func (c *conn) coreStable() error {
	c.mu.Lock()
	h := c.sysInfoHash
	c.mu.Unlock()
	req := []byte(`{"action":"sysinfo"}`)
	if h != "" {
		// With the stored hash an agent whose system information has not
		// changed does not send it again (control.md §6.2).
		req, _ = json.Marshal(map[string]string{"action": "sysinfo", "hash": h})
	}
	if err := c.write(req); err != nil {
		return err
	}
	return c.write([]byte(`{"action":"serverInfo"}`))
}
