package sessionworker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

// Client is the service's handle on one worker connection.
type Client struct {
	*Conn
}

// Dial opens the service side of an established pipe.
func Dial(ctx context.Context, c *Conn) *Client { return &Client{Conn: c} }

// ReadClipboard returns the worker session's clipboard text.
func (c *Client) ReadClipboard(ctx context.Context) (string, error) {
	var s string
	err := c.Call(ctx, ReqGetClip, nil, &s)
	return s, err
}

// WriteClipboard sets the worker session's clipboard text.
func (c *Client) WriteClipboard(ctx context.Context, text string) error {
	return c.Call(ctx, ReqSetClip, text, nil)
}

// Prompt shows p to the worker session's user.
func (c *Client) Prompt(ctx context.Context, p Prompt) (Answer, error) {
	var a Answer
	err := c.Call(ctx, ReqPrompt, p, &a)
	return a, err
}

// Info asks the worker about itself.
func (c *Client) Info(ctx context.Context) (WorkerInfo, error) {
	var wi WorkerInfo
	err := c.Call(ctx, ReqInfo, nil, &wi)
	return wi, err
}

// RelayOptions are what Relay does for the service beside carrying frames.
type RelayOptions struct {
	Logger *slog.Logger
	// LogEvent records an event the worker's desktop session reports
	// (SendEvent: the toolbar's lock, desktop.LockMsgID) in the server's
	// log for this session; nil drops them.
	LogEvent func(msgID int)
	// CtrlAltDel, when set, serves the viewer's Ctrl+Alt+Del (KVM 10, in a
	// frame of its own, from a viewer with input rights) in the service
	// instead of the worker: the service's SendSAS, which a user's worker
	// cannot call. When it fails the command goes on to the worker, which
	// presses the keys (what Windows makes of that is its business).
	CtrlAltDel func() error
}

// Relay runs a remote desktop session: viewer frames go to a desktop
// stream on a worker, the worker's KVM frames back to the viewer. When the
// worker goes away while the viewer stays (logoff, fast user switching:
// the session the worker ran in ended), get is asked for a worker again,
// typically in the new console session, and the session goes on there:
// the new worker's desktop opens with a full screen. Relay returns when
// the viewer leaves, ctx ends, or get fails.
func Relay(ctx context.Context, viewer session.Channel, info session.Info, get func(ctx context.Context) (*Client, error), o RelayOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	input := session.AllowDesktopInput(info.Rights, info.ViewOnly)
	defer viewer.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	in := make(chan session.Frame)
	viewerErr := make(chan error, 1)
	go func() {
		for {
			f, err := viewer.Read(ctx)
			if err != nil {
				viewerErr <- err
				cancel()
				return
			}
			if o.CtrlAltDel != nil && input && isCtrlAltDel(f) {
				err := o.CtrlAltDel()
				if err == nil {
					log.Info("desktop: Ctrl+Alt+Del sent (SendSAS)")
					continue
				}
				log.Warn("desktop: Ctrl+Alt+Del through SendSAS failed; the worker presses the keys", "err", err)
			}
			select {
			case in <- f:
			case <-ctx.Done():
				viewerErr <- ctx.Err()
				return
			}
		}
	}()
	for {
		c, err := get(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// Tell the viewer why its screen stays empty (no session on
			// the console, the chosen session gone, a worker that failed).
			msg := "Unable to open the desktop of the user's session: " + err.Error()
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			viewer.Write(wctx, session.Frame{Data: session.ControlJSON("console", "msg", msg, "msgid", 0)})
			cancel()
			return fmt.Errorf("desktop worker: %w", err)
		}
		s, err := c.OpenStream(KindDesktop, info)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("desktop worker: %w", err)
		}
		workerDone := make(chan error, 1)
		go func() {
			for {
				f, err := s.Read(ctx)
				if id, ok := parseEvent(f); err == nil && ok {
					if o.LogEvent != nil {
						o.LogEvent(id)
					}
					continue
				}
				if err == nil {
					err = viewer.Write(ctx, f)
					if err != nil {
						err = fmt.Errorf("%w: %w", errViewerWrite, err)
					}
				}
				if err != nil {
					workerDone <- err
					return
				}
			}
		}()
		err = pump(ctx, in, s, workerDone)
		s.Close()
		select {
		case <-c.Done():
			// The worker itself went away; the viewer is still here.
			if ctx.Err() == nil {
				log.Info("desktop worker gone; starting one in the current session", "err", c.Err())
				continue
			}
		default:
		}
		if ctx.Err() != nil || errors.Is(err, errViewerWrite) {
			return nil
		}
		if err != nil && !errors.Is(err, session.ErrClosed) {
			return err
		}
		if r := s.Reason(); r != "" {
			return fmt.Errorf("desktop worker: %s", r)
		}
		return nil
	}
}

var errViewerWrite = errors.New("viewer write")

// isCtrlAltDel reports whether f is the viewer's Ctrl+Alt+Del command
// alone (MeshCentral's viewer sends it as a message of its own).
func isCtrlAltDel(f session.Frame) bool {
	cmd, n, ok := kvm.Header(f.Data)
	return f.Binary && ok && cmd == kvm.CtrlAltDel && n == 4 && len(f.Data) == 4
}

// eventPrefix starts a desktop stream's text frame in which the worker's
// desktop session hands the service an event for the server's log; the
// viewer never sends the worker one, and Relay does not pass it on.
const eventPrefix = `{"meshgoWorkerEvent":`

// SendEvent reports an event with MeshCentral's msgid (desktop.LockMsgID)
// for the server's log from a worker's desktop stream to the service.
func SendEvent(ctx context.Context, ch session.Channel, msgID int) error {
	return ch.Write(ctx, session.Frame{Data: fmt.Appendf(nil, "%s%d}", eventPrefix, msgID)})
}

func parseEvent(f session.Frame) (int, bool) {
	if f.Binary || !bytes.HasPrefix(f.Data, []byte(eventPrefix)) {
		return 0, false
	}
	var e struct {
		ID int `json:"meshgoWorkerEvent"`
	}
	if json.Unmarshal(f.Data, &e) != nil {
		return 0, false
	}
	return e.ID, true
}

// pump forwards viewer frames to the stream until the stream's reader
// reports an end.
func pump(ctx context.Context, in <-chan session.Frame, s *Stream, workerDone <-chan error) error {
	for {
		select {
		case f := <-in:
			if err := s.Write(ctx, f); err != nil {
				// The reader sees the same close; wait for its reason.
				select {
				case err := <-workerDone:
					return err
				case <-ctx.Done():
					return ctx.Err()
				}
			}
		case err := <-workerDone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
