package webrtc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
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

// conn is both roles' session.Channel. Goroutines: relayLoop reads the
// relay and handles signalling; sigLoop writes signalling so relayLoop
// never blocks on a relay write; dcLoop reads the data channel.
//
// Files by concern: this one has the Channel surface and the session's
// end; relay.go the relay loops and the signals that drive the pure
// switch-over machine (switchover.go); attempt.go the pion offer/answer
// round; datachannel.go the data channel's reads and writes.
type conn struct {
	relay session.Channel
	cfg   Config
	log   *slog.Logger
	role  role

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

	mu      sync.Mutex // guards the fields below
	sw      switchover // the switch-over state: where output goes, whether the channel is open
	attempt *attempt
	dc      *pion.DataChannel
	rwc     datachannel.ReadWriteCloser
	maxSend int
	dcOwned bool            // dcQ belongs to dcLoop, or is already closed
	queued  []session.Frame // agent: written while pending or flushing
	queuedN int

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
		relay: relay, cfg: cfg, role: r, sw: switchover{role: r},
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
		switch c.sw.out {
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

// Switched is closed once this side's output has moved to the data channel
// and the webrtc0/1/2 exchange is complete (session.Switcher), the same
// moment OnSwitched is called: a handler that must act after a switch
// learns of it without a callback wired through its caller.
func (c *conn) Switched() <-chan struct{} { return c.switched }

// Close ends the session: it lets the data channel deliver what was
// written (bounded), then closes the peer connection and the relay.
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
	dc, out := c.dc, c.sw.out
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
