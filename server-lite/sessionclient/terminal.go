package sessionclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/meshgo/meshagent/proto/session"
)

// Terminal is the client of a terminal session (relay protocols 1, 6, 8,
// 9; sessions.md §2): keystrokes go out as binary frames, pty output comes
// back as binary frames, control (resize) as text.
type Terminal struct {
	ch session.Channel
	r  *reader
}

// NewTerminal starts a terminal client on ch, which must already carry a
// terminal protocol (Open with session.ProtoTerminal and, for the initial
// size, Options {"cols": C, "rows": R}).
func NewTerminal(ch session.Channel) *Terminal {
	return &Terminal{ch: ch, r: newReader(ch, 256)}
}

// Close ends the session (the agent then kills the shell).
func (t *Terminal) Close() error { return t.r.close() }

// Write types p into the remote terminal.
func (t *Terminal) Write(ctx context.Context, p []byte) error {
	return t.ch.Write(ctx, session.Frame{Binary: true, Data: bytes.Clone(p)})
}

// Resize sets the remote pty's size.
func (t *Terminal) Resize(ctx context.Context, cols, rows int) error {
	b, _ := json.Marshal(map[string]any{"ctrlChannel": session.CtrlChannel, "type": "termsize", "cols": cols, "rows": rows})
	return t.ch.Write(ctx, session.Frame{Data: b})
}

// Output is one piece of what the session sent: pty bytes, or an agent
// console message (an error or status text, sessions.md §1.8).
type Output struct {
	Data    []byte
	Console string
}

// Read returns the next output. When the session ends (the shell exited
// and the agent closed the tunnel) it returns an error wrapping
// session.ErrClosed or the transport's error.
func (t *Terminal) Read(ctx context.Context) (Output, error) {
	for {
		f, err := t.r.next(ctx)
		if err != nil {
			return Output{}, err
		}
		if f.Binary {
			return Output{Data: f.Data}, nil
		}
		if msg, ok := ConsoleMessage(f.Data); ok {
			return Output{Console: msg}, nil
		}
		// Other text frames are control traffic (pong, rtt): never output.
	}
}

// RunResult is what Run collected.
type RunResult struct {
	Output []byte // the command's output, pty line endings turned into \n
	Status int    // its exit status
}

// Run types a command into a POSIX shell session, followed by exit, and
// returns the command's output and exit status. The output is cut between
// two random markers the shell prints around the command, so the prompt,
// the echo of the typed line and any login noise are left out; the markers
// are printed with printf from split words, so the echoed input never
// contains them.
func (t *Terminal) Run(ctx context.Context, cmd string) (RunResult, error) {
	nb := make([]byte, 8)
	rand.Read(nb)
	tag := hex.EncodeToString(nb)
	begin, end := "MGOB"+tag, "MGOE"+tag
	// One line: a prompt printed between two lines would land inside the
	// output. eval of the quoted command keeps a multi-line command's
	// continuation prompts before the begin marker.
	quoted := "'" + strings.ReplaceAll(cmd, "'", `'\''`) + "'"
	line := fmt.Sprintf(" stty -echo 2>/dev/null; printf '\\n%%s%%s\\n' MGOB %s; eval %s; printf '\\n%%s%%s %%d\\n' MGOE %s $?; exit\n", tag, quoted, tag)
	if err := t.Write(ctx, []byte(line)); err != nil {
		return RunResult{}, err
	}
	var all []byte
	var console []string
	for {
		o, err := t.Read(ctx)
		if o.Console != "" {
			console = append(console, o.Console)
		}
		all = append(all, o.Data...)
		if res, ok := cutRun(all, begin, end); ok {
			return res, nil
		}
		if err != nil {
			if len(console) > 0 {
				return RunResult{}, fmt.Errorf("agent: %s: %w", console[len(console)-1], err)
			}
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return RunResult{}, fmt.Errorf("command did not finish: %w", err)
			}
			return RunResult{}, fmt.Errorf("the shell ended before the command finished: %w", err)
		}
	}
}

// cutRun extracts the output between the begin marker's line and the end
// marker, which the shell prints after a newline of ours, and the status
// after the end marker.
func cutRun(all []byte, begin, end string) (RunResult, bool) {
	b := bytes.Index(all, []byte(begin+"\r\n"))
	skip := len(begin) + 2
	if b < 0 {
		b = bytes.Index(all, []byte(begin+"\n"))
		skip = len(begin) + 1
	}
	if b < 0 {
		return RunResult{}, false
	}
	rest := all[b+skip:]
	e := bytes.Index(rest, []byte(end+" "))
	if e < 0 {
		return RunResult{}, false
	}
	tail := rest[e+len(end)+1:]
	nl := bytes.IndexAny(tail, "\r\n")
	if nl < 0 {
		return RunResult{}, false
	}
	status, err := strconv.Atoi(string(tail[:nl]))
	if err != nil {
		status = -1
	}
	out := bytes.ReplaceAll(rest[:e], []byte("\r\n"), []byte("\n"))
	// Drop the newline our printf put before the end marker.
	out = bytes.TrimSuffix(out, []byte("\n"))
	return RunResult{Output: out, Status: status}, true
}
