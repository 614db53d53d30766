package webrtc

// One offer/answer round in pion: the peer connection, ICE gathering, the
// offer (client) or answer (agent), and what happens when the data channel
// opens or the attempt fails.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/meshgo/meshagent/proto/session"
)

// attempt is one offer/answer round; at most one runs at a time.
type attempt struct {
	pc    *pion.PeerConnection
	done  chan error // the attempt's outcome, for Offer; nil = switched
	timer *time.Timer
}

// begin registers a new attempt, or says why none may start.
func (c *conn) begin() (*attempt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.endedLocked():
		return nil, fmt.Errorf("webrtc: %w", session.ErrClosed)
	case c.sw.dcOpen:
		return nil, errors.New("webrtc: already on a data channel")
	case c.attempt != nil:
		return nil, errors.New("webrtc: a switch-over is already under way")
	}
	a := &attempt{done: make(chan error, 1)}
	c.attempt = a
	return a, nil
}

// setup creates the attempt's peer connection and wires its callbacks.
func (c *conn) setup(a *attempt) (*pion.PeerConnection, error) {
	pc, err := newPeer(c.cfg)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	a.pc = pc
	c.mu.Unlock()
	pc.OnConnectionStateChange(func(s pion.PeerConnectionState) { c.peerState(a, s) })
	return pc, nil
}

// gather waits for ICE gathering: the peers exchange one description each,
// with every candidate in it (§5.3).
func (c *conn) gather(ctx context.Context, done <-chan struct{}) error {
	t := time.NewTimer(c.timeout())
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-t.C:
		return errors.New("ICE gathering timed out")
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ended:
		return session.ErrClosed
	}
}

// answer handles the client's offer (agent side).
func (c *conn) answer(sdp string) {
	a, err := c.begin()
	if err != nil {
		c.log.Info("offer ignored", "why", err)
		return
	}
	c.log.Debug("offer received", "candidates", candidateLines(sdp))
	pc, err := c.setup(a)
	if err != nil {
		c.fail(a, abandoned("peer connection", err))
		return
	}
	pc.OnDataChannel(func(dc *pion.DataChannel) {
		dc.OnOpen(func() { c.opened(a, dc) })
	})
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeOffer, SDP: sdp}); err != nil {
		c.fail(a, abandoned("offer refused", err))
		return
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		c.fail(a, abandoned("create answer", err))
		return
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(ans); err != nil {
		c.fail(a, abandoned("set answer", err))
		return
	}
	if err := c.gather(c.bg, gathered); err != nil {
		c.fail(a, abandoned("gathering", err))
		return
	}
	c.armTimer(a)
	c.sendSig(sigAnswer, pc.LocalDescription().SDP)
	c.log.Debug("answered offer")
}

// armTimer abandons the attempt if the channel does not open in time.
func (c *conn) armTimer(a *attempt) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.sw.dcOpen {
		a.timer = time.AfterFunc(c.timeout(), func() {
			c.fail(a, abandoned("the data channel did not open in time", nil))
		})
	}
}

// offer runs the client side of an attempt.
func (c *conn) offer(ctx context.Context) error {
	a, err := c.begin()
	if err != nil {
		return err
	}
	pc, err := c.setup(a)
	if err != nil {
		err = abandoned("peer connection", err)
		c.fail(a, err)
		return err
	}
	// Default options: ordered and reliable, as the browser asks.
	dc, err := pc.CreateDataChannel("DataChannel", nil)
	if err != nil {
		err = abandoned("data channel", err)
		c.fail(a, err)
		return err
	}
	dc.OnOpen(func() { c.opened(a, dc) })
	off, err := pc.CreateOffer(nil)
	if err != nil {
		err = abandoned("create offer", err)
		c.fail(a, err)
		return err
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(off); err != nil {
		err = abandoned("set offer", err)
		c.fail(a, err)
		return err
	}
	if err := c.gather(ctx, gathered); err != nil {
		err = abandoned("gathering", err)
		c.fail(a, err)
		return err
	}
	c.armTimer(a)
	c.sendSig(sigOffer, pc.LocalDescription().SDP)
	t := time.NewTimer(2 * c.timeout())
	defer t.Stop()
	select {
	case err := <-a.done:
		return err
	case <-ctx.Done():
		err = abandoned("cancelled", ctx.Err())
	case <-t.C:
		err = abandoned("switch-over timed out", nil)
	}
	c.fail(a, err) // no effect once the channel is open: we are committed
	return err
}

// fail abandons an attempt that has not opened its data channel; the
// session stays on the relay. Once the channel is open it does nothing:
// from then on failures end the session (peerState, dcLoop).
func (c *conn) fail(a *attempt, err error) {
	c.mu.Lock()
	if c.attempt != a || c.sw.dcOpen {
		c.mu.Unlock()
		return
	}
	c.attempt = nil
	c.mu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
	}
	c.log.Info("WebRTC switch-over abandoned; the session stays on the relay", "err", err)
	if a.pc != nil {
		go a.pc.Close()
	}
	select {
	case a.done <- err:
	default:
	}
}

func (c *conn) peerState(a *attempt, s pion.PeerConnectionState) {
	c.log.Debug("peer connection", "state", s)
	if s != pion.PeerConnectionStateFailed && s != pion.PeerConnectionStateClosed {
		return
	}
	c.mu.Lock()
	live := c.attempt == a && c.sw.dcOpen
	c.mu.Unlock()
	if live {
		c.end(fmt.Errorf("webrtc: peer connection %s: %w", s, session.ErrClosed))
		return
	}
	c.fail(a, abandoned("peer connection "+s.String(), nil))
}

// opened runs when the attempt's data channel opens on this side.
func (c *conn) opened(a *attempt, dc *pion.DataChannel) {
	rwc, err := dc.Detach()
	if err != nil {
		c.fail(a, abandoned("detach", err))
		return
	}
	c.mu.Lock()
	if c.attempt != a || c.sw.dcOpen || c.endedLocked() {
		c.mu.Unlock()
		rwc.Close()
		return
	}
	c.dc, c.rwc, c.dcOwned = dc, rwc, true
	c.maxSend = int(a.pc.SCTP().GetCapabilities().MaxMessageSize)
	if c.maxSend <= 0 {
		c.maxSend = 65535
	}
	if a.timer != nil {
		a.timer.Stop()
	}
	dc.SetBufferedAmountLowThreshold(lowWater)
	dc.OnBufferedAmountLow(func() {
		select {
		case c.lowCh <- struct{}{}:
		default:
		}
	})
	acts := c.stepLocked(evOpened)
	c.mu.Unlock()
	c.do(acts)
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		if p, err := a.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
			c.log.Debug("data channel open", "label", dc.Label(), "maxMessage", c.maxSend,
				"local", p.Local.String(), "remote", p.Remote.String())
		}
	}
	go c.dcLoop(rwc)
}

// candidateLines lists the a=candidate lines of an SDP, for diagnostics:
// which addresses a browser offered is the first question when ICE fails.
func candidateLines(sdp string) []string {
	var out []string
	for _, l := range strings.Split(sdp, "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "a=candidate:") {
			out = append(out, l)
		}
	}
	return out
}
