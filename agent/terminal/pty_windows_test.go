package terminal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/shells"
	"github.com/meshgo/meshagent/internal/winetest"
	"github.com/meshgo/meshagent/proto/session"
)

// wineConPTYGap is what wine 8 does with a child given a pseudoconsole
// (measured with WINEDEBUG=+console,+process): conhost serves the child's
// console requests, but the child never gets console standard handles.
// With STARTF_USESTDHANDLES and NULL (or INVALID_HANDLE_VALUE) handles,
// as here, cmd.exe writes to handle 0 and nothing reaches the pseudo
// console; without STARTF_USESTDHANDLES it inherits the agent's own
// stdout and the output bypasses the pseudoconsole, the real-Windows
// mistake Microsoft's recipe avoids (so that is not done). What does
// arrive is conhost's own start (clear screen, the window title).
const wineConPTYGap = "wine 8 gives a pseudoconsole's child no console standard handles (cmd.exe writes to handle 0): conhost sends its clear-screen and title, no prompt, no output"

// TestConPTYShell starts cmd.exe on a pseudoconsole as a terminal session
// does and types a command: its output must come back through the
// console's output pipe.
func TestConPTYShell(t *testing.T) {
	p, err := start(spawnSpec{protocol: session.ProtoTerminal, cols: 100, rows: 30})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		p.Kill()
		p.Close()
	}()
	if p.Pid() <= 0 {
		t.Fatalf("pid %d", p.Pid())
	}
	got := make(chan []byte, 64)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := p.Read(b)
			if n > 0 {
				got <- bytes.Clone(b[:n])
			}
			if err != nil {
				close(got)
				return
			}
		}
	}()
	// ConPTY wants Enter as a carriage return.
	if _, err := p.Write([]byte("echo conpty-%OS%-ok\r")); err != nil {
		t.Fatal(err)
	}
	var out []byte
	deadline := time.After(20 * time.Second)
	for !bytes.Contains(out, []byte("conpty-Windows_NT-ok")) {
		select {
		case b, ok := <-got:
			if !ok {
				t.Fatalf("console closed; output %q", out)
			}
			out = append(out, b...)
		case <-deadline:
			t.Logf("console output: %q", out)
			winetest.SkipUnderWine(t, wineConPTYGap)
			t.Fatalf("no command output within 20 s; output %q", out)
		}
	}
}

// A PowerShell terminal where there is no working PowerShell fails with
// the reason (under wine: its powershell.exe is a stub), not an empty
// console.
func TestConPTYPowerShellMissing(t *testing.T) {
	if _, err := shells.PowerShell(); err == nil {
		t.Skip("PowerShell is installed here")
	}
	p, err := start(spawnSpec{protocol: session.ProtoPowerShell, cols: 80, rows: 25})
	if err == nil {
		p.Kill()
		p.Close()
		t.Fatal("a PowerShell terminal started without PowerShell")
	}
	if !errors.Is(err, shells.ErrNoPowerShell) || !strings.Contains(err.Error(), "PowerShell") {
		t.Fatalf("error %v, want one wrapping shells.ErrNoPowerShell", err)
	}
	t.Log(err)
}
