//go:build linux

package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"
)

// ttyShell runs the interactive shell with stdin on a pseudo-terminal, as
// a user at a terminal would: raw mode (keys go through unprocessed), the
// initial size and a SIGWINCH resize reach the remote pty, and the local
// terminal mode is restored afterwards.
func (e *liveEnv) ttyShell(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pty: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	if err := pty.Setsize(master, &pty.Winsize{Rows: 30, Cols: 100}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	sessionStdin = slave
	defer func() { sessionStdin = os.Stdin }()
	var out lockedBuf
	var errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		full := []string{"shell", "--url", e.url, "--pass", e.pass, "--id", e.nodeID}
		done <- run(context.Background(), full, &out, &errb)
	}()
	waitOut := func(what string) {
		t.Helper()
		for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			if strings.Contains(out.String(), what) {
				return
			}
		}
		t.Fatalf("no %q in the shell output:\n%s", what, out.String())
	}
	// printf builds the expected text so the echoed command never matches.
	master.Write([]byte("stty size; printf 'SZ%s\\n' DONE\r"))
	waitOut("30 100")
	waitOut("SZDONE")
	if err := pty.Setsize(master, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	time.Sleep(300 * time.Millisecond) // the termsize message is on its way
	master.Write([]byte("stty size; printf 'SZ%s\\n' AGAIN\r"))
	waitOut("SZAGAIN")
	if !strings.Contains(out.String(), "40 120") {
		t.Fatalf("resize not applied:\n%s", out.String())
	}
	master.Write([]byte("exit\r"))
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("shell exit %d: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("shell did not end after exit")
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("terminal mode not restored: lflag %#x→%#x iflag %#x→%#x", before.Lflag, after.Lflag, before.Iflag, after.Iflag)
	}
}
