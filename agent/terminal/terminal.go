// Package terminal serves MeshCentral remote-terminal sessions (relay
// protocols 1, 6, 8 and 9, sessions.md §2) on a session.Channel: pty output
// goes out as binary frames, binary frames are keystrokes, and text frames
// are in-band control messages that never reach the shell.
package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// Options tune a terminal session. The zero value gives the reference
// agent's behaviour.
type Options struct {
	// LaunchCommand, when not nil, is typed into a new shell instead of the
	// reference's Linux default (` alias ls='ls --color=auto';clear`). The
	// server's serverInfo.termlaunchcommand for this platform goes here; an
	// empty string types nothing.
	LaunchCommand *string
	// KillGrace is how long a shell gets after SIGHUP before the session's
	// processes are killed outright when the client goes away (default 1s).
	KillGrace time.Duration
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
}

// ErrNotAllowed is returned when the session's rights do not include the
// terminal; the channel is closed before anything is read from it.
var ErrNotAllowed = errors.New("terminal: rights do not allow a terminal")

// drainTimeout bounds how long output is still forwarded after the shell
// exits: background jobs may keep the pty open forever.
const drainTimeout = 2 * time.Second

// Serve runs one terminal session on ch until the shell exits, the client
// closes the channel or sends a close control message, or ctx is done. It
// always closes ch and, before returning, makes sure the shell (and on the
// way out of a client-side close, every process of its session) is gone and
// reaped. The relay client must already have consumed `c`, the options
// message (passed in info.Options) and the protocol number.
//
// It returns nil when the shell exited or the client or transport ended the
// session, ctx.Err() when ctx did, ErrNotAllowed when the rights refuse a
// terminal, and a start error (after telling the client in a console
// message) when no shell could be started.
func Serve(ctx context.Context, ch session.Channel, info session.Info, opts Options) error {
	defer ch.Close()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("session", "terminal", "user", info.UserID, "protocol", info.Protocol)
	if !session.AllowTerminal(info.Rights) {
		sendConsole(ctx, ch, "Error: No Terminal Control Rights.", 2)
		return ErrNotAllowed
	}
	switch info.Protocol {
	case 0, session.ProtoTerminal, session.ProtoPowerShell, session.ProtoUserShell, session.ProtoUserPS:
	default:
		sendConsole(ctx, ch, fmt.Sprintf("Unsupported terminal protocol %d", info.Protocol), 0)
		return fmt.Errorf("terminal: protocol %d is not a terminal", info.Protocol)
	}
	topts := parseOptions(info.Options)
	if opts.KillGrace <= 0 {
		opts.KillGrace = time.Second
	}

	p, err := start(spawnSpec{
		protocol:      info.Protocol,
		cols:          topts.Cols,
		rows:          topts.Rows,
		requireLogin:  topts.RequireLogin,
		launchCommand: opts.LaunchCommand,
	})
	if err != nil {
		msg := "Failed to start remote terminal session, " + err.Error()
		log.Warn("terminal start failed", "err", err)
		sendConsole(ctx, ch, msg, 0)
		return fmt.Errorf("terminal: start: %w", err)
	}
	log.Info("terminal started", "pid", p.Pid(), "cols", topts.Cols, "rows", topts.Rows)

	s := &termSession{ch: ch, p: p, log: log}
	return s.run(ctx, opts.KillGrace)
}

// proc is a shell on a pseudo terminal, implemented per platform.
type proc interface {
	io.Reader // terminal output
	io.Writer // terminal input
	Pid() int
	Resize(cols, rows int) error
	// Wait blocks until the shell exits and reaps it; called exactly once.
	Wait() error
	// Hangup asks the shell and its jobs to end (SIGHUP, or nothing where
	// there is no such thing); Kill ends every process of the session.
	Hangup()
	Kill()
	// Close releases the terminal; pending Read and Write calls return.
	Close() error
}

type spawnSpec struct {
	protocol      int
	cols, rows    int
	requireLogin  bool
	launchCommand *string
}

type termSession struct {
	ch  session.Channel
	p   proc
	log *slog.Logger
	wmu sync.Mutex // Channel.Write must not be called concurrently
}

func (s *termSession) write(ctx context.Context, f session.Frame) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.ch.Write(ctx, f)
}

func (s *termSession) run(ctx context.Context, grace time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup

	exited := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		exited <- s.p.Wait()
	}()

	outDone := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(outDone)
		s.pumpOutput(ctx)
	}()

	keys := make(chan []byte, inputQueue)
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.pumpKeys(keys)
	}()

	inDone := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(keys)
		inDone <- s.pumpInput(ctx, keys)
	}()

	var result error
	select {
	case err := <-exited:
		// Shell ended: forward what it printed last, then end the session.
		s.log.Info("shell exited", "err", err)
		select {
		case <-outDone:
		case <-time.After(drainTimeout):
		case <-ctx.Done():
		}
		s.ch.Close()
		s.p.Close()
		exited <- err // put it back for the common wait below
	case err := <-inDone:
		s.log.Info("terminal client gone", "err", err)
		s.stop(exited, grace)
	case <-ctx.Done():
		result = ctx.Err()
		s.stop(exited, grace)
	}
	cancel()
	s.ch.Close()
	s.p.Close()
	<-exited
	wg.Wait()
	return result
}

// stop ends the shell after the client went away: hang up, give it grace to
// leave on its own, then kill whatever is left of its session.
func (s *termSession) stop(exited chan error, grace time.Duration) {
	s.ch.Close()
	s.p.Hangup()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-exited:
		exited <- err
	case <-t.C:
	}
	s.p.Kill()
	s.p.Close()
}

// pumpOutput copies terminal output to binary frames. Channel back pressure
// stops the reads, which in turn stalls the shell: nothing piles up here.
func (s *termSession) pumpOutput(ctx context.Context) {
	buf := make([]byte, 32*1024)
	for {
		n, err := s.p.Read(buf)
		if n > 0 {
			if werr := s.write(ctx, session.Frame{Binary: true, Data: buf[:n]}); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// inputQueue is how many keystroke frames may wait for the shell to read
// its input. Reading the channel must go on while the shell is busy, or a
// client that leaves would go unnoticed until the shell reads again.
const inputQueue = 1024

// pumpKeys types queued keystrokes into the terminal. A write blocks while
// the shell does not read; closing the terminal unblocks it.
func (s *termSession) pumpKeys(keys <-chan []byte) {
	for data := range keys {
		if _, err := s.p.Write(data); err != nil {
			for range keys { // keep the reader from blocking
			}
			return
		}
	}
}

// pumpInput reads client frames: binary ones are keystrokes, text ones are
// control messages. It returns when the channel fails or the client asks to
// close.
func (s *termSession) pumpInput(ctx context.Context, keys chan<- []byte) error {
	dropped := 0
	for {
		f, err := s.ch.Read(ctx)
		if err != nil {
			return err
		}
		if f.Binary {
			if len(f.Data) == 0 {
				continue
			}
			select {
			case keys <- f.Data:
			default:
				// The shell has not read its input for a long time; a
				// terminal cannot buffer without bound.
				if dropped++; dropped == 1 || dropped%1000 == 0 {
					s.log.Warn("terminal input dropped: shell is not reading", "frames", dropped)
				}
			}
			continue
		}
		c, ok := parseControl(f.Data)
		if !ok {
			continue // never type text frames into the shell
		}
		switch c.Type {
		case "termsize", "options":
			if c.Cols > 0 && c.Rows > 0 {
				if err := s.p.Resize(c.Cols, c.Rows); err != nil {
					s.log.Debug("resize failed", "err", err)
				}
			}
		case "ping":
			if err := s.write(ctx, session.Frame{Data: ctrlJSON("pong")}); err != nil {
				return err
			}
		case "rtt":
			if c.Time == nil {
				continue
			}
			if err := s.write(ctx, session.Frame{Data: ctrlJSON("rtt", "time", c.Time)}); err != nil {
				return err
			}
		case "close":
			return nil
		}
	}
}

// sendConsole shows msg in the client's status line (sessions.md §1.8);
// msgid 0 means "display msg as is". Best effort, bounded in time.
func sendConsole(ctx context.Context, ch session.Channel, msg string, msgid int) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = ch.Write(ctx, session.Frame{Data: ctrlJSON("console", "msg", msg, "msgid", msgid)})
}
