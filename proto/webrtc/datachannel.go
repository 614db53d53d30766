package webrtc

// The data-channel side of a conn: writing with back pressure and
// fragmentation, flushing what the agent queued during the switch, and
// reading into the handler's queue.

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/meshgo/meshagent/proto/session"
	"github.com/pion/datachannel"
)

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

// flushQueued sends, in order, what Write queued while the switch was
// pending, then hands the output to the data channel.
func (c *conn) flushQueued() {
	var acts []swAction
	for {
		c.mu.Lock()
		batch := c.queued
		c.queued, c.queuedN = nil, 0
		if len(batch) == 0 {
			acts = c.stepLocked(evFlushed)
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
	c.do(acts)
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
