package sessionworker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
)

// ReqLog carries one of the worker's log records to the service, which
// logs it in the agent's own log: a worker started with no console has
// nowhere else to write, and its story belongs beside the service's.
const ReqLog = "log"

// LogRecord is the body of a ReqLog request.
type LogRecord struct {
	Level slog.Level        `json:"level"`
	Msg   string            `json:"msg"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

// forwardHandler is the worker's slog.Handler: records go to the service
// over the pipe once it is connected (dropped when the pipe is full or
// gone), and to next as well.
type forwardHandler struct {
	next  slog.Handler
	level slog.Leveler
	attrs []slog.Attr
	out   *forwardQueue
}

type forwardQueue struct {
	mu sync.Mutex
	c  *Conn
	ch chan LogRecord
}

func newForwardHandler(next slog.Handler, level slog.Leveler) *forwardHandler {
	return &forwardHandler{next: next, level: level, out: &forwardQueue{ch: make(chan LogRecord, 256)}}
}

// run sends queued records on c until it closes.
func (q *forwardQueue) run(c *Conn) {
	for {
		select {
		case r := <-q.ch:
			c.Call(context.Background(), ReqLog, r, nil)
		case <-c.Done():
			return
		}
	}
}

func (h *forwardHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.level.Level() || (h.next != nil && h.next.Enabled(ctx, l))
}

func (h *forwardHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= h.level.Level() {
		lr := LogRecord{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
		for _, a := range h.attrs {
			lr.Attrs[a.Key] = a.Value.String()
		}
		r.Attrs(func(a slog.Attr) bool { lr.Attrs[a.Key] = a.Value.String(); return true })
		select {
		case h.out.ch <- lr:
		default:
		}
	}
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *forwardHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	if h.next != nil {
		c.next = h.next.WithAttrs(as)
	}
	return &c
}

func (h *forwardHandler) WithGroup(name string) slog.Handler {
	c := *h
	if h.next != nil {
		c.next = h.next.WithGroup(name)
	}
	return &c
}

// logRequest is the service's handler for ReqLog.
func logRequest(log *slog.Logger, pid uint32, session uint32) func(context.Context, []byte) (any, error) {
	return func(ctx context.Context, body []byte) (any, error) {
		var r LogRecord
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, fmt.Errorf("log: %w", err)
		}
		args := []any{"worker", pid, "tsid", session}
		for k, v := range r.Attrs {
			args = append(args, k, v)
		}
		log.Log(ctx, r.Level, "worker: "+r.Msg, args...)
		return nil, nil
	}
}
