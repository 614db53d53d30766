package sessionworker

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"golang.org/x/sys/windows"
)

// RunWorker is the session worker's main: `meshagent session-worker
// --pipe NAME`. It connects to the service's pipe and serves capture,
// input, cursor and clipboard of its session's input desktop and the
// user's prompts, until the pipe closes (the service stopped or dropped
// it) or the session ends (Windows ends the process).
func RunWorker(ctx context.Context, args []string, stderr io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet(WorkerCommand, flag.ContinueOnError)
	fs.SetOutput(stderr)
	pipe := fs.String("pipe", "", "the service's pipe")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pipe == "" {
		return fmt.Errorf("%s: --pipe is required", WorkerCommand)
	}
	f, err := DialPipe(*pipe, 10*time.Second)
	if err != nil {
		return err
	}
	session, _ := OwnSession()
	follow := &deskFollower{}
	o := WorkerOptions{
		Clipboard: WindowsClipboard{},
		Prompter:  Windows(),
		Bar:       WindowsBar,
		Logger:    log,
		// The worker has no console: its log goes to the service's.
		ForwardLogs: slog.LevelDebug,
		Info: func() WorkerInfo {
			return WorkerInfo{PID: os.Getpid(), SessionID: session, Desktop: follow.current(), User: tokenAccount()}
		},
	}
	o.DesktopOptions.ThreadSetup = follow.attach
	log.Info("sessionworker: serving", "session", session, "pid", os.Getpid())
	return ServeWorker(ctx, f, o)
}

// tokenAccount is this process's account name, "" when unknown.
func tokenAccount() string {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return ""
	}
	name, _, _, err := u.User.Sid.LookupAccount("")
	if err != nil {
		return ""
	}
	return name
}
