package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/agent/desktop"
	"github.com/meshgo/meshagent/agent/osuser"
	"github.com/meshgo/meshagent/agent/script"
	"github.com/meshgo/meshagent/agent/sessionworker"
	"github.com/meshgo/meshagent/proto/session"
	"golang.org/x/sys/windows"
)

// userSession reaches the logged-in user's Windows session. As the
// service (LocalSystem, session 0) desktops, the clipboard and prompts go
// through a session worker started in the user's session; run by a user
// from a console the agent already is in that session and does them
// itself, as before.
type userSession struct {
	mgr *sessionworker.Manager // nil when not LocalSystem
	log *slog.Logger
}

// newUserSession decides the route once: the session worker when the
// agent is LocalSystem, or when forced (the .msh's SessionWorker=1: the
// worker then runs with the agent's own token in its own session, which
// is how tests drive the service's route without being the service).
func newUserSession(log *slog.Logger, force bool) *userSession {
	u := &userSession{log: log}
	switch {
	case sessionworker.IsSystem():
		u.mgr = &sessionworker.Manager{Logger: log}
	case force:
		log.Info("session worker forced by the settings: workers run as this agent's own account")
		u.mgr = &sessionworker.Manager{Logger: log, Token: func(sessionworker.Target) (windows.Token, error) {
			return sessionworker.DuplicateOwnToken()
		}}
	}
	return u
}

// worker returns the session worker for the viewer's chosen session, or
// the console's.
func (u *userSession) worker(ctx context.Context, tsid *uint32) (*sessionworker.Client, error) {
	return u.mgr.Get(ctx, tsid)
}

// serveDesktop serves a desktop session. Through the worker, the worker
// locks the user's session itself (the toolbar's lock: LockWorkStation
// there) and hands the event for the server's log (opts.LogEvent) back
// over the pipe; Ctrl+Alt+Del is the service's SendSAS when Windows
// allows it (sessionworker.SendSAS says why not, and the worker then
// presses the keys).
func (u *userSession) serveDesktop(ctx context.Context, ch session.Channel, info session.Info, opts desktop.Options) error {
	if u.mgr == nil {
		return desktop.Serve(ctx, ch, info, opts)
	}
	if !session.AllowDesktopView(info.Rights) {
		ch.Close()
		return desktop.ErrDenied
	}
	var tsid *uint32
	if id, ok := info.TSID(); ok {
		tsid = &id
	}
	return sessionworker.Relay(ctx, ch, info, func(ctx context.Context) (*sessionworker.Client, error) {
		return u.worker(ctx, tsid)
	}, sessionworker.RelayOptions{Logger: u.log, LogEvent: opts.LogEvent, CtrlAltDel: sessionworker.SendSAS})
}

func (u *userSession) clipboard() script.Clipboard {
	if u.mgr == nil {
		return sessionworker.WindowsClipboard{}
	}
	return workerClipboard{u}
}

// workerClipboard is the console session's clipboard through its worker.
type workerClipboard struct{ u *userSession }

func (c workerClipboard) Read(ctx context.Context) (string, error) {
	w, err := c.u.worker(ctx, nil)
	if err != nil {
		return "", err
	}
	return w.ReadClipboard(ctx)
}

func (c workerClipboard) Write(ctx context.Context, text string) error {
	w, err := c.u.worker(ctx, nil)
	if err != nil {
		return err
	}
	return w.WriteClipboard(ctx, text)
}

// prompter shows prompts to the console session's user.
func (u *userSession) prompter() sessionworker.Prompter {
	if u.mgr == nil {
		return sessionworker.Windows()
	}
	return sessionworker.PrompterFunc(func(ctx context.Context, p sessionworker.Prompt) (sessionworker.Answer, error) {
		w, err := u.worker(ctx, nil)
		if err != nil {
			return sessionworker.Answer{}, err
		}
		return w.Prompt(ctx, p)
	})
}

// consentUI is the core's consent seam on Windows: the prompt, the
// session notification and the privacy bar as windows in the user's
// session: as the service through the worker of the session the viewer
// chose (its tsid) or the console's, otherwise in this process.
func (u *userSession) consentUI() consent.UI {
	if u.mgr == nil {
		return sessionworker.ConsentUI{Prompter: sessionworker.Windows(), Bar: sessionworker.WindowsBar}
	}
	return sessionworker.ThroughWorkers(u.worker)
}

func (u *userSession) notify(ctx context.Context, kind, title, msg string) bool {
	_, err := u.prompter().Prompt(ctx, sessionworker.Prompt{Kind: kind, Title: title, Text: msg})
	if err != nil {
		u.log.Warn("notice not shown", "kind", kind, "err", err)
	}
	return err == nil
}

// runSessionWorker is the hidden `session-worker` command.
func runSessionWorker(args []string, stderr io.Writer) int {
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if err := sessionworker.RunWorker(context.Background(), args, stderr, log); err != nil {
		fmt.Fprintln(stderr, "meshagent session-worker:", err)
		return exitFail
	}
	return exitOK
}

func (u *userSession) notifier() func(ctx context.Context, kind, title, msg string) bool {
	return u.notify
}

// runAsUser runs runcommands' runAsUser commands in the session worker of
// the user's session, which runs with that user's token on that session's
// desktop; nil (osuser's token switch in this process) when the agent is
// not the service and so already is the user.
func (u *userSession) runAsUser() func(context.Context, script.UserCommand) (script.UserCommandResult, error) {
	if u.mgr == nil {
		return nil
	}
	return func(ctx context.Context, c script.UserCommand) (script.UserCommandResult, error) {
		ou, err := osuser.Lookup(c.User)
		if err != nil {
			return script.UserCommandResult{}, err
		}
		id := ou.Session()
		w, err := u.worker(ctx, &id)
		if err != nil {
			return script.UserCommandResult{}, err
		}
		if wi, err := w.Info(ctx); err != nil {
			return script.UserCommandResult{}, err
		} else if !strings.EqualFold(wi.User, ou.Name) {
			return script.UserCommandResult{}, fmt.Errorf("the worker of session %d runs as %q, not %q", id, wi.User, ou.Name)
		}
		r, err := w.Run(ctx, sessionworker.RunRequest{File: c.File, Args: c.Args, Stdin: c.Stdin, Dir: c.Dir, Timeout: c.Timeout})
		return script.UserCommandResult{Stdout: r.Stdout, Stderr: r.Stderr, Code: r.Code, TimedOut: r.TimedOut, Truncated: r.Truncated}, err
	}
}
