//go:build !windows

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/agent/desktop"
	"github.com/meshgo/meshagent/agent/script"
	"github.com/meshgo/meshagent/proto/session"
)

// userSession: outside Windows the agent reaches the user's desktop
// directly (agent/desktop finds the display), so there is no worker.
type userSession struct{ log *slog.Logger }

// newUserSession: force (the .msh's SessionWorker) means nothing here.
func newUserSession(log *slog.Logger, force bool) *userSession { return &userSession{log: log} }

func (u *userSession) serveDesktop(ctx context.Context, ch session.Channel, info session.Info, opts desktop.Options) error {
	return desktop.Serve(ctx, ch, info, opts)
}

// clipboard is the desktop's X11 clipboard on Linux, which discovers the
// display the way desktop sessions do and so works as a service with no
// DISPLAY; elsewhere nil, leaving the script host's platform tools.
func (u *userSession) clipboard() script.Clipboard {
	if runtime.GOOS != "linux" {
		return nil
	}
	return desktop.Clipboard{Options: desktop.Options{Logger: u.log}}
}

// consentUI is the desktop package's: X11 windows on Linux, osascript on
// macOS.
func (u *userSession) consentUI() consent.UI { return desktop.NewConsentUI(u.log) }

// notify is nil: the script host's platform tools.
func (u *userSession) notifier() func(ctx context.Context, kind, title, msg string) bool { return nil }

func runSessionWorker(args []string, stderr io.Writer) int {
	fmt.Fprintln(stderr, "meshagent session-worker: only on Windows")
	return exitUsage
}

// runAsUser is nil: agent/osuser switches credentials for the child.
func (u *userSession) runAsUser() func(context.Context, script.UserCommand) (script.UserCommandResult, error) {
	return nil
}
