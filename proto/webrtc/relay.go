package webrtc

// The relay side of a conn: reading it (signalling is consumed here, the
// rest queued for Read), writing signalling, and feeding the signals to the
// switch-over machine (switchover.go).

import (
	"fmt"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/meshgo/meshagent/proto/session"
)

// relayLoop reads the relay: signalling is handled here, everything else
// is queued for Read in arrival order.
func (c *conn) relayLoop() {
	defer close(c.relayQ)
	for {
		f, err := c.relay.Read(c.bg)
		if err != nil {
			c.end(fmt.Errorf("webrtc: relay: %w", err))
			return
		}
		if !f.Binary {
			if s, ok := parseSignal(f.Data); ok {
				c.onSignal(s)
				continue
			}
		}
		if !c.push(item{f: f}) {
			return
		}
	}
}

func (c *conn) push(it item) bool {
	select {
	case c.relayQ <- it:
		return true
	case <-c.closed:
		return false
	case <-c.bg.Done():
		return false
	}
}

// sigLoop writes queued signalling on the relay. It takes relayMu, so a
// marker queued after the output moved always follows the last handler
// frame written on the relay.
func (c *conn) sigLoop() {
	for {
		select {
		case s := <-c.sigQ:
			c.relayMu.Lock()
			err := c.relay.Write(c.bg, session.Frame{Data: s.encode()})
			c.relayMu.Unlock()
			if err != nil {
				c.end(fmt.Errorf("webrtc: relay: %w", err))
				return
			}
		case <-c.bg.Done():
			return
		}
	}
}

func (c *conn) sendSig(k sigKind, sdp string) {
	select {
	case c.sigQ <- signal{kind: k, sdp: sdp}:
	default:
		c.log.Warn("signalling queue full, message dropped", "kind", k)
	}
}

// onSignal runs on relayLoop, in relay order. The answer is the client's
// pion plumbing; the rest drives the switch-over machine.
func (c *conn) onSignal(s signal) {
	if c.role == roleAgent && s.kind == sigOffer {
		go c.answer(s.sdp)
		return
	}
	if c.role == roleClient && s.kind == sigAnswer {
		c.mu.Lock()
		a := c.attempt
		c.mu.Unlock()
		if a == nil || a.pc == nil {
			return
		}
		if err := a.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: s.sdp}); err != nil {
			c.fail(a, abandoned("answer refused", err))
		}
		return
	}
	var e swEvent
	switch s.kind {
	case sigWebRTC0:
		e = evWebRTC0
	case sigWebRTC1:
		e = evWebRTC1
	case sigWebRTC2:
		e = evWebRTC2
	default:
		return
	}
	c.step(e)
}

// step feeds e to the switch-over machine and carries out its actions.
func (c *conn) step(e swEvent) {
	c.mu.Lock()
	acts := c.stepLocked(e)
	c.mu.Unlock()
	c.do(acts)
}

// stepLocked feeds e to the machine; c.mu is held. The caller runs the
// returned actions with do once it has released c.mu.
func (c *conn) stepLocked(e swEvent) []swAction {
	acts, ignored := c.sw.step(e)
	if ignored {
		c.log.Debug("switch-over event ignored", "event", e, "out", c.sw.out)
	}
	return acts
}

// do carries out the machine's actions in order; c.mu is not held.
func (c *conn) do(acts []swAction) {
	for _, a := range acts {
		switch a {
		case actSendWebRTC0:
			c.sendSig(sigWebRTC0, "")
		case actSendWebRTC1:
			c.sendSig(sigWebRTC1, "")
		case actSendWebRTC2:
			c.sendSig(sigWebRTC2, "")
		case actMarker:
			c.push(item{marker: true})
		case actArmPending:
			time.AfterFunc(c.timeout(), func() { c.step(evPendingTimeout) })
		case actFlush:
			go c.flushQueued()
		case actSwitched:
			c.markSwitched()
		case actEndPending:
			c.end(fmt.Errorf("webrtc: no webrtc2 from the client within %v: %w", c.timeout(), session.ErrClosed))
		}
	}
}
