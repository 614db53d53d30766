package session

import (
	"context"
	"errors"
	"fmt"
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
	typ, data, err := w.c.ReadMessage()
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
	if errors.As(err, &ce) {
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
