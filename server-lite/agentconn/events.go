package agentconn

import "encoding/json"

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
	Data   json.RawMessage // Message: the agent's JSON object, not to be modified
	Reason string          // Disconnected: why
}

// Subscribe registers fn for every connect, disconnect and JSON message from
// any agent. fn runs on the connection's goroutine: it must not block (hand
// work to a channel or goroutine) and must not retain Data after returning
// unless it copies it. The returned function unsubscribes.
func (s *Server) Subscribe(fn func(Event)) (cancel func()) {
	s.mu.Lock()
	id := s.nextID
	s.nextID++
	s.subs[id] = fn
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.subs, id)
		s.mu.Unlock()
	}
}

func (s *Server) publish(e Event) {
	s.mu.RLock()
	fns := make([]func(Event), 0, len(s.subs))
	for _, f := range s.subs {
		fns = append(fns, f)
	}
	s.mu.RUnlock()
	for _, f := range fns {
		f(e)
	}
}
