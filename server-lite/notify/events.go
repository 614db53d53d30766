package notify

import (
	"cmp"
	"fmt"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// EventKind is a device event users can subscribe to.
type EventKind int

const (
	Connect EventKind = iota
	Disconnect
	AgentError // the agent's error log (MeshCentral's "errorlog" message)
	CoreCrash  // the agent reports a core dump ("getcoredump" with value true)
	offline    // raised by an offline timer
)

// DeviceEvent is what the server reports; GroupID may be empty (looked up).
type DeviceEvent struct {
	Kind    EventKind
	NodeID  string
	GroupID string
	Name    string // the device's name when the caller knows it (else looked up)
	Detail  string // an error's text
	user    string // offline timers: the one user whose timer fired
}

// Post hands a device event to the notifier without waiting: the agent
// connection that reports it never blocks on messaging. When the bounded
// queue is full the event is dropped and logged.
func (n *Notifier) Post(e DeviceEvent) {
	select {
	case <-n.done:
		return // closed: events after Close are not news (the server stops)
	default:
	}
	select {
	case n.events <- e:
	default:
		n.log.Warn("notification event queue full: event dropped", "node", e.NodeID, "kind", int(e.Kind))
	}
}

func (n *Notifier) eventLoop() {
	for {
		select {
		case <-n.done:
			return
		case e := <-n.events:
			n.handle(e)
		}
	}
}

type note struct {
	node string
	kind EventKind
	line string
}

// batch is one user's notices gathered in the current window.
type batch struct {
	notes []note
	timer *time.Timer
}

func (n *Notifier) handle(e DeviceEvent) {
	st := n.cfg.Store
	name, group, groupName := e.Name, e.GroupID, ""
	if name == "" || group == "" {
		if d, err := st.Device(e.NodeID); err == nil {
			name = cmp.Or(name, d.Name)
			group = cmp.Or(group, d.GroupID)
		}
	}
	name = cmp.Or(name, e.NodeID)
	if g, err := st.Group(group); err == nil {
		groupName = g.Name
	}
	if e.Kind == Connect {
		n.stopOffline(e.NodeID)
	}
	type target struct {
		user  string
		owner int64
		sub   Sub
	}
	var targets []target
	n.mu.Lock()
	for uid, p := range n.prefs {
		if p.Handle == "" || p.Muted[e.NodeID] || (e.user != "" && e.user != uid) {
			continue
		}
		sub, ok := p.Subs[e.NodeID]
		if !ok {
			if sub, ok = p.Subs[group]; !ok {
				continue
			}
		}
		targets = append(targets, target{uid, p.Owner, sub})
	}
	n.mu.Unlock()
	for _, t := range targets {
		u, err := n.cfg.Accounts.Get(t.user)
		if err != nil || u.Creation != t.owner || !accounts.EffectiveRights(u, group, e.NodeID).Visible {
			continue // rights were taken away: no more notices
		}
		if e.Kind == Disconnect && t.sub.OfflineMinutes > 0 {
			n.startOffline(t.user, e.NodeID, group, name, t.sub.OfflineMinutes)
		}
		if t.sub.Events&kindBit(e.Kind) == 0 {
			continue
		}
		n.add(t.user, note{node: e.NodeID, kind: e.Kind, line: noteLine(e, name, groupName, t.sub)})
	}
}

func kindBit(k EventKind) uint32 {
	switch k {
	case Connect:
		return NotifyConnect
	case Disconnect:
		return NotifyDisconnect
	case AgentError:
		return NotifyAgentError
	case CoreCrash:
		return NotifyCoreCrash
	case offline:
		return NotifyOffline
	}
	return 0
}

func noteLine(e DeviceEvent, name, group string, sub Sub) string {
	dev := fmt.Sprintf("%q", clip(name, 64))
	if group != "" {
		dev += fmt.Sprintf(" in %q", clip(group, 64))
	}
	switch e.Kind {
	case Connect:
		return dev + " connected"
	case Disconnect:
		return dev + " disconnected"
	case AgentError:
		return dev + " agent error: " + clip(strings.Join(strings.Fields(e.Detail), " "), 200)
	case CoreCrash:
		return dev + " core crashed (core dump available)"
	case offline:
		return fmt.Sprintf("%s offline for more than %d minutes", dev, sub.OfflineMinutes)
	}
	return dev
}

// add puts a notice into the user's batch. A connect and a disconnect of
// the same device in one window cancel out; a repeat of the same one is
// dropped.
func (n *Notifier) add(userID string, nt note) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	b := n.batches[userID]
	if b == nil {
		b = &batch{}
		n.batches[userID] = b
	}
	if nt.kind == Connect || nt.kind == Disconnect {
		for i := len(b.notes) - 1; i >= 0; i-- {
			o := b.notes[i]
			if o.node != nt.node || (o.kind != Connect && o.kind != Disconnect) {
				continue
			}
			if o.kind != nt.kind {
				b.notes = append(b.notes[:i], b.notes[i+1:]...)
			}
			return
		}
	}
	b.notes = append(b.notes, nt)
	if b.timer == nil {
		b.timer = time.AfterFunc(n.window, func() { n.flush(userID) })
	}
}

// flush sends the user's batch as one message, if anything is left.
func (n *Notifier) flush(userID string) {
	n.mu.Lock()
	b := n.batches[userID]
	delete(n.batches, userID)
	var h string
	if p := n.prefs[userID]; p != nil {
		h = p.Handle
	}
	n.mu.Unlock()
	if b == nil || len(b.notes) == 0 || h == "" {
		return
	}
	text := batchText(b.notes)
	if _, err := n.Enqueue("events:"+userID+":"+randomHex(8), userID, h, "server-lite: device events", text); err != nil {
		n.log.Warn("device notice not queued", "user", userID, "err", n.redact(err.Error()))
	}
}

// batchText joins the notices, at most MaxText characters: lines that do
// not fit are counted in a last line.
func batchText(notes []note) string {
	var sb strings.Builder
	sb.WriteString("server-lite:")
	used := len([]rune(sb.String()))
	for i, nt := range notes {
		line := "\n" + nt.line
		rest := len(notes) - i - 1
		tail := 0
		if rest > 0 {
			tail = len(fmt.Sprintf("\n… and %d more", rest))
		}
		if used+len([]rune(line))+tail > MaxText {
			fmt.Fprintf(&sb, "\n… and %d more", len(notes)-i)
			return sb.String()
		}
		sb.WriteString(line)
		used += len([]rune(line))
	}
	return sb.String()
}

func (n *Notifier) startOffline(userID, nodeID, group, name string, minutes int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return
	}
	ts := n.offline[nodeID]
	if ts == nil {
		ts = map[string]*time.Timer{}
		n.offline[nodeID] = ts
	}
	if t := ts[userID]; t != nil {
		t.Stop()
	}
	ts[userID] = time.AfterFunc(time.Duration(minutes)*n.cfg.OfflineUnit, func() {
		n.mu.Lock()
		delete(n.offline[nodeID], userID)
		n.mu.Unlock()
		if n.cfg.Online != nil && n.cfg.Online(nodeID) {
			return
		}
		n.Post(DeviceEvent{Kind: offline, NodeID: nodeID, GroupID: group, Name: name, user: userID})
	})
}

func (n *Notifier) stopOffline(nodeID string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.offline[nodeID] {
		t.Stop()
	}
	delete(n.offline, nodeID)
}
