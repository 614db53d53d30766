package sessionworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/meshgo/meshagent/agent/desktop"
	"github.com/meshgo/meshagent/proto/session"
)

// WorkerCommand is the agent's hidden command that runs a session worker
// (Windows); cmd/meshagent dispatches it to RunWorker.
const WorkerCommand = "session-worker"

// Requests and stream kinds of the worker protocol (version 1).
const (
	ReqGetClip  = "getclip" // -> string
	ReqSetClip  = "setclip" // string -> true
	ReqPrompt   = "prompt"  // Prompt -> Answer
	ReqInfo     = "info"    // -> WorkerInfo
	KindDesktop = "desktop" // session.Info; then KVM frames both ways
)

// Prompt is something shown to the user in their session: a message box
// (the server's messagebox action), a toast or notification, or a consent
// question (desktop, terminal, files) with MeshCentral's texts.
type Prompt struct {
	// Kind is "messagebox", "toast", "notify" or "consent".
	Kind  string `json:"kind"`
	Title string `json:"title"`
	Text  string `json:"text"`
	// Allow and Deny label a consent question's buttons ("" is
	// MeshCentral's English Allow and Deny).
	Allow string `json:"allow,omitempty"`
	Deny  string `json:"deny,omitempty"`
	// Timeout closes the prompt unanswered; 0 means the kind's default
	// (MeshCentral's: 120 s for a message box, 30 s for consent).
	Timeout time.Duration `json:"timeout,omitempty"`
}

// Answer is the user's response to a Prompt.
type Answer struct {
	// Accepted is true when the user pressed OK/Yes (always true for a
	// notice once shown).
	Accepted bool `json:"accepted"`
	// TimedOut is true when nobody answered in time.
	TimedOut bool `json:"timedOut,omitempty"`
}

// Default prompt timeouts, MeshCentral's meshcore.js values.
const (
	DefaultMessageBoxTimeout = 120 * time.Second
	DefaultConsentTimeout    = 30 * time.Second
)

// Prompter shows prompts to the user of one desktop session. The Windows
// implementation (MessageBox in the user's session, through the worker
// when the agent is a service) is Windows(); the interface is what an
// agent-side consent or notification seam plugs in.
type Prompter interface {
	Prompt(ctx context.Context, p Prompt) (Answer, error)
}

// PrompterFunc adapts a function to Prompter.
type PrompterFunc func(ctx context.Context, p Prompt) (Answer, error)

// Prompt calls f.
func (f PrompterFunc) Prompt(ctx context.Context, p Prompt) (Answer, error) { return f(ctx, p) }

// Clipboard is a desktop session's clipboard text.
type Clipboard interface {
	Read(ctx context.Context) (string, error)
	Write(ctx context.Context, text string) error
}

// WorkerInfo is what a worker reports about itself, for logs and tests.
type WorkerInfo struct {
	PID       int    `json:"pid"`
	SessionID uint32 `json:"sessionId"`
	Desktop   string `json:"desktop"` // the input desktop it last attached to
	User      string `json:"user"`    // the account it runs as
}

// WorkerOptions are what a worker serves.
type WorkerOptions struct {
	// Desktop runs a remote desktop session on ch; nil means
	// desktop.Serve with DesktopOptions.
	Desktop        func(ctx context.Context, ch session.Channel, info session.Info) error
	DesktopOptions desktop.Options
	Clipboard      Clipboard   // nil: getclip/setclip answer an error
	Prompter       Prompter    // nil: prompt answers an error
	Bar            ShowBarFunc // nil: a bar stream is refused
	Info           func() WorkerInfo
	Logger         *slog.Logger
	// ForwardLogs, when set, sends records at or above this level to the
	// service (ReqLog), which logs them as its own.
	ForwardLogs slog.Leveler
}

// ServeWorker is the worker's main loop: it answers the service on rwc
// until the pipe closes (the service ended or dropped this worker) or ctx
// ends, and returns nil for a closed pipe.
func ServeWorker(ctx context.Context, rwc io.ReadWriteCloser, o WorkerOptions) error {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	var fwd *forwardHandler
	if o.ForwardLogs != nil {
		fwd = newForwardHandler(log.Handler(), o.ForwardLogs)
		log = slog.New(fwd)
	}
	serveDesktop := o.Desktop
	if serveDesktop == nil {
		opts := o.DesktopOptions
		if opts.Logger == nil || fwd != nil {
			opts.Logger = log
		}
		serveDesktop = func(ctx context.Context, ch session.Channel, info session.Info) error {
			o := opts
			// The session's events for the server's log (the toolbar's
			// lock) go to the service on the stream (Relay logs them).
			o.LogEvent = func(id int) { SendEvent(ctx, ch, id) }
			return desktop.Serve(ctx, ch, info, o)
		}
	}
	h := Handler{
		Requests: map[string]func(context.Context, []byte) (any, error){
			ReqGetClip: func(ctx context.Context, _ []byte) (any, error) {
				if o.Clipboard == nil {
					return nil, errors.New("no clipboard in this session")
				}
				return o.Clipboard.Read(ctx)
			},
			ReqSetClip: func(ctx context.Context, body []byte) (any, error) {
				var text string
				if err := json.Unmarshal(body, &text); err != nil {
					return nil, fmt.Errorf("setclip: %w", err)
				}
				if o.Clipboard == nil {
					return nil, errors.New("no clipboard in this session")
				}
				return true, o.Clipboard.Write(ctx, text)
			},
			ReqPrompt: func(ctx context.Context, body []byte) (any, error) {
				var p Prompt
				if err := json.Unmarshal(body, &p); err != nil {
					return nil, fmt.Errorf("prompt: %w", err)
				}
				if o.Prompter == nil {
					return nil, errors.New("no prompts in this session")
				}
				return o.Prompter.Prompt(ctx, p)
			},
			ReqRun: runCommand,
			ReqInfo: func(context.Context, []byte) (any, error) {
				if o.Info == nil {
					return WorkerInfo{}, nil
				}
				return o.Info(), nil
			},
		},
		Streams: map[string]func(context.Context, *Stream, []byte) error{
			KindBar: func(ctx context.Context, s *Stream, body []byte) error {
				return serveBar(ctx, s, body, o.Bar)
			},
			KindDesktop: func(ctx context.Context, s *Stream, body []byte) error {
				var info session.Info
				if err := json.Unmarshal(body, &info); err != nil {
					return fmt.Errorf("desktop stream: %w", err)
				}
				return serveDesktop(ctx, s, info)
			},
		},
	}
	c, err := Open(ctx, rwc, RoleWorker, h, log)
	if err != nil {
		return err
	}
	if fwd != nil {
		go fwd.out.run(c)
	}
	select {
	case <-c.Done():
		log.Info("sessionworker: service pipe closed, exiting", "err", c.Err())
		return nil
	case <-ctx.Done():
		c.Close()
		return ctx.Err()
	}
}
