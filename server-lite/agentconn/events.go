package agentconn

import (
	"encoding/json"
	"sync"
	"time"
)

// Kind of event delivered to subscribers.
type Kind int

const (
	Connected Kind = iota + 1
	Disconnected
	Message // a JSON message from the agent
)

// Event is what subscribers receive.
type Event struct {
	Kind   Kind
	NodeID string
	Agent  AgentInfo       // snapshot at the time of the event
	Action string          // Message: the JSON "action"
	Data   json.RawMessage // Message: the agent's JSON object, shared by every subscriber: not to be modified
	Reason string          // Disconnected: why
	// Lost is how many events this subscriber missed just before this one
	// because its queue was full (see Subscribe). When it is not 0 the
	// subscriber's picture of the agents may be stale.
	Lost int
}

// DefaultSubscriberQueue is Config.SubscriberQueue's default: events a
// subscriber may fall behind by before events are dropped.
const DefaultSubscriberQueue = 4096

// Subscribe registers fn for every connect, disconnect and JSON message from
// any agent, and returns the function that unsubscribes (events still
// queued are then discarded).
//
// Each subscriber has one queue, served in order by its own goroutine, so
// fn sees every agent's events in the order they happened (a connect
// before that connection's messages, two replies in the order the agent
// sent them, the messages before the disconnect) and fn runs one event at
// a time. The agents' read loops only append to the queue: a slow fn never
// stalls an agent.
//
// The queue is bounded (Config.SubscriberQueue). When it is full the newest
// events are dropped, never reordered: delivering later events ahead of
// earlier ones would make, say, a disconnect overtake the last reply, or a
// stale connect overtake a disconnect, which is worse than a visible gap.
// Blocking instead would let one slow subscriber stop every agent. The
// next event delivered carries the number dropped in Lost, and each burst
// of drops is logged once at Warn with its count.
//
// fn may keep Data (it is never reused) but must not modify it. Shutdown
// waits (up to a few seconds) until every subscriber has handled what was
// queued, so fn should not call Shutdown.
func (s *Server) Subscribe(fn func(Event)) (cancel func()) {
	sub := &subscriber{s: s, fn: fn, max: s.cfg.SubscriberQueue, wake: make(chan struct{}, 1), done: make(chan struct{})}
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.subs[id] = sub
	s.mu.Unlock()
	go sub.run()
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
		sub.stop(true)
	}
}

// publish queues e for every subscriber. Callers publish one connection's
// events from one goroutine at a time, in order (startSession, then the
// inbox's handler, then finish), so each queue keeps that order.
func (s *Server) publish(e Event) {
	s.mu.RLock()
	subs := make([]*subscriber, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.RUnlock()
	for _, sub := range subs {
		sub.put(e)
	}
}

// subscriberDrainTimeout bounds how long Shutdown waits for subscribers:
// one that never returns must not hang the server's exit.
const subscriberDrainTimeout = 5 * time.Second

// stopSubscribers lets every subscriber handle what is queued, then ends
// their goroutines; it gives up on those still busy after
// subscriberDrainTimeout.
func (s *Server) stopSubscribers() {
	s.mu.Lock()
	subs := make([]*subscriber, 0, len(s.subs))
	for id, sub := range s.subs {
		subs = append(subs, sub)
		delete(s.subs, id)
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.stop(false)
	}
	deadline := time.NewTimer(subscriberDrainTimeout)
	defer deadline.Stop()
	for _, sub := range subs {
		select {
		case <-sub.done:
		case <-deadline.C:
			s.log.Warn("event subscriber still busy at shutdown; not waiting for it")
			return
		}
	}
}

// subscriber is one Subscribe call: its queue and the goroutine serving it.
type subscriber struct {
	s    *Server
	fn   func(Event)
	max  int
	wake chan struct{} // capacity 1: something was queued or stop was called
	done chan struct{} // closed when run returns

	mu       sync.Mutex
	q        []Event
	lost     int // dropped since the last event queued
	stopping bool
}

func (sub *subscriber) put(e Event) {
	sub.mu.Lock()
	if sub.stopping {
		sub.mu.Unlock()
		return
	}
	if len(sub.q) >= sub.max {
		sub.lost++
		sub.mu.Unlock()
		return
	}
	if sub.lost > 0 {
		e.Lost = sub.lost
		sub.s.log.Warn("event subscriber fell behind; events dropped", "dropped", sub.lost, "queue", sub.max)
		sub.lost = 0
	}
	sub.q = append(sub.q, e)
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

// stop ends delivery: at once (discard) or once the queue is empty.
func (sub *subscriber) stop(discard bool) {
	sub.mu.Lock()
	sub.stopping = true
	if discard {
		sub.q = nil
	}
	sub.mu.Unlock()
	select {
	case sub.wake <- struct{}{}:
	default:
	}
}

func (sub *subscriber) run() {
	defer close(sub.done)
	for {
		sub.mu.Lock()
		for len(sub.q) == 0 {
			if sub.stopping {
				if sub.lost > 0 {
					sub.s.log.Warn("event subscriber fell behind; events dropped", "dropped", sub.lost, "queue", sub.max)
				}
				sub.mu.Unlock()
				return
			}
			sub.q = nil // an idle subscriber keeps no queue
			sub.mu.Unlock()
			<-sub.wake
			sub.mu.Lock()
		}
		e := sub.q[0]
		sub.q[0] = Event{}
		sub.q = sub.q[1:]
		sub.mu.Unlock()
		sub.fn(e)
	}
}
