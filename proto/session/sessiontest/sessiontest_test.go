package sessiontest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// An echo handler served over each transport: frames keep their kind and
// order, the handler's result reaches ServeResult, and its close is seen.
func TestServeEcho(t *testing.T) {
	errEnd := errors.New("end")
	for _, tr := range []struct {
		name string
		tr   Transport
	}{{"pipe", Pipe}, {"websocket", WebSocket}} {
		t.Run(tr.name, func(t *testing.T) {
			c := Serve(t, tr.tr, func(ctx context.Context, ch session.Channel) error {
				defer ch.Close()
				for {
					f, err := ch.Read(ctx)
					if err != nil {
						return err
					}
					if string(f.Data) == "bye" {
						return errEnd
					}
					if err := ch.Write(ctx, f); err != nil {
						return err
					}
				}
			})
			c.Send(session.Frame{Binary: true, Data: []byte{1, 2}})
			c.Send(session.Frame{Data: []byte("text")})
			if f := c.Next(); !f.Binary || string(f.Data) != "\x01\x02" {
				t.Fatalf("first frame %+v", f)
			}
			if f := c.Next(); f.Binary || string(f.Data) != "text" {
				t.Fatalf("second frame %+v", f)
			}
			c.NoFrame(50 * time.Millisecond)
			c.Send(session.Frame{Data: []byte("bye")})
			c.WaitClosed()
			if err := c.ServeResult(); !errors.Is(err, errEnd) {
				t.Fatalf("ServeResult = %v", err)
			}
		})
	}
}
