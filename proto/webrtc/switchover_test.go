package webrtc

import (
	"fmt"
	"slices"
	"testing"
)

// allEvents is every event the machine knows.
var allEvents = []swEvent{evOpened, evWebRTC0, evWebRTC1, evWebRTC2, evFlushed, evPendingTimeout}

type swWant struct {
	next switchover
	acts []swAction
}

// TestSwitchoverTransitions feeds every event to every state a session
// can be in, for both roles (and the browser-timed client). An event
// missing from a state's row is invalid there: the machine must ignore it,
// changing nothing and asking for nothing.
func TestSwitchoverTransitions(t *testing.T) {
	agent := func(out outState, open, marker bool) switchover {
		return switchover{role: roleAgent, out: out, dcOpen: open, markerOut: marker}
	}
	client := func(early bool, out outState, open, peer, sent, marker bool) switchover {
		return switchover{role: roleClient, early: early, out: out, dcOpen: open, peerReady: peer, sentReady: sent, markerOut: marker}
	}
	type row struct {
		name  string
		state switchover
		valid map[swEvent]swWant
	}
	rows := []row{
		// Agent: open -> webrtc0 (client ready) -> pending -> webrtc2 -> flushing -> flushed -> dc.
		{"agent start", agent(outRelay, false, false), map[swEvent]swWant{
			evOpened:  {agent(outRelay, true, false), []swAction{actSendWebRTC0}},
			evWebRTC1: {agent(outRelay, false, true), []swAction{actMarker}}, // no channel yet: no webrtc2
		}},
		{"agent marker before open", agent(outRelay, false, true), map[swEvent]swWant{
			evOpened: {agent(outRelay, true, true), []swAction{actSendWebRTC0}},
		}},
		{"agent open", agent(outRelay, true, false), map[swEvent]swWant{
			evWebRTC0: {agent(outPending, true, false), []swAction{actSendWebRTC1, actArmPending}},
			evWebRTC1: {agent(outRelay, true, true), []swAction{actMarker, actSendWebRTC2}},
		}},
		{"agent pending", agent(outPending, true, false), map[swEvent]swWant{
			evWebRTC1:        {agent(outPending, true, true), []swAction{actMarker, actSendWebRTC2}},
			evWebRTC2:        {agent(outFlushing, true, false), []swAction{actFlush}},
			evPendingTimeout: {agent(outPending, true, false), []swAction{actEndPending}},
		}},
		{"agent pending, client's relay done", agent(outPending, true, true), map[swEvent]swWant{
			evWebRTC2:        {agent(outFlushing, true, true), []swAction{actFlush}},
			evPendingTimeout: {agent(outPending, true, true), []swAction{actEndPending}},
		}},
		{"agent flushing", agent(outFlushing, true, true), map[swEvent]swWant{
			evFlushed: {agent(outDC, true, true), []swAction{actSwitched}},
		}},
		{"agent flushing, no webrtc1 yet", agent(outFlushing, true, false), map[swEvent]swWant{
			evWebRTC1: {agent(outFlushing, true, true), []swAction{actMarker, actSendWebRTC2}},
			evFlushed: {agent(outDC, true, false), []swAction{actSwitched}},
		}},
		{"agent switched", agent(outDC, true, true), nil},

		// Client (agent-timed): open + agent's webrtc0 -> our webrtc0 -> agent's webrtc1 -> dc.
		{"client start", client(false, outRelay, false, false, false, false), map[swEvent]swWant{
			evOpened:  {client(false, outRelay, true, false, false, false), []swAction{}},
			evWebRTC0: {client(false, outRelay, false, true, false, false), []swAction{}},
		}},
		{"client open", client(false, outRelay, true, false, false, false), map[swEvent]swWant{
			evWebRTC0: {client(false, outRelay, true, true, true, false), []swAction{actSendWebRTC0}},
		}},
		{"client agent ready, not open", client(false, outRelay, false, true, false, false), map[swEvent]swWant{
			evOpened: {client(false, outRelay, true, true, true, false), []swAction{actSendWebRTC0}},
		}},
		{"client ready sent", client(false, outRelay, true, true, true, false), map[swEvent]swWant{
			evWebRTC1: {client(false, outDC, true, true, true, true), []swAction{actMarker, actSendWebRTC1, actSendWebRTC2, actSwitched}},
		}},
		{"client switched", client(false, outDC, true, true, true, true), nil},

		// Browser-timed client: output moves at open, webrtc1 goes with webrtc0.
		{"early client start", client(true, outRelay, false, false, false, false), map[swEvent]swWant{
			evOpened:  {client(true, outDC, true, false, false, false), []swAction{}},
			evWebRTC0: {client(true, outRelay, false, true, false, false), []swAction{}},
		}},
		{"early client open", client(true, outDC, true, false, false, false), map[swEvent]swWant{
			evWebRTC0: {client(true, outDC, true, true, true, false), []swAction{actSendWebRTC0, actSendWebRTC1}},
		}},
		{"early client agent ready, not open", client(true, outRelay, false, true, false, false), map[swEvent]swWant{
			evOpened: {client(true, outDC, true, true, true, false), []swAction{actSendWebRTC0, actSendWebRTC1}},
		}},
		{"early client ready sent", client(true, outDC, true, true, true, false), map[swEvent]swWant{
			evWebRTC1: {client(true, outDC, true, true, true, true), []swAction{actMarker, actSendWebRTC2, actSwitched}},
		}},
		{"early client switched", client(true, outDC, true, true, true, true), nil},
	}
	for _, r := range rows {
		for _, e := range allEvents {
			want, valid := r.valid[e]
			if !valid {
				want = swWant{next: r.state}
			}
			t.Run(fmt.Sprintf("%s/%s", r.name, e), func(t *testing.T) {
				m := r.state
				acts, ignored := m.step(e)
				if ignored == valid {
					t.Errorf("ignored = %v, want %v", ignored, !valid)
				}
				if m != want.next {
					t.Errorf("next state %+v, want %+v", m, want.next)
				}
				if !slices.Equal(acts, want.acts) {
					t.Errorf("actions %v, want %v", acts, want.acts)
				}
			})
		}
	}
}

// TestSwitchoverRuns plays whole sessions through the machine: every
// path ends with the output on the data channel, the marker queued once
// and the switch reported once.
func TestSwitchoverRuns(t *testing.T) {
	runs := []struct {
		name   string
		m      switchover
		events []swEvent
	}{
		{"agent", switchover{role: roleAgent}, []swEvent{evOpened, evWebRTC0, evWebRTC1, evWebRTC2, evFlushed}},
		{"agent, webrtc2 before webrtc1's marker", switchover{role: roleAgent}, []swEvent{evOpened, evWebRTC0, evWebRTC2, evWebRTC1, evFlushed}},
		{"client", switchover{role: roleClient}, []swEvent{evOpened, evWebRTC0, evWebRTC1}},
		{"client, webrtc0 first", switchover{role: roleClient}, []swEvent{evWebRTC0, evOpened, evWebRTC1}},
		{"early client", switchover{role: roleClient, early: true}, []swEvent{evOpened, evWebRTC0, evWebRTC1}},
	}
	for _, r := range runs {
		t.Run(r.name, func(t *testing.T) {
			m := r.m
			var all []swAction
			for _, e := range r.events {
				acts, ignored := m.step(e)
				if ignored {
					t.Fatalf("%v ignored in %+v", e, m)
				}
				all = append(all, acts...)
			}
			if m.out != outDC {
				t.Errorf("output %v, want dc", m.out)
			}
			count := func(a swAction) int {
				n := 0
				for _, x := range all {
					if x == a {
						n++
					}
				}
				return n
			}
			if count(actMarker) != 1 || count(actSwitched) != 1 || count(actSendWebRTC0) != 1 {
				t.Errorf("actions %v: want one marker, one switched, one webrtc0", all)
			}
		})
	}
}
