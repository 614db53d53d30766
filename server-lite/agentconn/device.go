package agentconn

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/store"
)

// handle processes one message after authentication.
func (c *conn) handle(msg []byte) error {
	if handshake.IsJSON(msg) {
		return c.handleJSON(msg)
	}
	cmd, err := handshake.Command(msg)
	if err != nil {
		return nil // MeshCentral ignores messages shorter than 2 bytes
	}
	switch cmd {
	case handshake.CmdAgentTag:
		tag := strings.TrimRight(string(msg[2:]), "\x00")
		if len(tag) > 4096 {
			tag = tag[:4096]
		}
		c.s.cfg.Store.UpdateDeviceAsync(c.nodeID, func(d *store.Device, found bool) error {
			if !found {
				return store.ErrNoChange
			}
			d.Tag = strings.SplitN(tag, "\n", 2)[0]
			return nil
		})
		return nil
	case handshake.CmdCoreModuleHash:
		_, _, payload, err := handshake.DecodeRequest(msg)
		if err != nil {
			return err
		}
		return c.coreHashReply(payload)
	case handshake.CmdAgentUpdateBlock:
		// Our agent's self-update block request; the C agent's acks of
		// MeshCentral's native update never come, as that is never sent.
		if f := c.s.cfg.UpdateBlock; f != nil {
			if reply := f(c.nodeID, msg); reply != nil {
				return c.write(reply)
			}
		}
		return nil
	case handshake.CmdAgentHash:
		return nil // MeshCentral's native update is never offered
	default:
		c.s.log.Debug("ignored command", "node", c.nodeID, "cmd", cmd, "len", len(msg))
		return nil
	}
}

// coreHashReply decides, from the hash the agent reports, whether to push
// the core (10) or confirm it (16) (control.md §5.2).
func (c *conn) coreHashReply(payload []byte) error {
	var h string
	switch len(payload) {
	case 0:
	case handshake.HashLen:
		h = hex.EncodeToString(payload)
	default:
		return fmt.Errorf("core hash reply of %d bytes", len(payload))
	}
	c.mu.Lock()
	changed := c.savedCoreHash != h
	c.coreHash, c.savedCoreHash = h, h
	pinned := c.pinned
	pushes := c.pushes
	c.mu.Unlock()
	if changed {
		// Only when it differs from the record: a reconnect storm should
		// cost one store write per agent, not two.
		c.s.cfg.Store.UpdateDeviceAsync(c.nodeID, func(d *store.Device, found bool) error {
			if !found {
				return store.ErrNoChange
			}
			d.CoreHash = h
			return nil
		})
	}

	c.s.log.Debug("agent core hash", "node", c.nodeID, "hash", shortHash(h))
	current := h == zeroHashHex || (h != "" && (h == pinned || (pinned == "" && bytes.Equal(payload, c.s.coreHash[:]))))
	if current {
		if err := c.write(handshake.EncodeRequest(handshake.CmdCoreOK, 0, nil)); err != nil {
			return err
		}
		return c.coreStable()
	}
	if pushes >= maxCorePushes {
		c.s.log.Warn("agent keeps reporting another core hash; giving up pushing", "node", c.nodeID, "hash", h)
		return nil
	}
	c.mu.Lock()
	c.pushes++
	c.mu.Unlock()
	c.s.log.Info("pushing default core", "node", c.nodeID, "bytes", len(c.s.corePayload), "agentHash", shortHash(h))
	c.s.cfg.Store.AppendEventAsync(store.Event{Kind: store.EvCorePush, Who: "server", NodeID: c.nodeID, Action: "default core", Msg: fmt.Sprintf("%d bytes", len(c.s.corePayload))})
	return c.write(handshake.EncodeRequest(handshake.CmdCoreModule, 0, append(c.s.coreHash[:], c.s.corePayload...)))
}

// coreInfoKey is what a coreinfo message may change in a device record,
// as one comparable string.
func coreInfoKey(d *store.Device) string {
	return fmt.Sprintf("%d %q %q %q %q %v %q", d.Caps, d.CoreName, d.Name, d.IP, d.OSDesc, d.Root, d.Users)
}

func shortHash(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	if h == "" {
		return "none"
	}
	return h
}

// handleJSON stores what the server keeps about the device and hands every
// message to subscribers (control.md §6.3).
func (c *conn) handleJSON(msg []byte) error {
	var m struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(msg, &m); err != nil || m.Action == "" {
		c.s.log.Debug("ignored malformed JSON from agent", "node", c.nodeID)
		return nil
	}
	c.s.log.Debug("agent message", "node", c.nodeID, "action", m.Action, "bytes", len(msg))
	st := c.s.cfg.Store
	switch m.Action {
	case "ping":
		if err := c.write([]byte(`{"action":"pong"}`)); err != nil {
			return err
		}
	case "coreinfo":
		var ci struct {
			Value  *string   `json:"value"`
			Caps   *uint32   `json:"caps"`
			OSDesc *string   `json:"osdesc"`
			Name   *string   `json:"name"`
			Root   *bool     `json:"root"`
			Users  *[]string `json:"users"`
		}
		if json.Unmarshal(msg, &ci) == nil {
			// Over-long text is dropped, not stored (finding 9: a 1 MB name).
			if ci.Name != nil && !fits(*ci.Name, MaxNameLen) {
				c.s.log.Info("agent report refused", "node", c.nodeID, "field", "coreinfo name", "bytes", len(*ci.Name))
				ci.Name = nil
			}
			if ci.Value != nil && !fits(*ci.Value, MaxNameLen) {
				ci.Value = nil
			}
			if ci.OSDesc != nil && !fits(*ci.OSDesc, MaxOSDesc) {
				ci.OSDesc = nil
			}
			if ci.Users != nil && (len(*ci.Users) > MaxUsers || !allFit(*ci.Users, MaxNameLen)) {
				ci.Users = nil
			}
			c.mu.Lock()
			if ci.Value != nil && ci.Caps != nil {
				c.coreName = *ci.Value
			}
			if ci.Caps != nil {
				c.caps = c.caps&(handshake.CapConsole|handshake.CapJavaScript) | *ci.Caps&^(handshake.CapConsole|handshake.CapJavaScript)
			}
			if ci.Name != nil && *ci.Name != "" {
				c.name = *ci.Name
			}
			caps, coreName := c.caps, c.coreName
			c.mu.Unlock()
			ip, _, _ := net.SplitHostPort(c.remote)
			st.UpdateDeviceAsync(c.nodeID, func(d *store.Device, found bool) error {
				if !found {
					return store.ErrNoChange
				}
				before := coreInfoKey(d)
				d.Caps, d.CoreName, d.IP = caps, coreName, ip
				// Only a name the core sends renames the device (control.md
				// §6.4); otherwise an administrator's rename stands.
				if ci.Name != nil && *ci.Name != "" {
					d.Name = *ci.Name
				}
				if ci.OSDesc != nil {
					d.OSDesc = *ci.OSDesc
				}
				if ci.Root != nil {
					d.Root = *ci.Root
				}
				if ci.Users != nil {
					d.Users = *ci.Users
				}
				if coreInfoKey(d) == before {
					return store.ErrNoChange
				}
				return nil
			})
		}
	case "netinfo":
		if err := checkNetInfo(msg); err != nil {
			c.s.log.Info("agent report refused", "node", c.nodeID, "reason", err)
			break
		}
		st.UpdateDeviceAsync(c.nodeID, func(d *store.Device, found bool) error {
			if !found || bytes.Equal(d.NetInfo, msg) {
				return store.ErrNoChange
			}
			d.NetInfo = json.RawMessage(msg)
			return nil
		})
	case "sysinfo":
		var si struct {
			Data json.RawMessage `json:"data"`
		}
		if json.Unmarshal(msg, &si) == nil && len(si.Data) > 0 {
			hash, err := checkSysInfo(si.Data)
			if err != nil {
				c.s.log.Info("agent report refused", "node", c.nodeID, "reason", err)
				break
			}
			c.mu.Lock()
			c.sysInfoHash = hash
			c.mu.Unlock()
			st.UpdateDeviceAsync(c.nodeID, func(d *store.Device, found bool) error {
				if !found {
					return store.ErrNoChange
				}
				d.SysInfo, d.SysInfoHash = si.Data, hash
				return nil
			})
		}
	case "log":
		var l struct {
			Msg    string `json:"msg"`
			UserID string `json:"userid"`
			Remote string `json:"remoteaddr"`
		}
		if json.Unmarshal(msg, &l) == nil {
			if len(l.Msg) > 4096 {
				l.Msg = l.Msg[:4096]
			}
			st.AppendEventAsync(store.Event{Kind: store.EvAgentLog, Who: l.UserID, NodeID: c.nodeID, From: l.Remote, Msg: l.Msg})
		}
	}
	c.s.publish(Event{Kind: Message, NodeID: c.nodeID, Agent: c.snapshot(), Action: m.Action, Data: msg})
	return nil
}
