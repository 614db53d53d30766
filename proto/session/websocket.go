package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// wsChannel adapts a gorilla WebSocket connection to Channel.
type wsChannel struct {
	c         *websocket.Conn
	writeMu   sync.Mutex
	closeOnce sync.Once
	closed    chan struct{}
}

// WebSocket wraps an established WebSocket connection as a Channel. Text
// and binary frames map to Frame.Binary; a context deadline becomes the
// socket deadline, and a cancelled context unblocks the call by closing the
// channel, because gorilla cannot abort a pending read otherwise.
func WebSocket(c *websocket.Conn) Channel {
	return &wsChannel{c: c, closed: make(chan struct{})}
}

func (w *wsChannel) Read(ctx context.Context) (Frame, error) {
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	typ, r, err := w.c.NextReader()
	var data []byte
	if err == nil {
		data, err = readMessage(r)
	}
	if err != nil {
		if ctx.Err() != nil {
			return Frame{}, ctx.Err()
		}
		return Frame{}, w.wrap("websocket read", err)
	}
	return Frame{Binary: typ == websocket.BinaryMessage, Data: data}, nil
}

func (w *wsChannel) Write(ctx context.Context, f Frame) error {
	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	dl, ok := ctx.Deadline()
	if !ok {
		dl = time.Time{}
	}
	w.c.SetWriteDeadline(dl)
	stop := context.AfterFunc(ctx, func() { w.Close() })
	defer stop()
	typ := websocket.TextMessage
	if f.Binary {
		typ = websocket.BinaryMessage
	}
	if err := w.c.WriteMessage(typ, f.Data); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return w.wrap("websocket write", err)
	}
	return nil
}

func (w *wsChannel) wrap(op string, err error) error {
	select {
	case <-w.closed:
		return fmt.Errorf("%s: %w", op, ErrClosed)
	default:
	}
	var ce *websocket.CloseError
	// ErrCloseSent: the peer's close frame arrived and was answered, so
	// the channel is closed though this side never called Close.
	if errors.As(err, &ce) || errors.Is(err, websocket.ErrCloseSent) {
		return fmt.Errorf("%s: %w (%v)", op, ErrClosed, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Close sends a close frame (best effort, bounded) and closes the socket.
func (w *wsChannel) Close() error {
	var err error
	w.closeOnce.Do(func() {
		close(w.closed)
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = w.c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		err = w.c.Close()
	})
	return err
}

// scratchSize is the pooled read buffer: one relay chunk (MeshCentral's
// clients send at most 64 KiB per frame); a larger message grows a private
// copy.
const scratchSize = 64 << 10

var scratchPool = sync.Pool{New: func() any { b := make([]byte, scratchSize); return &b }}

// Recycle gives a frame's buffer back for reuse once the caller that read
// it is done with it and holds no other reference (the files handler after
// writing an upload chunk to disk). Buffers that did not come from the pool
// are left to the collector, and not calling Recycle is always safe.
func Recycle(data []byte) {
	if cap(data) != scratchSize {
		return
	}
	b := data[:scratchSize]
	scratchPool.Put(&b)
}

// readMessage returns the rest of r. gorilla's ReadMessage grows its result
// from 512 bytes by doubling, which left about three times each frame's size
// as garbage: during a 50 MiB upload that garbage, not live data, set the
// agent's peak RSS. Here a message of at least half a pooled buffer is
// returned in that buffer (the caller may Recycle it); a smaller one is
// copied out so a queued small frame does not pin 64 KiB.
func readMessage(r io.Reader) ([]byte, error) {
	bp := scratchPool.Get().(*[]byte)
	buf := *bp
	n := 0
	for {
		if n == len(buf) {
			// Full: a message of exactly one chunk ends here, so probe
			// before growing (gorilla says EOF only on the next Read).
			var probe [1]byte
			m, err := r.Read(probe[:])
			if m == 0 && errors.Is(err, io.EOF) {
				break
			}
			grown := make([]byte, 2*len(buf))
			copy(grown, buf)
			buf = grown
			n += copy(buf[n:], probe[:m])
			if err != nil && !errors.Is(err, io.EOF) {
				scratchPool.Put(bp)
				return nil, err
			}
			if errors.Is(err, io.EOF) {
				break
			}
			continue
		}
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			scratchPool.Put(bp)
			return nil, err
		}
	}
	if len(buf) != scratchSize {
		scratchPool.Put(bp)
		return buf[:n], nil // a private, grown buffer
	}
	if n >= scratchSize/2 {
		return buf[:n], nil // handed out; comes back through Recycle or the collector
	}
	data := make([]byte, n)
	copy(data, buf[:n])
	scratchPool.Put(bp)
	return data, nil
}
