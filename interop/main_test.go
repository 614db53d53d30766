//go:build linux

// Package interop runs our agent, built as a user builds it, against the
// real MeshCentral 1.1.55 and compares it with the real C agent.
package interop

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
)

var agentBin string

func TestMain(m *testing.M) {
	var err error
	if agentBin, err = agentbin.Build(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := mctest.Main(m)
	agentbin.Cleanup()
	os.Exit(code)
}

// agentProc is our agent binary running in the foreground, as `meshagent run`.
type agentProc struct {
	t       testing.TB
	dir     string
	args    []string
	bin     string              // the agent binary; "" means agentBin
	env     []string            // added to the test's environment
	cred    *syscall.Credential // nil: run as the test's user
	cmd     *exec.Cmd
	log     *syncBuffer
	started time.Time
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startAgent writes msh into a fresh directory and runs our agent there.
func startAgent(t testing.TB, msh []byte, extra ...string) *agentProc {
	t.Helper()
	return startAgentEnv(t, msh, nil, extra...)
}

// startAgentEnv is startAgent with env added to the agent's environment.
func startAgentEnv(t testing.TB, msh []byte, env []string, extra ...string) *agentProc {
	t.Helper()
	return startAgentBin(t, "", msh, env, extra...)
}

// startAgentBin is startAgentEnv for the agent binary bin ("" for agentBin).
func startAgentBin(t testing.TB, bin string, msh []byte, env []string, extra ...string) *agentProc {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "meshagent.msh"), msh, 0o600); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{t: t, dir: dir, bin: bin, env: env, args: append([]string{"run", "--msh", filepath.Join(dir, "meshagent.msh"), "--log-level", "debug"}, extra...)}
	a.start()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			t.Logf("agent log:\n%s", a.log.String())
		}
	})
	return a
}

func (a *agentProc) start() {
	a.t.Helper()
	a.log = &syncBuffer{}
	bin := a.bin
	if bin == "" {
		bin = agentBin
	}
	a.cmd = exec.Command(bin, a.args...)
	a.cmd.Env = agentbin.Env(a.env...)
	if a.cred != nil {
		a.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: a.cred}
	}
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.started = time.Now()
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
}

func (a *agentProc) stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	a.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { a.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		a.cmd.Process.Kill()
		<-done
	}
	a.cmd = nil
}

func (a *agentProc) restart() { a.stop(); a.start() }

// nodeID asks the agent binary for its node id, as an admin would.
func (a *agentProc) nodeID() string {
	a.t.Helper()
	out, err := exec.Command(agentBin, "-nodeid", "--data", a.dir).Output()
	if err != nil {
		a.t.Fatalf("meshagent -nodeid: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// waitLog waits until the agent's log has a line containing all of parts.
func (a *agentProc) waitLog(timeout time.Duration, parts ...string) (string, bool) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		sc := bufio.NewScanner(strings.NewReader(a.log.String()))
		for sc.Scan() {
			line := sc.Text()
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(line, p)
			}
			if ok {
				return line, true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return "", false
}

// countLog counts log lines containing s.
func (a *agentProc) countLog(s string) int { return strings.Count(a.log.String(), s) }
