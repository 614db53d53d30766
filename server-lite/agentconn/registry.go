package agentconn

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/store"
)

// AgentInfo describes one connected agent.
type AgentInfo struct {
	NodeID    string
	GroupID   string
	Name      string
	Hostname  string
	AgentID   uint32 // ARCHID from AuthInfo
	Caps      uint32
	Remote    string
	Connected time.Time
	Skip      bool // authenticated on the skip path
	// CoreHash is the hex hash the agent reported for its core: "" before it
	// answered or when it has none, 96 zeros for a local core it will not
	// let us replace (our Go agent's embedded core).
	CoreHash string
	CoreName string // from coreinfo "value"
	// Flavor is a guess from what the agent sent: "local-core" when it
	// reports the zero core hash (our agent), "js-core" when it takes
	// pushed cores (the C agent), "" until known.
	Flavor string
}

// Agents lists connected, authenticated agents, sorted by node id.
func (s *Server) Agents() []AgentInfo {
	conns := s.conns.all()
	out := make([]AgentInfo, 0, len(conns))
	for _, c := range conns {
		out = append(out, c.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NodeID < out[j].NodeID })
	return out
}

// Agent returns one connected agent.
func (s *Server) Agent(nodeID string) (AgentInfo, bool) {
	c := s.lookup(nodeID)
	if c == nil {
		return AgentInfo{}, false
	}
	return c.snapshot(), true
}

// ErrNotConnected is returned when the node has no live connection.
var ErrNotConnected = errors.New("agentconn: agent not connected")

func (s *Server) lookup(nodeID string) *conn { return s.conns.get(nodeID) }

// SendJSON marshals v and sends it to the agent as one frame. Binary frames
// are what MeshCentral sends and both agents accept (control.md §3.2).
func (s *Server) SendJSON(nodeID string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("agentconn: marshal: %w", err)
	}
	if !handshake.IsJSON(b) {
		return errors.New("agentconn: SendJSON needs a JSON object")
	}
	c := s.lookup(nodeID)
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, nodeID)
	}
	return c.write(b)
}

// Disconnect closes a node's connection.
func (s *Server) Disconnect(nodeID, reason string) error {
	c := s.lookup(nodeID)
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, nodeID)
	}
	c.close(reason)
	return nil
}

// PushCore sends script as the node's core (command 10) and pins its hash
// in the device record, so the agent keeps it across reconnects instead of
// being sent the default again. who is recorded in the event log.
func (s *Server) PushCore(nodeID string, script []byte, who string) error {
	c := s.lookup(nodeID)
	if c == nil {
		return fmt.Errorf("%w: %s", ErrNotConnected, nodeID)
	}
	payload, hash := CorePayload(script)
	h := hex.EncodeToString(hash[:])
	s.cfg.Store.Flush() // the device record may still be queued
	if _, err := s.cfg.Store.UpdateDevice(nodeID, func(d *store.Device, _ bool) error {
		d.PinnedCoreHash = h
		return nil
	}, store.Event{Kind: store.EvCorePush, Who: who, NodeID: nodeID, Action: "custom core", Msg: fmt.Sprintf("%d bytes, sha384 %s", len(script), h[:16])}); err != nil {
		return fmt.Errorf("agentconn: pin core: %w", err)
	}
	c.mu.Lock()
	c.pinned = h
	c.mu.Unlock()
	return c.write(handshake.EncodeRequest(handshake.CmdCoreModule, 0, append(hash[:], payload...)))
}

// PushCoreAll pushes script to every connected agent and returns how many
// accepted the write.
func (s *Server) PushCoreAll(script []byte, who string) int {
	n := 0
	for _, a := range s.Agents() {
		if err := s.PushCore(a.NodeID, script, who); err == nil {
			n++
		} else {
			s.log.Warn("core push failed", "node", a.NodeID, "err", err)
		}
	}
	return n
}

// ResetCore removes a pinned custom core: on its next core check the agent
// gets the default again.
func (s *Server) ResetCore(nodeID, who string) error {
	s.cfg.Store.Flush()
	_, err := s.cfg.Store.UpdateDevice(nodeID, func(d *store.Device, found bool) error {
		if !found {
			return fmt.Errorf("%w: %s", store.ErrNotFound, nodeID)
		}
		d.PinnedCoreHash = ""
		return nil
	}, store.Event{Kind: store.EvCorePush, Who: who, NodeID: nodeID, Action: "reset core"})
	if c := s.lookup(nodeID); c != nil {
		c.mu.Lock()
		c.pinned = ""
		c.mu.Unlock()
		c.write(handshake.EncodeRequest(handshake.CmdCoreModuleHash, 0, nil))
	}
	return err
}

// register makes c the live connection of its node and returns the one it
// replaced, if any.
func (s *Server) register(c *conn) *conn {
	old := s.conns.put(c)
	// Read after the put: a Shutdown that set closed before this read
	// lists the connections after it, so it sees c.
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		// Shutdown began after this session did and did not see it: close
		// it here, or Shutdown would wait for the agent to hang up.
		c.close(reasonShutdown)
	}
	return old
}

// unregister removes c if it is still the node's live connection.
func (s *Server) unregister(c *conn) bool {
	return s.conns.remove(c)
}

// Shutdown closes every agent connection, waits until each has recorded
// its disconnect (LastSeen and a disconnect event, queued to the store's
// write-behind queue, which commits them in transactions of up to 2,000;
// Store.Close flushes it), then until every subscriber has handled its
// queue.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	conns := s.conns.all() // after closed is set: see register
	// Closing a TLS connection writes its close_notify; with tens of
	// thousands connected, one goroutine doing that in turn, while every
	// closed connection's goroutine competes for the CPUs to record its
	// end, took most of the shutdown. A few closers share the work.
	closers := min(len(conns), 4*runtime.GOMAXPROCS(0))
	var cwg sync.WaitGroup
	for w := range closers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			for i := w; i < len(conns); i += closers {
				conns[i].close(reasonShutdown)
			}
		}()
	}
	cwg.Wait()
	s.wg.Wait()
	s.stopSubscribers()
}
