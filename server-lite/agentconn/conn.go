package agentconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/store"
)

// ServeHTTP upgrades to WebSocket and runs one agent connection until it ends.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.TLS == nil {
		// The handshake signs the TLS certificate hash; without TLS an
		// agent cannot authenticate the server (control.md §3.1).
		http.Error(w, "agent.ashx needs TLS", http.StatusBadRequest)
		return
	}
	// Pending handshakes are limited per address and in all; refused
	// before the upgrade (so cheaply) with a Retry-After that paces a
	// reconnect storm; a stalled pending one is evicted instead.
	if busy, retry := s.crowded(r.RemoteAddr); busy {
		s.log.Debug("agent refused before the handshake", "remote", r.RemoteAddr, "reason", "too many pending handshakes", "retry_after", retry)
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		http.Error(w, "too many pending handshakes", http.StatusServiceUnavailable)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.log.Debug("upgrade failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	c := &conn{s: s, ws: ws, remote: r.RemoteAddr, started: time.Now()}
	if err := s.admit(c); err != nil {
		s.log.Debug("agent refused before the handshake", "remote", r.RemoteAddr, "reason", err)
		c.close(err.Error())
		return
	}
	c.run()
}

// conn is one agent connection. Its goroutine (the HTTP handler's) is the
// only reader; writers serialise on wmu.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	remote  string
	started time.Time

	wmu sync.Mutex

	// Set once at authentication, read-only afterwards.
	nodeID  string
	groupID string
	res     handshake.ServerResult

	mu       sync.Mutex
	name     string
	caps     uint32
	coreHash string
	coreName string
	// savedCoreHash is the core hash in the device record, to skip
	// rewriting it unchanged.
	savedCoreHash string
	sysInfoHash   string // of the stored sysinfo, sent in the sysinfo request
	pinned        string
	pushes        int
	closeOnce     sync.Once
	reason        string

	in inbox // messages read, waiting to be handled
}

func (c *conn) snapshot() AgentInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	a := AgentInfo{
		NodeID: c.nodeID, GroupID: c.groupID, Name: c.name, Hostname: c.res.Info.Hostname,
		AgentID: c.res.Info.AgentID, Caps: c.caps, Remote: c.remote, Connected: c.started,
		Skip: c.res.Skip, CoreHash: c.coreHash, CoreName: c.coreName,
	}
	switch {
	case c.coreHash == zeroHashHex:
		a.Flavor = "local-core"
	case c.coreHash != "" || c.pushes > 0:
		a.Flavor = "js-core"
	}
	return a
}

var zeroHashHex = strings.Repeat("0", 2*handshake.HashLen)

func (c *conn) write(msg []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	// Server-side WriteMessage emits exactly one unfragmented frame, which
	// the C agent needs for anything over 64 KiB (control.md §3.2).
	if err := c.ws.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		c.close("write failed: " + err.Error())
		return fmt.Errorf("agentconn: write to %s: %w", c.nodeID, err)
	}
	return nil
}

func (c *conn) close(reason string) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.reason = reason
		c.mu.Unlock()
		c.ws.Close()
	})
}

func (c *conn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// run authenticates the agent and starts its session on the HTTP
// handler's goroutine, then moves the long-lived read loop to a fresh
// goroutine and returns.
//
// Memory per idle agent (target: < 20 kB) is mostly that read loop's
// stack: a goroutine blocked in a WebSocket read over TLS needs 4 KB, but
// one that ever ran the deeper work (TLS and RSA, JSON, the store, logging,
// writing a pong) keeps 8 KB, as the runtime only halves a stack that is
// less than a quarter used. So the read loop only reads; what it reads is
// handled, in order, on a short-lived goroutine (see inbox).
func (c *conn) run() {
	err := c.handshake()
	c.s.handshakeDone(c, err == nil)
	if err != nil {
		if r := c.closeReason(); r != "" {
			err = errors.New(r) // evicted
		}
		c.s.log.Info("agent disconnected during handshake", "remote", c.remote, "reason", err)
		c.close(err.Error())
		return
	}
	c.res.Cert = nil // parsed certificate: not needed once verified
	// A read lock suffices: Shutdown sets closed under the write lock
	// before it waits, so no Add follows its Wait.
	c.s.mu.RLock()
	if c.s.closed {
		c.s.mu.RUnlock()
		c.close(reasonShutdown)
		return
	}
	c.s.wg.Add(1)
	c.s.mu.RUnlock()
	if err := c.startSession(); err != nil {
		c.s.log.Warn("agent refused after authentication", "remote", c.remote, "node", c.nodeID, "reason", err)
		c.close(err.Error())
		c.finish()
		c.s.wg.Done()
		return
	}
	go func() {
		defer c.s.wg.Done()
		c.serve()
	}()
}

// serve is the read loop. It ends when the connection does, once every
// message read before has been handled.
func (c *conn) serve() {
	defer c.finish()
	c.ws.SetReadLimit(c.s.cfg.MaxMessage)
	c.ws.SetPingHandler(func(data string) error {
		c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
		c.in.put(c, item{pong: true, data: []byte(data)})
		return nil
	})
	for {
		c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.IdleTimeout))
		_, msg, err := c.ws.ReadMessage()
		if err != nil {
			c.close(readReason(err))
			return
		}
		c.in.put(c, item{data: msg})
	}
}

// finish records the end of the connection: it waits for queued messages
// to be handled, so subscribers see them before the disconnect, then
// unregisters the agent if this is still its live connection.
func (c *conn) finish() {
	c.in.wait()
	reason := c.closeReason()
	if reason == "" {
		reason = "closed"
	}
	c.close(reason)
	current := c.s.unregister(c)
	// The event log keeps every disconnect with its reason. The console
	// gets the ones the server caused (a limit, a bad message, a failed
	// write, a timeout); ordinary goodbyes, a line per agent when thousands
	// reconnect, are Debug.
	level := slog.LevelInfo
	switch reason {
	case reasonAgentClosed, reasonShutdown, reasonReplaced:
		level = slog.LevelDebug
	}
	c.s.log.Log(context.Background(), level, "agent disconnected", "remote", c.remote, "node", c.nodeID, "reason", reason, "seconds", int(time.Since(c.started).Seconds()))
	if current {
		now := time.Now().UTC()
		c.s.cfg.Store.UpdateDeviceAsync(c.nodeID, func(d *store.Device, found bool) error {
			if !found {
				return store.ErrNoChange // removed meanwhile: no stub record
			}
			d.LastSeen = now
			return nil
		}, store.Event{Kind: store.EvDisconnect, Who: c.nodeID, NodeID: c.nodeID, From: c.remote, Msg: reason})
		c.s.publish(Event{Kind: Disconnected, NodeID: c.nodeID, Agent: c.snapshot(), Reason: reason})
	}
}

// item is one thing the read loop hands over: a message, or a ping to
// answer.

// Disconnect reasons that are no fault of either side.
const (
	reasonAgentClosed = "agent closed the connection"
	reasonShutdown    = "server shutting down"
	reasonReplaced    = "replaced by a newer connection of the same agent"
)

func readReason(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		return "frame over the size limit"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway, websocket.CloseNoStatusReceived, websocket.CloseAbnormalClosure):
		return reasonAgentClosed
	}
	return "read: " + err.Error()
}

// handshake runs the server role of proto/handshake to completion.
