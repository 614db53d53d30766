//go:build !windows

package terminal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/proto/session/sessiontest"
)

var (
	noLaunch = ""
	quiet    = slog.New(slog.DiscardHandler)
)

// client is the viewer end of a terminal session under test: the shared
// session test client plus what the terminal's output looks like so far.
type client struct {
	*sessiontest.Client
	t    *testing.T
	ch   session.Channel
	out  bytes.Buffer // binary output seen so far
	text []string     // text frames seen so far
}

func newClient(t *testing.T, ch session.Channel, done chan error) *client {
	return &client{Client: sessiontest.NewClient(t, ch, done), t: t, ch: ch}
}

func (c *client) send(binary bool, s string) {
	c.t.Helper()
	c.Send(session.Frame{Binary: binary, Data: []byte(s)})
}

func (c *client) take(f session.Frame) {
	if f.Binary {
		c.out.Write(f.Data)
	} else {
		c.text = append(c.text, string(f.Data))
	}
}

// waitOutput waits until the binary output matches re and returns the match.
func (c *client) waitOutput(re *regexp.Regexp) []string {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(c.out.String()); m != nil {
			return m
		}
		select {
		case f := <-c.Frames():
			c.take(f)
		case <-c.Closed():
			for len(c.Frames()) > 0 {
				c.take(<-c.Frames())
			}
			if m := re.FindStringSubmatch(c.out.String()); m != nil {
				return m
			}
			c.t.Fatalf("channel closed before output matched %q; output: %q", re, c.out.String())
		case <-deadline:
			c.t.Fatalf("timeout waiting for %q; output: %q", re, c.out.String())
		}
	}
}

// waitText waits for a text frame containing sub.
func (c *client) waitText(sub string) string {
	c.t.Helper()
	deadline := time.After(10 * time.Second)
	seen := 0
	for {
		for ; seen < len(c.text); seen++ {
			if strings.Contains(c.text[seen], sub) {
				return c.text[seen]
			}
		}
		select {
		case f := <-c.Frames():
			c.take(f)
		case <-c.Closed():
			for len(c.Frames()) > 0 {
				c.take(<-c.Frames())
			}
			for ; seen < len(c.text); seen++ {
				if strings.Contains(c.text[seen], sub) {
					return c.text[seen]
				}
			}
			c.t.Fatalf("channel closed before text %q; texts: %q", sub, c.text)
		case <-deadline:
			c.t.Fatalf("timeout waiting for text %q; texts: %q", sub, c.text)
		}
	}
}

func (c *client) waitClosed() {
	c.t.Helper()
	c.WaitClosed()
}

func (c *client) serveResult() error {
	c.t.Helper()
	return c.ServeResult()
}

type transport = sessiontest.Transport

var (
	pipeTransport = sessiontest.Pipe
	wsTransport   = sessiontest.WebSocket
)

var transports = []struct {
	name string
	tr   transport
}{{"pipe", pipeTransport}, {"websocket", wsTransport}}

func startTerm(t *testing.T, tr transport, info session.Info) *client {
	c := sessiontest.Serve(t, tr, func(ctx context.Context, ch session.Channel) error {
		return Serve(ctx, ch, info, Options{LaunchCommand: &noLaunch, KillGrace: 300 * time.Millisecond, Logger: quiet})
	})
	return &client{Client: c, t: t, ch: c.Ch}
}

func adminInfo(opts string) session.Info {
	info := session.Info{Protocol: session.ProtoTerminal, Rights: session.RightAdmin, UserID: "user//test"}
	if opts != "" {
		info.Options = []byte(opts)
	}
	return info
}

func TestEchoAndResize(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			c := startTerm(t, tc.tr, adminInfo(`{"type":"options","cols":120,"rows":40}`))
			c.send(true, "echo hello-$((6*7))\n")
			c.waitOutput(regexp.MustCompile(`hello-42`))

			c.send(true, "stty size; echo size-done\n")
			m := c.waitOutput(regexp.MustCompile(`(\d+) (\d+)\r?\nsize-done`))
			if m[1] != "40" || m[2] != "120" {
				t.Fatalf("initial size = %s %s, want 40 120", m[1], m[2])
			}
			// A text frame that is not a control message must never be typed.
			c.send(false, "echo typed-from-text\n")
			c.send(false, `{"ctrlChannel":102938,"type":"termsize","cols":"100","rows":33}`)
			c.out.Reset()
			c.send(true, "stty size; echo resized\n")
			m = c.waitOutput(regexp.MustCompile(`(\d+) (\d+)\r?\nresized`))
			if m[1] != "33" || m[2] != "100" {
				t.Fatalf("resized = %s %s, want 33 100", m[1], m[2])
			}
			if strings.Contains(c.out.String(), "typed-from-text") {
				t.Fatal("text frame reached the shell")
			}
			c.send(false, `{"ctrlChannel":"102938","type":"ping"}`)
			if got := c.waitText(`"pong"`); got != `{"ctrlChannel":"102938","type":"pong"}` {
				t.Fatalf("pong = %s", got)
			}
			c.send(false, `{"ctrlChannel":102938,"type":"rtt","time":1700000000123}`)
			if got := c.waitText(`"rtt"`); got != `{"ctrlChannel":"102938","type":"rtt","time":1700000000123}` {
				t.Fatalf("rtt = %s", got)
			}
			c.send(false, `{"ctrlChannel":"102938","type":"close"}`)
			c.waitClosed()
			if err := c.serveResult(); err != nil {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}

func TestShellExitClosesChannel(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			c := startTerm(t, tc.tr, adminInfo(""))
			c.send(true, "echo bye; exit 3\n")
			c.waitOutput(regexp.MustCompile(`bye`))
			c.waitClosed()
			if err := c.serveResult(); err != nil {
				t.Fatalf("Serve: %v", err)
			}
		})
	}
}

// processAlive reports whether pid exists and is not a zombie waiting for a
// parent that is not us (inside containers pid 1 may never reap).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	if runtime.GOOS != "linux" {
		return true
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(ents)
}

func TestChannelCloseKillsShell(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			before, goroutines := 0, runtime.NumGoroutine()
			if tc.name == "pipe" && runtime.GOOS == "linux" {
				before = countFDs(t)
			}
			c := startTerm(t, tc.tr, adminInfo(""))
			// A foreground shell plus a background job in its own process
			// group that ignores SIGHUP: both must be gone afterwards.
			c.send(true, "trap '' HUP; (trap '' HUP; exec sleep 300) & echo pids=$$,$!\n")
			m := c.waitOutput(regexp.MustCompile(`pids=(\d+),(\d+)`))
			shell, _ := strconv.Atoi(m[1])
			job, _ := strconv.Atoi(m[2])
			if !processAlive(shell) || !processAlive(job) {
				t.Fatal("processes not running before close")
			}
			c.ch.Close()
			if err := c.serveResult(); err != nil && !errors.Is(err, context.Canceled) {
				t.Fatalf("Serve: %v", err)
			}
			if processAlive(shell) {
				t.Errorf("shell %d still alive", shell)
			}
			deadline := time.Now().Add(5 * time.Second)
			for processAlive(job) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if processAlive(job) {
				t.Errorf("background job %d still alive", job)
			}
			if before > 0 {
				var after int
				for i := 0; i < 50; i++ {
					if after = countFDs(t); after <= before {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				if after > before {
					t.Errorf("fd leak: %d open before, %d after", before, after)
				}
				for i := 0; i < 100 && runtime.NumGoroutine() > goroutines; i++ {
					time.Sleep(20 * time.Millisecond)
				}
				if g := runtime.NumGoroutine(); g > goroutines {
					t.Errorf("goroutine leak: %d before, %d after", goroutines, g)
				}
			}
		})
	}
}

func TestContextCancelEndsSession(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	a, b := session.Pipe(16)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, a, adminInfo(""), Options{LaunchCommand: &noLaunch}) }()
	c := newClient(t, b, done)
	c.send(true, "echo pid=$$\n")
	m := c.waitOutput(regexp.MustCompile(`pid=(\d+)`))
	pid, _ := strconv.Atoi(m[1])
	cancel()
	if err := c.serveResult(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve = %v, want context.Canceled", err)
	}
	if processAlive(pid) {
		t.Fatalf("shell %d still alive", pid)
	}
}

// countingChannel records whether the handler ever read from it.
type countingChannel struct {
	session.Channel
	reads int
}

func (c *countingChannel) Read(ctx context.Context) (session.Frame, error) {
	c.reads++
	return c.Channel.Read(ctx)
}

func TestRightsRefused(t *testing.T) {
	cases := []struct {
		name   string
		rights uint32
	}{
		{"none", 0},
		{"no remote control", session.RightAgentConsole},
		{"no terminal bit", session.RightRemoteControl | session.RightNoTerminal},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := session.Pipe(16)
			cc := &countingChannel{Channel: a}
			b.Write(context.Background(), session.Frame{Binary: true, Data: []byte("touch /tmp/should-not-run\n")})
			err := Serve(context.Background(), cc, session.Info{Protocol: 1, Rights: tc.rights}, Options{})
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Serve = %v, want ErrNotAllowed", err)
			}
			if cc.reads != 0 {
				t.Fatalf("handler read %d frames before refusing", cc.reads)
			}
		})
	}
}

func TestUnknownProtocolRefused(t *testing.T) {
	a, _ := session.Pipe(16)
	if err := Serve(context.Background(), a, session.Info{Protocol: 2, Rights: session.RightAdmin}, Options{}); err == nil {
		t.Fatal("protocol 2 accepted")
	}
}

func TestUserShellWithoutConsoleUser(t *testing.T) {
	if _, err := consoleUser(); err == nil {
		t.Skip("this machine has a console user")
	}
	a, b := session.Pipe(16)
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), a, session.Info{Protocol: session.ProtoUserShell, Rights: session.RightAdmin}, Options{})
	}()
	c := newClient(t, b, done)
	msg := c.waitText(`"console"`)
	if !strings.Contains(msg, "Failed to start remote terminal session") {
		t.Fatalf("console message = %s", msg)
	}
	c.waitClosed()
	if err := c.serveResult(); err == nil {
		t.Fatal("Serve returned nil")
	}
}

func TestTwoSessionsAtOnce(t *testing.T) {
	c1 := startTerm(t, pipeTransport, adminInfo(""))
	c2 := startTerm(t, wsTransport, adminInfo(""))
	c1.send(true, "echo one-$$\n")
	c2.send(true, "echo two-$$\n")
	m1 := c1.waitOutput(regexp.MustCompile(`one-(\d+)`))
	m2 := c2.waitOutput(regexp.MustCompile(`two-(\d+)`))
	if m1[1] == m2[1] {
		t.Fatal("both sessions share a shell")
	}
}

// A client that floods input while the shell is not reading and then leaves
// must still end the session promptly.
func TestCloseWhileShellNotReading(t *testing.T) {
	c := startTerm(t, pipeTransport, adminInfo(""))
	c.send(true, "echo pid=$$; sleep 300\n")
	m := c.waitOutput(regexp.MustCompile(`pid=(\d+)`))
	pid, _ := strconv.Atoi(m[1])
	chunk := strings.Repeat("x", 4096)
	for i := 0; i < 2000; i++ {
		c.send(true, chunk)
	}
	c.ch.Close()
	if err := c.serveResult(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if processAlive(pid) {
		t.Fatalf("shell %d still alive", pid)
	}
}

// requireLogin starts the login program instead of a shell.
func TestRequireLogin(t *testing.T) {
	spec := spawnSpec{requireLogin: true}
	argv, err := shellFor(spec)
	if err != nil {
		t.Skipf("no login program: %v", err)
	}
	if argv[1] != "login" {
		t.Fatalf("argv = %v", argv)
	}
	c := startTerm(t, pipeTransport, adminInfo(`{"type":"options","requireLogin":true}`))
	c.waitOutput(regexp.MustCompile(`(?i)login: ?$`))
	c.ch.Close()
	if err := c.serveResult(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
