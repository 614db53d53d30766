package webrtc

// The switch-over state machine (sessions.md §5.4), kept pure: no
// goroutines, no timers, no pion. conn feeds it events under its lock and
// carries out the actions it returns, in order, after the step. Invalid
// events (a webrtc2 nobody asked for, a second open...) change nothing and
// return no action; the step reports them as ignored.

// outState is where Write sends frames.
type outState int

const (
	outRelay    outState = iota
	outPending           // agent: webrtc1 sent, waiting for the client's webrtc2
	outFlushing          // agent: sending what Write queued while pending
	outDC
)

func (o outState) String() string {
	return [...]string{"relay", "pending", "flushing", "dc"}[o]
}

// swEvent is something that happened to the session.
type swEvent int

const (
	evOpened         swEvent = iota // our data channel opened
	evWebRTC0                       // the peer's webrtc0 arrived on the relay
	evWebRTC1                       // the peer's webrtc1 arrived
	evWebRTC2                       // the peer's webrtc2 arrived
	evFlushed                       // agent: everything queued while pending is sent
	evPendingTimeout                // agent: no webrtc2 within the timeout
)

func (e swEvent) String() string {
	return [...]string{"opened", "webrtc0", "webrtc1", "webrtc2", "flushed", "pending-timeout"}[e]
}

// swAction is something conn must do after a step.
type swAction int

const (
	actSendWebRTC0 swAction = iota // send webrtc0 on the relay
	actSendWebRTC1                 // send webrtc1
	actSendWebRTC2                 // send webrtc2
	actMarker                      // queue the end-of-relay-data marker for Read
	actArmPending                  // agent: start the webrtc2 timeout
	actFlush                       // agent: start sending the queued frames on the data channel
	actSwitched                    // the switch-over is complete
	actEndPending                  // agent: end the session, webrtc2 never came
)

func (a swAction) String() string {
	return [...]string{"send-webrtc0", "send-webrtc1", "send-webrtc2", "marker", "arm-pending", "flush", "switched", "end-pending"}[a]
}

// switchover is one session's switch-over state. The zero value with role
// and early set is the start: output on the relay, no data channel.
type switchover struct {
	role role
	// early makes a client switch its output as soon as the data channel
	// opens, as the browser does; the default waits for the agent's
	// webrtc1, which also suits the reference agent (it drops data-channel
	// data that arrives before it processed webrtc0, §5.4). Tests use
	// early to play the browser.
	early bool

	out       outState
	dcOpen    bool
	peerReady bool // client: the agent's webrtc0 arrived
	sentReady bool // client: our webrtc0 is sent
	markerOut bool // the end-of-relay-data marker is queued
}

// step applies e and returns the actions to take, in order; ignored is
// true when e is not valid in the current state (nothing changed).
func (m *switchover) step(e swEvent) (acts []swAction, ignored bool) {
	if m.role == roleAgent {
		acts = m.agentStep(e)
	} else {
		acts = m.clientStep(e)
	}
	return acts, acts == nil
}

func (m *switchover) agentStep(e swEvent) []swAction {
	switch e {
	case evOpened:
		if m.dcOpen {
			return nil
		}
		m.dcOpen = true
		return []swAction{actSendWebRTC0} // ready for the switch-over
	case evWebRTC0: // the client is ready: stop our relay output
		if !m.dcOpen || m.out != outRelay {
			return nil
		}
		m.out = outPending
		// Output is held until webrtc2: a timeout gives up on a client
		// that never sends it rather than hold it forever.
		return []swAction{actSendWebRTC1, actArmPending}
	case evWebRTC1: // the client sends no more data on the relay
		if m.markerOut {
			return nil
		}
		m.markerOut = true
		if m.dcOpen {
			return []swAction{actMarker, actSendWebRTC2}
		}
		return []swAction{actMarker}
	case evWebRTC2: // the client has all our relay data
		if m.out != outPending {
			return nil
		}
		m.out = outFlushing
		return []swAction{actFlush}
	case evFlushed:
		if m.out != outFlushing {
			return nil
		}
		m.out = outDC
		return []swAction{actSwitched}
	case evPendingTimeout:
		if m.out != outPending {
			return nil
		}
		return []swAction{actEndPending}
	}
	return nil
}

func (m *switchover) clientStep(e swEvent) []swAction {
	switch e {
	case evOpened:
		if m.dcOpen {
			return nil
		}
		m.dcOpen = true
		if m.early {
			m.out = outDC
		}
		return m.ready([]swAction{})
	case evWebRTC0:
		if m.peerReady {
			return nil
		}
		m.peerReady = true
		return m.ready([]swAction{})
	case evWebRTC1: // the agent sends no more data on the relay
		if !m.sentReady || m.markerOut {
			return nil
		}
		m.markerOut = true
		acts := []swAction{actMarker}
		if !m.early {
			m.out = outDC
			acts = append(acts, actSendWebRTC1)
		}
		return append(acts, actSendWebRTC2, actSwitched)
	}
	return nil // webrtc2, flushed and the pending timeout are the agent's
}

// ready sends the client's webrtc0 once the channel is open and the agent
// said webrtc0; a browser-timed (early) client sends webrtc1 with it. acts
// is non-nil so a valid event with nothing to do yet is not "ignored".
func (m *switchover) ready(acts []swAction) []swAction {
	if !m.peerReady || !m.dcOpen || m.sentReady {
		return acts
	}
	m.sentReady = true
	acts = append(acts, actSendWebRTC0)
	if m.early {
		acts = append(acts, actSendWebRTC1)
	}
	return acts
}
