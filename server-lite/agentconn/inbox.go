package agentconn

import (
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

type item struct {
	data []byte
	pong bool
}

// maxQueued bounds what the read loop may read ahead of the handler: an
// agent that sends faster than its messages are handled is no longer read
// (TCP back pressure) rather than queued without limit.
const maxQueued = 32

// inbox hands items from the read loop to a handler goroutine that exists
// only while items are queued, so an idle agent costs no second goroutine
// and its read loop's stack stays small. Items are handled in order.
type inbox struct {
	mu      sync.Mutex
	items   []item
	running bool
	failed  bool          // a handler error closed the connection: drop the rest
	room    chan struct{} // closed when the reader, waiting for room, may go on
	idle    chan struct{} // closed when the handler goroutine stops
}

// put queues it, starting the handler goroutine if none runs, and blocks
// while maxQueued items are waiting.
func (in *inbox) put(c *conn, it item) {
	in.mu.Lock()
	for len(in.items) >= maxQueued {
		ch := make(chan struct{})
		in.room = ch
		in.mu.Unlock()
		<-ch
		in.mu.Lock()
	}
	in.items = append(in.items, it)
	if !in.running {
		in.running = true
		in.idle = make(chan struct{})
		go in.drain(c)
	}
	in.mu.Unlock()
}

func (in *inbox) drain(c *conn) {
	for {
		in.mu.Lock()
		if len(in.items) == 0 {
			in.running = false
			in.items = nil // an idle agent keeps no queue
			close(in.idle)
			in.mu.Unlock()
			return
		}
		it := in.items[0]
		in.items[0] = item{}
		in.items = in.items[1:]
		failed := in.failed
		if in.room != nil {
			close(in.room)
			in.room = nil
		}
		in.mu.Unlock()
		if failed {
			continue
		}
		if err := c.handleItem(it); err != nil {
			in.mu.Lock()
			in.failed = true
			in.mu.Unlock()
			c.close(err.Error())
		}
	}
}

// wait returns once no handler goroutine runs.
func (in *inbox) wait() {
	in.mu.Lock()
	idle, running := in.idle, in.running
	in.mu.Unlock()
	if running {
		<-idle
	}
}

func (c *conn) handleItem(it item) error {
	if !it.pong {
		return c.handle(it.data)
	}
	// WriteControl may run beside other writes (gorilla/websocket).
	err := c.ws.WriteControl(websocket.PongMessage, it.data, time.Now().Add(5*time.Second))
	if errors.Is(err, websocket.ErrCloseSent) {
		return nil
	}
	return err
}
