// Package updates is server-lite's side of our agent's self-update: a
// catalog of release builds per platform with their SHA-384, offers
// signed with the agent-server key (proto/agentupdate says why that key),
// staged rollouts to one device, a group or all, the command-14 blocks
// the agents download, and each device's agent version as the agents
// report it. Every step an agent reports goes to the event log.
//
// A rollout offers its binary to a stage of its devices at a time (a
// percentage of them); the next stage starts only when every device of
// the current one has come back online reporting the new binary's hash,
// or was skipped (no build for its platform, the C agent, an agent not
// running as a service). A refusal, a failure or a rollback halts the
// rollout. Rollouts live in memory: a server restart ends them (each
// device's step stays in the event log, and a restarted rollout skips the
// devices already on the binary).
package updates

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/meshgo/meshagent/proto/agentupdate"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/store"
)

// Agents is what the manager needs of the agent registry.
type Agents interface {
	SendJSON(nodeID string, v any) error
	Agent(nodeID string) (agentconn.AgentInfo, bool)
}

// Config configures a Manager.
type Config struct {
	Agents Agents
	Store  *store.Store
	Certs  *certs.Set
	// Dir is the default binaries directory (server-lite's --agents).
	Dir    string
	Logger *slog.Logger
}

// Device states in a rollout, besides the agent's own (agentupdate.State*).
const (
	DevPending = "pending" // waiting for its stage or for the device to connect
	DevQueried = "queried" // asked for its version
	DevOffered = "offered"
	DevDone    = "done"    // online on the new binary
	DevSkipped = "skipped" // nothing to do: see Msg
	DevFailed  = "failed"  // refused, failed or rolled back: halts the rollout
)

// Rollout states.
const (
	RollRunning   = "running"
	RollDone      = "done"
	RollHalted    = "halted"
	RollCancelled = "cancelled"
)

// Request starts a rollout.
type Request struct {
	NodeIDs []string // the devices, in order (the CLI and API resolve groups and "all")
	Percent int      // of the devices per stage; 0 or 100: one stage
	Trial   int      // seconds; 0: agentupdate.DefaultTrial
	Dir     string   // "": Config.Dir
	Who     string
}

// DeviceState is one device's progress.
type DeviceState struct {
	NodeID string    `json:"nodeid"`
	Stage  int       `json:"stage"`
	State  string    `json:"state"`
	Msg    string    `json:"msg,omitempty"`
	From   string    `json:"from,omitempty"` // version before
	Time   time.Time `json:"time"`
}

// Rollout is one update campaign.
type Rollout struct {
	ID        string                       `json:"id"`
	Who       string                       `json:"who"`
	Started   time.Time                    `json:"started"`
	State     string                       `json:"state"`
	Msg       string                       `json:"msg,omitempty"`
	Percent   int                          `json:"percent"`
	StageSize int                          `json:"stageSize"`
	Stage     int                          `json:"stage"` // current, from 0
	Stages    int                          `json:"stages"`
	Trial     int                          `json:"trial"`
	Binaries  map[string]BinaryInfo        `json:"binaries"`
	Devices   []*DeviceState               `json:"devices"`
	offers    map[string]agentupdate.Offer // by platform
	bins      map[string]*Binary
	byNode    map[string]*DeviceState
}

// BinaryInfo is a Binary as listed.
type BinaryInfo struct {
	Version string `json:"version"`
	Size    int64  `json:"size"`
	SHA384  string `json:"sha384"`
	File    string `json:"file"`
}

// Manager runs rollouts.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	rollouts []*Rollout
	// serving maps a node to the binary hash it may download (the one
	// offered to it by a running rollout).
	serving map[string]*Binary
}

// New builds a Manager; feed it agent events with Event and block
// requests with Block.
func New(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Manager{cfg: cfg, log: cfg.Logger.With("component", "updates"), serving: map[string]*Binary{}}
}

// ErrNoDevices is returned for a rollout with nothing to update.
var ErrNoDevices = errors.New("updates: no devices")

// Start begins a rollout. The catalog is read now: builds added later
// need a new rollout.
func (m *Manager) Start(r Request) (Rollout, error) {
	if len(r.NodeIDs) == 0 {
		return Rollout{}, ErrNoDevices
	}
	if r.Percent <= 0 || r.Percent > 100 {
		r.Percent = 100
	}
	if r.Trial == 0 {
		r.Trial = agentupdate.DefaultTrial
	}
	if r.Trial < agentupdate.MinTrial || r.Trial > agentupdate.MaxTrial {
		return Rollout{}, fmt.Errorf("updates: trial %d s outside %d..%d", r.Trial, agentupdate.MinTrial, agentupdate.MaxTrial)
	}
	dir := r.Dir
	if dir == "" {
		dir = m.cfg.Dir
	}
	if dir == "" {
		return Rollout{}, errors.New("updates: no binaries directory (server-lite --agents, or name one)")
	}
	bins, err := LoadCatalog(dir)
	if err != nil {
		return Rollout{}, err
	}
	var idb [6]byte
	rand.Read(idb[:])
	ro := &Rollout{ID: hex.EncodeToString(idb[:]), Who: r.Who, Started: time.Now().UTC(), State: RollRunning, Percent: r.Percent, Trial: r.Trial,
		Binaries: map[string]BinaryInfo{}, offers: map[string]agentupdate.Offer{}, bins: bins, byNode: map[string]*DeviceState{}}
	for p, b := range bins {
		o, err := agentupdate.Sign(m.cfg.Certs.AgentKey, m.cfg.Certs.AgentCert, ro.ID, agentupdate.Manifest{V: 1, Platform: p, Version: b.Version, Size: b.Size, SHA384: b.SHA384, Trial: r.Trial})
		if err != nil {
			return Rollout{}, err
		}
		ro.offers[p] = o
		ro.Binaries[p] = BinaryInfo{Version: b.Version, Size: b.Size, SHA384: b.SHA384, File: b.Path}
	}
	seen := map[string]bool{}
	for _, n := range r.NodeIDs {
		if seen[n] {
			continue
		}
		seen[n] = true
		d := &DeviceState{NodeID: n, State: DevPending, Time: ro.Started}
		ro.Devices = append(ro.Devices, d)
		ro.byNode[n] = d
	}
	ro.StageSize = max(1, (len(ro.Devices)*r.Percent+99)/100)
	ro.Stages = (len(ro.Devices) + ro.StageSize - 1) / ro.StageSize
	for i, d := range ro.Devices {
		d.Stage = i / ro.StageSize
	}
	m.mu.Lock()
	for _, o := range m.rollouts {
		if o.State == RollRunning {
			m.mu.Unlock()
			return Rollout{}, fmt.Errorf("updates: rollout %s is still running; cancel it first", o.ID)
		}
	}
	m.rollouts = append(m.rollouts, ro)
	m.mu.Unlock()
	platforms := make([]string, 0, len(bins))
	for p, b := range bins {
		platforms = append(platforms, fmt.Sprintf("%s %s %s", p, b.Version, b.SHA384[:16]))
	}
	sort.Strings(platforms)
	m.event(r.Who, "", "rollout "+ro.ID+" started", fmt.Sprintf("%d devices, %d%% per stage (%d stages), trial %d s; builds: %v", len(ro.Devices), r.Percent, ro.Stages, r.Trial, platforms))
	m.log.Info("agent update rollout started", "id", ro.ID, "devices", len(ro.Devices), "stages", ro.Stages, "who", r.Who)
	m.mu.Lock()
	sends := m.advance(ro)
	m.mu.Unlock()
	m.flush(sends)
	return m.snapshot(ro), nil
}

// Cancel stops a running rollout; agents already installing finish their
// own update.
func (m *Manager) Cancel(id, who string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ro := range m.rollouts {
		if ro.ID == id && ro.State == RollRunning {
			ro.State, ro.Msg = RollCancelled, "cancelled by "+who
			m.stopServing(ro)
			m.event(who, "", "rollout "+id+" cancelled", "")
			return nil
		}
	}
	return fmt.Errorf("updates: no running rollout %q", id)
}

// Rollouts lists every rollout of this run, newest first.
func (m *Manager) Rollouts() []Rollout {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Rollout, 0, len(m.rollouts))
	for i := len(m.rollouts) - 1; i >= 0; i-- {
		out = append(out, m.snapshotLocked(m.rollouts[i]))
	}
	return out
}

func (m *Manager) snapshot(ro *Rollout) Rollout {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapshotLocked(ro)
}

func (m *Manager) snapshotLocked(ro *Rollout) Rollout {
	c := *ro
	c.Devices = make([]*DeviceState, len(ro.Devices))
	for i, d := range ro.Devices {
		dc := *d
		c.Devices[i] = &dc
	}
	c.offers, c.bins, c.byNode = nil, nil, nil
	return c
}

type send struct {
	node string
	msg  any
}

func (m *Manager) flush(sends []send) {
	for _, s := range sends {
		if err := m.cfg.Agents.SendJSON(s.node, s.msg); err != nil {
			m.log.Debug("update message not sent", "node", s.node, "err", err)
		}
	}
}

var query = agentupdate.Message{Action: agentupdate.Action, Op: agentupdate.OpQuery}

// advance queries the online pending devices of the current stage and
// moves to the next stage when this one is complete. Called with mu.
func (m *Manager) advance(ro *Rollout) []send {
	var out []send
	for ro.State == RollRunning {
		complete := true
		for _, d := range ro.Devices {
			if d.Stage != ro.Stage {
				continue
			}
			switch d.State {
			case DevDone, DevSkipped:
				continue
			case DevFailed:
				ro.State, ro.Msg = RollHalted, fmt.Sprintf("device %s: %s", d.NodeID, d.Msg)
				m.stopServing(ro)
				m.event("server", "", "rollout "+ro.ID+" halted", ro.Msg)
				m.log.Warn("agent update rollout halted", "id", ro.ID, "why", ro.Msg)
				return out
			case DevPending:
				if _, on := m.cfg.Agents.Agent(d.NodeID); on {
					d.State, d.Time = DevQueried, time.Now().UTC()
					out = append(out, send{d.NodeID, query})
				}
			}
			complete = false
		}
		if !complete {
			return out
		}
		if ro.Stage+1 >= ro.Stages {
			ro.State = RollDone
			m.stopServing(ro)
			done, skipped := 0, 0
			for _, d := range ro.Devices {
				if d.State == DevDone {
					done++
				} else {
					skipped++
				}
			}
			ro.Msg = fmt.Sprintf("%d updated, %d skipped", done, skipped)
			m.event("server", "", "rollout "+ro.ID+" done", ro.Msg)
			m.log.Info("agent update rollout done", "id", ro.ID, "updated", done, "skipped", skipped)
			return out
		}
		ro.Stage++
		m.event("server", "", fmt.Sprintf("rollout %s stage %d of %d", ro.ID, ro.Stage+1, ro.Stages), "previous stage online on the new version")
	}
	return out
}

func (m *Manager) stopServing(ro *Rollout) {
	for _, d := range ro.Devices {
		if b, ok := m.serving[d.NodeID]; ok && ro.bins[b.Platform] == b {
			delete(m.serving, d.NodeID)
		}
	}
}

func (m *Manager) running() *Rollout {
	for _, ro := range m.rollouts {
		if ro.State == RollRunning {
			return ro
		}
	}
	return nil
}

// Event handles one agent event (subscribe it to agentconn).
func (m *Manager) Event(e agentconn.Event) {
	switch e.Kind {
	case agentconn.Connected:
		// Every agent is asked its version once per connection: the list
		// shows it, and a rollout learns the device came back.
		m.mu.Lock()
		if ro := m.running(); ro != nil {
			if d := ro.byNode[e.NodeID]; d != nil && d.Stage == ro.Stage && (d.State == DevPending || d.State == agentupdate.StateRestarting || d.State == DevOffered || d.State == agentupdate.StateDownloading) {
				d.State, d.Time = DevQueried, time.Now().UTC()
			}
		}
		m.mu.Unlock()
		m.flush([]send{{e.NodeID, query}})
	case agentconn.Message:
		if e.Action != agentupdate.Action {
			return
		}
		msg, err := agentupdate.ParseMessage(e.Data)
		if err != nil {
			m.log.Debug("ignored malformed update message", "node", e.NodeID, "err", err)
			return
		}
		switch msg.Op {
		case agentupdate.OpInfo:
			m.info(e.NodeID, msg)
		case agentupdate.OpStatus:
			m.status(e.NodeID, msg)
		}
	}
}

func (m *Manager) info(node string, msg agentupdate.Message) {
	m.cfg.Store.UpdateDeviceAsync(node, func(d *store.Device, found bool) error {
		if !found || d.AgentVersionName == msg.Version && d.AgentHash == msg.SHA384 {
			return store.ErrNoChange
		}
		d.AgentVersionName, d.AgentHash = msg.Version, msg.SHA384
		return nil
	})
	m.mu.Lock()
	ro := m.running()
	if ro == nil {
		m.mu.Unlock()
		return
	}
	d := ro.byNode[node]
	if d == nil || d.Stage != ro.Stage {
		m.mu.Unlock()
		return
	}
	var sends []send
	now := time.Now().UTC()
	b := ro.bins[msg.Platform]
	switch {
	case d.State == DevDone || d.State == DevSkipped || d.State == DevFailed:
	case b == nil:
		d.State, d.Msg, d.Time = DevSkipped, "no build for "+msg.Platform, now
		m.deviceEvent(ro, d, "skipped", d.Msg)
	case msg.SHA384 == b.SHA384:
		wasUpdating := d.From != ""
		d.State, d.Time = DevDone, now
		delete(m.serving, node)
		if wasUpdating {
			d.Msg = "online on " + msg.Version
			if msg.Last != nil && msg.Last.State == agentupdate.StateConfirmed {
				d.Msg += " (trial confirmed)"
			}
			m.deviceEvent(ro, d, "online on the new version", fmt.Sprintf("%s -> %s", d.From, msg.Version))
		} else {
			d.Msg = "already on " + msg.Version
			m.deviceEvent(ro, d, "already current", msg.Version)
		}
	case msg.Last != nil && msg.Last.ID == ro.ID && msg.Last.State == agentupdate.StateRolledBack:
		d.State, d.Msg, d.Time = DevFailed, "rolled back: "+msg.Last.Msg, now
		delete(m.serving, node)
		m.deviceEvent(ro, d, "rolled back", msg.Last.Msg)
	case msg.Last != nil && msg.Last.ID == ro.ID && msg.Last.State == agentupdate.StateFailed && d.From != "":
		d.State, d.Msg, d.Time = DevFailed, "failed: "+msg.Last.Msg, now
		delete(m.serving, node)
		m.deviceEvent(ro, d, "failed", msg.Last.Msg)
	case !msg.Updatable:
		d.State, d.Msg, d.Time = DevSkipped, "not updatable: "+msg.Why, now
		m.deviceEvent(ro, d, "skipped", d.Msg)
	default:
		if d.From == "" {
			d.From = msg.Version
		}
		d.State, d.Msg, d.Time = DevOffered, fmt.Sprintf("%s -> %s", msg.Version, b.Version), now
		m.serving[node] = b
		sends = append(sends, send{node, agentupdate.OfferMessage(ro.offers[msg.Platform])})
		m.deviceEvent(ro, d, "offered", d.Msg)
	}
	sends = append(sends, m.advance(ro)...)
	m.mu.Unlock()
	m.flush(sends)
}

func (m *Manager) status(node string, msg agentupdate.Message) {
	m.mu.Lock()
	var ro *Rollout
	for _, r := range m.rollouts {
		if r.ID == msg.ID {
			ro = r
		}
	}
	if ro == nil || ro.byNode[node] == nil {
		m.mu.Unlock()
		m.event(node, node, "agent update "+msg.State, msg.Msg)
		return
	}
	d := ro.byNode[node]
	now := time.Now().UTC()
	switch msg.State {
	case agentupdate.StateRefused, agentupdate.StateFailed:
		if d.State != DevDone {
			d.State, d.Msg, d.Time = DevFailed, msg.State+": "+msg.Msg, now
			delete(m.serving, node)
		}
	case agentupdate.StateCurrent:
		d.State, d.Msg, d.Time = DevDone, "already on "+msg.Version, now
	default:
		if d.State != DevDone && d.State != DevFailed {
			d.State, d.Msg, d.Time = msg.State, msg.Msg, now
		}
	}
	m.deviceEvent(ro, d, msg.State, msg.Msg)
	var sends []send
	if ro.State == RollRunning {
		sends = m.advance(ro)
	}
	m.mu.Unlock()
	m.flush(sends)
}

func (m *Manager) deviceEvent(ro *Rollout, d *DeviceState, step, msg string) {
	m.event(d.NodeID, d.NodeID, "agent update "+step, fmt.Sprintf("rollout %s: %s", ro.ID, msg))
}

func (m *Manager) event(who, node, action, msg string) {
	m.cfg.Store.AppendEventAsync(store.Event{Kind: store.EvUpdate, Who: who, NodeID: node, Action: action, Msg: msg})
}

// Block answers one block request (command 14 from the agent) with the
// block, or nil when the node may not download that binary now.
func (m *Manager) Block(node string, req []byte) []byte {
	r, err := agentupdate.DecodeRequest(req)
	if err != nil {
		m.log.Debug("bad block request", "node", node, "err", err)
		return nil
	}
	m.mu.Lock()
	b := m.serving[node]
	m.mu.Unlock()
	if b == nil || hex.EncodeToString(r.SHA384[:]) != b.SHA384 || r.Offset >= uint64(b.Size) {
		m.log.Debug("block request refused: nothing offered to this device", "node", node, "offset", r.Offset)
		return nil
	}
	end := min(uint64(b.Size), r.Offset+agentupdate.BlockSize)
	return agentupdate.EncodeBlock(r.Offset, b.data[r.Offset:end])
}
