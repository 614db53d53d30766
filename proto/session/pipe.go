package session

import (
	"context"
	"fmt"
	"sync"
)

// Pipe returns two connected in-memory Channels. Each direction buffers up
// to depth frames, then Write blocks (back pressure). It is meant for tests
// and for wiring sessions inside one process.
func Pipe(depth int) (Channel, Channel) {
	ab := make(chan Frame, depth)
	ba := make(chan Frame, depth)
	done := make(chan struct{})
	once := new(sync.Once)
	a := &pipeEnd{in: ba, out: ab, done: done, once: once}
	b := &pipeEnd{in: ab, out: ba, done: done, once: once}
	return a, b
}

type pipeEnd struct {
	in, out chan Frame
	done    chan struct{}
	once    *sync.Once
}

func (p *pipeEnd) Read(ctx context.Context) (Frame, error) {
	// Drain what was written before a close, like a socket would.
	select {
	case f := <-p.in:
		return f, nil
	default:
	}
	select {
	case f := <-p.in:
		return f, nil
	case <-p.done:
		return Frame{}, fmt.Errorf("pipe read: %w", ErrClosed)
	case <-ctx.Done():
		return Frame{}, ctx.Err()
	}
}

func (p *pipeEnd) Write(ctx context.Context, f Frame) error {
	select {
	case <-p.done:
		return fmt.Errorf("pipe write: %w", ErrClosed)
	default:
	}
	f.Data = append([]byte(nil), f.Data...)
	select {
	case p.out <- f:
		return nil
	case <-p.done:
		return fmt.Errorf("pipe write: %w", ErrClosed)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *pipeEnd) Close() error {
	p.once.Do(func() { close(p.done) })
	return nil
}
