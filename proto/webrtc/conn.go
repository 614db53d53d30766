package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/meshgo/meshagent/proto/session"
	"github.com/pion/datachannel"
	pion "github.com/pion/webrtc/v4"
)

type role int

const (
	roleAgent  role = iota // answers offers (meshcore.js)
	roleClient             // makes the offer (agent-redir-ws)
)

func (r role) String() string {
	if r == roleAgent {
		return "agent"
	}
	return "client"
}

// outState is where Write sends frames.
type outState int

const (
	outRelay    outState = iota
	outPending           // agent: webrtc1 sent, waiting for the client's webrtc2
	outFlushing          // agent: sending what Write queued while pending
	outDC
)

const (
	relayDepth = 64 // relay frames read ahead of the handler
	dcDepth    = 64 // data-channel messages read ahead of the handler
	// The data channel's send buffer is kept between these marks: high
	// enough to fill loopback and LAN pipes, low enough to bound memory.
	highWater = 4 << 20
	lowWater  = 1 << 20
	// maxQueued bounds what the agent's Write queues between its webrtc1
	// and the data channel taking over; past it Write waits.
	maxQueued = 4 << 20
	// drainGrace is how long the surviving transport may still deliver
	// what it already holds after the other one ended the session.
	drainGrace = 2 * time.Second
	// flushTimeout bounds Close's wait for the data channel to deliver.
	flushTimeout   = 2 * time.Second
	defaultTimeout = 30 * time.Second
)

// item is one relay frame in read order, or the marker after which the
// peer sends no more data on the relay.
type item struct {
	f      session.Frame
	marker bool
}

// attempt is one offer/answer round; at most one runs at a time.
type attempt struct {
	pc    *pion.PeerConnection
	done  chan error // the attempt's outcome, for Offer; nil = switched
	timer *time.Timer
}

// conn is both roles' session.Channel. Goroutines: relayLoop reads the
// relay and handles signalling; sigLoop writes signalling so relayLoop
// never blocks on a relay write; dcLoop reads the data channel.
type conn struct {
	relay session.Channel
	cfg   Config
	log   *slog.Logger
	role  role
	// early makes a client switch its output as soon as the data channel
	// opens, as the browser does; the default waits for the agent's
	// webrtc1, which also suits the reference agent (it drops data-channel
	// data that arrives before it processed webrtc0, §5.4). Tests use
	// early to play the browser.
	early bool

	bg   context.Context // lives until teardown
	stop context.CancelFunc

	relayQ   chan item
	dcQ      chan session.Frame
	dcDone   chan struct{} // closed with dcQ
	sigQ     chan signal
	lowCh    chan struct{}
	closed   chan struct{} // local Close
	ended    chan struct{} // the session is over
	switched chan struct{}

	closeOnce, endOnce, downOnce, switchOnce sync.Once
	endErr                                   error

	relayMu sync.Mutex // serializes relay writes: handler frames and signalling

	mu        sync.Mutex // guards the fields below
	out       outState
	attempt   *attempt
	dc        *pion.DataChannel
	rwc       datachannel.ReadWriteCloser
	maxSend   int
	dcOpen    bool
	dcOwned   bool            // dcQ belongs to dcLoop, or is already closed
	peerReady bool            // client: the agent's webrtc0 arrived
	sentReady bool            // client: our webrtc0 is queued
	queued    []session.Frame // agent: written while pending or flushing
	queuedN   int

	// Read side, touched only by the (single) Read caller.
	rq   <-chan item
	dq   <-chan session.Frame
	inDC bool
}

func newConn(relay session.Channel, cfg Config, r role) *conn {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	bg, stop := context.WithCancel(context.Background())
	c := &conn{
		relay: relay, cfg: cfg, role: r,
		log:    log.With("component", "webrtc", "role", r.String()),
		bg:     bg,
		stop:   stop,
		relayQ: make(chan item, relayDepth),
		dcQ:    make(chan session.Frame, dcDepth),
		dcDone: make(chan struct{}),
		sigQ:   make(chan signal, 16),
		lowCh:  make(chan struct{}, 1),
		closed: make(chan struct{}), ended: make(chan struct{}), switched: make(chan struct{}),
	}
	c.rq, c.dq = c.relayQ, c.dcQ
	go c.relayLoop()
	go c.sigLoop()
	return c
}

func (c *conn) timeout() time.Duration {
	if c.cfg.Timeout > 0 {
		return c.cfg.Timeout
	}
	return defaultTimeout
}

func (c *conn) endedLocked() bool {
	select {
	case <-c.ended:
		return true
	default:
		return false
	}
}

// Read returns relay frames until the peer's end-of-relay-data marker, then
// relay and data-channel frames as they come. Data-channel messages are
// read (and acknowledged) from the moment the channel opens; they only wait
// here for the relay frames sent before them.
func (c *conn) Read(ctx context.Context) (session.Frame, error) {
	for {
		select {
		case <-c.closed:
			return session.Frame{}, fmt.Errorf("webrtc read: %w", session.ErrClosed)
		default:
		}
		if c.rq == nil && c.dq == nil {
			return session.Frame{}, c.endError()
		}
		var dq <-chan session.Frame
		if c.inDC || c.rq == nil {
			dq = c.dq
		}
		select {
		case it, ok := <-c.rq:
			if !ok {
				c.rq = nil // relay over: nothing can precede the data channel any more
				continue
			}
			if it.marker {
				c.inDC = true
				continue
			}
			return it.f, nil
		case f, ok := <-dq:
			if !ok {
				c.dq = nil
				continue
			}
			return f, nil
		case <-c.closed:
			return session.Frame{}, fmt.Errorf("webrtc read: %w", session.ErrClosed)
		case <-ctx.Done():
			return session.Frame{}, ctx.Err()
		}
	}
}

func (c *conn) endError() error {
	<-c.ended
	if errors.Is(c.endErr, session.ErrClosed) {
		return c.endErr
	}
	return fmt.Errorf("%w: %v", session.ErrClosed, c.endErr)
}

// Write sends on the relay until the switch-over, then on the data channel.
// The agent's writes are queued between its webrtc1 and the client's
// webrtc2, so the client has every relay frame before the first
// data-channel one; past maxQueued, Write waits.
func (c *conn) Write(ctx context.Context, f session.Frame) error {
	var timeout <-chan time.Time
	for {
		c.mu.Lock()
		if c.endedLocked() {
			c.mu.Unlock()
			return fmt.Errorf("webrtc write: %w", session.ErrClosed)
		}
		switch c.out {
		case outRelay:
			c.relayMu.Lock()
			c.mu.Unlock()
			err := c.relay.Write(ctx, f)
			c.relayMu.Unlock()
			return err
		case outDC:
			c.mu.Unlock()
			return c.writeDC(ctx, f)
		case outPending, outFlushing:
			// Queue rather than block, so a handler that reads and writes
			// on one goroutine keeps reading while the switch completes.
			if c.queuedN+len(f.Data) <= maxQueued || len(c.queued) == 0 {
				c.queued = append(c.queued, session.Frame{Binary: f.Binary, Data: bytes.Clone(f.Data)})
				c.queuedN += len(f.Data)
				c.mu.Unlock()
				return nil
			}
		}
		c.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(c.timeout())
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-c.switched:
		case <-c.ended:
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			c.end(fmt.Errorf("webrtc: no webrtc2 from the client within %v: %w", c.timeout(), session.ErrClosed))
		}
	}
}

func (c *conn) writeDC(ctx context.Context, f session.Frame) error {
	if len(f.Data) > c.maxSend {
		if !f.Binary || !c.cfg.FragmentBinary {
			// Too big for one message and not fragmentable: the relay is
			// still open and the peer reads it too.
			c.relayMu.Lock()
			defer c.relayMu.Unlock()
			return c.relay.Write(ctx, f)
		}
		for p := f.Data; len(p) > 0; {
			n := min(len(p), c.maxSend)
			if err := c.sendDC(ctx, p[:n], false); err != nil {
				return err
			}
			p = p[n:]
		}
		return nil
	}
	return c.sendDC(ctx, f.Data, !f.Binary)
}

func (c *conn) sendDC(ctx context.Context, p []byte, text bool) error {
	for c.dc.BufferedAmount() > highWater {
		t := time.NewTimer(100 * time.Millisecond) // in case a low event raced us
		select {
		case <-c.lowCh:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-c.ended:
			t.Stop()
			return fmt.Errorf("webrtc write: %w", session.ErrClosed)
		}
		t.Stop()
	}
	if _, err := c.rwc.WriteDataChannel(p, text); err != nil {
		err = fmt.Errorf("webrtc: data channel write: %w (%v)", session.ErrClosed, err)
		c.end(err)
		return err
	}
	return nil
}

// Close ends the session: it lets the data channel deliver what was
// written (bounded), then closes the peer connection and the relay.
// Switched is closed once this side's output has moved to the data channel
// and the webrtc0/1/2 exchange is complete (session.Switcher), the same
// moment OnSwitched is called: a handler that must act after a switch
// learns of it without a callback wired through its caller.
func (c *conn) Switched() <-chan struct{} { return c.switched }

func (c *conn) Close() error {
	c.closeOnce.Do(func() {
		c.flush()
		close(c.closed)
		c.end(fmt.Errorf("webrtc: closed: %w", session.ErrClosed))
		c.teardown()
	})
	return nil
}

func (c *conn) flush() {
	c.mu.Lock()
	dc, out := c.dc, c.out
	c.mu.Unlock()
	if dc == nil {
		return
	}
	deadline := time.Now().Add(flushTimeout)
	if out == outPending || out == outFlushing { // frames queued by Write
		select {
		case <-c.switched:
		case <-c.ended:
			return
		case <-time.After(flushTimeout):
			return
		}
	}
	for dc.BufferedAmount() > 0 && time.Now().Before(deadline) {
		select {
		case <-c.ended:
			return
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// end starts the end of the session once: Read drains what both
// transports already delivered, Write fails, and after a grace period for
// the surviving transport everything is closed.
func (c *conn) end(err error) {
	c.endOnce.Do(func() {
		c.mu.Lock()
		c.endErr = err
		close(c.ended)
		if !c.dcOwned {
			c.dcOwned = true
			close(c.dcQ)
			close(c.dcDone)
		}
		a := c.attempt
		c.mu.Unlock()
		if a != nil {
			select {
			case a.done <- err:
			default:
			}
		}
		c.log.Debug("session ending", "err", err)
		go func() {
			t := time.NewTimer(drainGrace)
			defer t.Stop()
			select {
			case <-c.dcDone:
			case <-t.C:
			case <-c.closed:
			}
			c.teardown()
		}()
	})
}

func (c *conn) teardown() {
	c.downOnce.Do(func() {
		c.mu.Lock()
		rwc := c.rwc
		var pc *pion.PeerConnection
		if c.attempt != nil {
			pc = c.attempt.pc
		}
		c.mu.Unlock()
		c.stop()
		if rwc != nil {
			rwc.Close()
		}
		if pc != nil {
			pc.Close()
		}
		c.relay.Close()
	})
}

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

// onSignal runs on relayLoop, in relay order.
func (c *conn) onSignal(s signal) {
	if c.role == roleAgent {
		switch s.kind {
		case sigOffer:
			go c.answer(s.sdp)
		case sigWebRTC0: // the client is ready: stop our relay output
			c.mu.Lock()
			if c.dcOpen && c.out == outRelay {
				c.out = outPending
				c.sendSig(sigWebRTC1, "")
				// Output is held until webrtc2: give up on a client that
				// never sends it rather than hold it forever.
				time.AfterFunc(c.timeout(), func() {
					c.mu.Lock()
					stuck := c.out == outPending
					c.mu.Unlock()
					if stuck {
						c.end(fmt.Errorf("webrtc: no webrtc2 from the client within %v: %w", c.timeout(), session.ErrClosed))
					}
				})
			}
			c.mu.Unlock()
		case sigWebRTC1: // the client sends no more data on the relay
			c.push(item{marker: true})
			c.mu.Lock()
			if c.dcOpen {
				c.sendSig(sigWebRTC2, "")
			}
			c.mu.Unlock()
		case sigWebRTC2: // the client has all our relay data
			c.mu.Lock()
			sw := c.out == outPending
			if sw {
				c.out = outFlushing
			}
			c.mu.Unlock()
			if sw {
				go c.flushQueued()
			}
		}
		return
	}
	switch s.kind {
	case sigAnswer:
		c.mu.Lock()
		a := c.attempt
		c.mu.Unlock()
		if a == nil || a.pc == nil {
			return
		}
		if err := a.pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: s.sdp}); err != nil {
			c.fail(a, abandoned("answer refused", err))
		}
	case sigWebRTC0:
		c.mu.Lock()
		c.peerReady = true
		c.readyLocked()
		c.mu.Unlock()
	case sigWebRTC1: // the agent sends no more data on the relay
		c.mu.Lock()
		ok := c.sentReady
		c.mu.Unlock()
		if !ok {
			return
		}
		c.push(item{marker: true})
		c.mu.Lock()
		if !c.early {
			c.out = outDC
			c.sendSig(sigWebRTC1, "")
		}
		c.sendSig(sigWebRTC2, "")
		c.mu.Unlock()
		c.markSwitched()
	}
}

// readyLocked sends the client's webrtc0 once the channel is open and the
// agent said webrtc0; a browser-timed client sends webrtc1 with it.
func (c *conn) readyLocked() {
	if !c.peerReady || !c.dcOpen || c.sentReady {
		return
	}
	c.sentReady = true
	c.sendSig(sigWebRTC0, "")
	if c.early {
		c.sendSig(sigWebRTC1, "")
	}
}

// flushQueued sends, in order, what Write queued while the switch was
// pending, then hands the output to the data channel.
func (c *conn) flushQueued() {
	for {
		c.mu.Lock()
		batch := c.queued
		c.queued, c.queuedN = nil, 0
		if len(batch) == 0 {
			c.out = outDC
			c.mu.Unlock()
			break
		}
		c.mu.Unlock()
		for _, f := range batch {
			if c.writeDC(c.bg, f) != nil {
				return // the session is ending
			}
		}
	}
	c.markSwitched()
}

func (c *conn) markSwitched() {
	c.switchOnce.Do(func() {
		close(c.switched)
		c.mu.Lock()
		a := c.attempt
		c.mu.Unlock()
		if a != nil {
			select {
			case a.done <- nil:
			default:
			}
		}
		c.log.Debug("switched to the data channel")
		if c.cfg.OnSwitched != nil {
			go c.cfg.OnSwitched()
		}
	})
}

// begin registers a new attempt, or says why none may start.
func (c *conn) begin() (*attempt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.endedLocked():
		return nil, fmt.Errorf("webrtc: %w", session.ErrClosed)
	case c.dcOpen:
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
	if !c.dcOpen {
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
	if c.attempt != a || c.dcOpen {
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
	live := c.attempt == a && c.dcOpen
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
	if c.attempt != a || c.dcOpen || c.endedLocked() {
		c.mu.Unlock()
		rwc.Close()
		return
	}
	c.dcOpen, c.dc, c.rwc, c.dcOwned = true, dc, rwc, true
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
	if c.role == roleAgent {
		c.sendSig(sigWebRTC0, "") // ready for the switch-over
	} else {
		if c.early {
			c.out = outDC
		}
		c.readyLocked()
	}
	c.mu.Unlock()
	if c.log.Enabled(context.Background(), slog.LevelDebug) {
		if p, err := a.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair(); err == nil && p != nil {
			c.log.Debug("data channel open", "label", dc.Label(), "maxMessage", c.maxSend,
				"local", p.Local.String(), "remote", p.Remote.String())
		}
	}
	go c.dcLoop(rwc)
}

// dcLoop reads the data channel from the moment it opens. It blocks when
// the handler is not reading, which closes the SCTP window: back pressure.
func (c *conn) dcLoop(rwc datachannel.ReadWriteCloser) {
	defer close(c.dcDone)
	defer close(c.dcQ)
	buf := make([]byte, maxMessage)
	for {
		n, isString, err := rwc.ReadDataChannel(buf)
		if err != nil {
			c.end(fmt.Errorf("webrtc: data channel ended: %w (%v)", session.ErrClosed, err))
			return
		}
		if isString && isDCClose(buf[:n]) {
			c.end(fmt.Errorf("webrtc: peer closed the data channel: %w", session.ErrClosed))
			return
		}
		f := session.Frame{Binary: !isString, Data: bytes.Clone(buf[:n])}
		select {
		case c.dcQ <- f:
		case <-c.closed:
			return
		case <-c.bg.Done():
			return
		}
	}
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
