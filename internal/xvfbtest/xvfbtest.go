//go:build linux

// Package xvfbtest starts Xvfb for tests the way a display manager starts
// an X server: `Xvfb :N -screen 0 WxHx24 -auth FILE -nolisten tcp`, with a
// fresh MIT-MAGIC-COOKIE-1 written by xauth into FILE. It picks a free
// display number, waits until the server is up and stops it by PID when
// the test ends.
package xvfbtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb"
)

// Options says how to start the server. The zero value of each field
// selects its default.
type Options struct {
	// Width and Height of screen 0 (default 1280x800).
	Width, Height int
	// NoReset adds -noreset: without it Xvfb resets whenever its last
	// client disconnects.
	NoReset bool
	// Args are appended to the Xvfb command line.
	Args []string
	// Displays are tried from First plus a time-based offset below Spread
	// (spreading concurrent test binaries apart) up to, not including,
	// Limit. Defaults: 20, 50, 400.
	First, Spread, Limit int
	// Timeout is how long to wait for the server to come up (default 10s).
	Timeout time.Duration
	// Ready, if set, must succeed (after the display's socket exists)
	// before the server counts as up; typically it opens and closes a
	// client connection. Without it the socket alone is enough.
	Ready func(*Display) error
	// AuthName is the cookie file's name in the test's temporary
	// directory (default "Xauthority").
	AuthName string
}

// Display is a running Xvfb.
type Display struct {
	// Name is the display name, ":N".
	Name string
	// Number is N.
	Number int
	// AuthFile is the cookie file passed to -auth.
	AuthFile string
	// Width and Height are the screen size.
	Width, Height int
	// PID is the Xvfb process id.
	PID int

	cmd    *exec.Cmd
	exited chan struct{}
}

// Env returns DISPLAY and XAUTHORITY for a child process.
func (d *Display) Env() []string {
	return []string{"DISPLAY=" + d.Name, "XAUTHORITY=" + d.AuthFile}
}

// Stop terminates the server (SIGTERM, then SIGKILL after 5 seconds) and
// waits for it to exit. It may be called more than once; it also runs when
// the test ends.
func (d *Display) Stop() {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

var envMu sync.Mutex

// Dial opens a client connection with the server's cookie. xgb reads the
// cookie file named by XAUTHORITY, so the variable is set, under a lock,
// only around the dial.
func (d *Display) Dial() (*xgb.Conn, error) {
	envMu.Lock()
	defer envMu.Unlock()
	old, had := os.LookupEnv("XAUTHORITY")
	os.Setenv("XAUTHORITY", d.AuthFile)
	defer func() {
		if had {
			os.Setenv("XAUTHORITY", old)
		} else {
			os.Unsetenv("XAUTHORITY")
		}
	}()
	return xgb.NewConnDisplay(d.Name)
}

func (o Options) withDefaults() Options {
	if o.Width == 0 || o.Height == 0 {
		o.Width, o.Height = 1280, 800
	}
	if o.First == 0 {
		o.First = 20
	}
	if o.Spread == 0 {
		o.Spread = 50
	}
	if o.Limit == 0 {
		o.Limit = 400
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.AuthName == "" {
		o.AuthName = "Xauthority"
	}
	return o
}

// RequireTools skips the test unless Xvfb and xauth are installed.
func RequireTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"Xvfb", "xauth"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (apt-get install xvfb xauth; see .ci/packages.txt)", tool)
		}
	}
}

// Free reports whether display n has neither a lock file nor a socket.
func Free(n int) bool {
	_, e1 := os.Stat(fmt.Sprintf("/tmp/.X%d-lock", n))
	_, e2 := os.Stat(fmt.Sprintf("/tmp/.X11-unix/X%d", n))
	return e1 != nil && e2 != nil
}

// Start launches Xvfb on a free display number with a cookie file in the
// test's temporary directory. It skips the test if Xvfb or xauth is
// missing and fails it if no server comes up.
func Start(t testing.TB, opts Options) *Display {
	t.Helper()
	RequireTools(t)
	opts = opts.withDefaults()
	auth := filepath.Join(t.TempDir(), opts.AuthName)
	for n := opts.First + int(time.Now().UnixNano()%int64(opts.Spread)); n < opts.Limit; n++ {
		if !Free(n) {
			continue
		}
		if d := StartOn(t, n, auth, opts); d != nil {
			return d
		}
	}
	t.Fatal("no free X display number")
	return nil
}

// StartOn starts Xvfb on display n with a new cookie added to auth. It
// returns nil if the server exited at once (the display was taken
// meanwhile) and fails the test if it does not come up in time.
func StartOn(t testing.TB, n int, auth string, opts Options) *Display {
	t.Helper()
	opts = opts.withDefaults()
	cookie := make([]byte, 16)
	rand.Read(cookie)
	disp := ":" + strconv.Itoa(n)
	if out, err := exec.Command("xauth", "-f", auth, "add", disp, ".", hex.EncodeToString(cookie)).CombinedOutput(); err != nil {
		t.Fatalf("xauth: %v: %s", err, out)
	}
	args := []string{disp, "-screen", "0", fmt.Sprintf("%dx%dx24", opts.Width, opts.Height), "-auth", auth, "-nolisten", "tcp"}
	if opts.NoReset {
		args = append(args, "-noreset")
	}
	args = append(args, opts.Args...)
	cmd := exec.Command("Xvfb", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	d := &Display{Name: disp, Number: n, AuthFile: auth, Width: opts.Width, Height: opts.Height,
		PID: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(d.exited) }()
	sock := fmt.Sprintf("/tmp/.X11-unix/X%d", n)
	for deadline := time.Now().Add(opts.Timeout); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-d.exited:
			t.Logf("Xvfb %s exited: %s", disp, stderr.String())
			return nil
		default:
		}
		if _, err := os.Stat(sock); err != nil {
			continue
		}
		if opts.Ready != nil && opts.Ready(d) != nil {
			continue
		}
		t.Cleanup(d.Stop)
		return d
	}
	cmd.Process.Kill()
	<-d.exited
	t.Fatalf("Xvfb %s did not come up: %s", disp, stderr.String())
	return nil
}

// syncBuffer collects the server's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// DialReady is a Ready function: the server is up once Dial succeeds.
func DialReady(d *Display) error {
	c, err := d.Dial()
	if err != nil {
		return err
	}
	c.Close()
	return nil
}
