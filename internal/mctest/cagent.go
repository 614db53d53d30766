package mctest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// CAgent is a running real C MeshAgent (from MeshCentral's agents directory)
// in its own temporary directory.
type CAgent struct {
	t       testing.TB
	dir     string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// cAgentBinary names the C agent build for this machine in MeshCentral's
// agents directory, or "" when there is none.
func cAgentBinary() string {
	if runtime.GOOS != "linux" {
		return ""
	}
	switch runtime.GOARCH {
	case "amd64":
		return "meshagent_x86-64"
	case "arm64":
		return "meshagent_aarch64"
	}
	return ""
}

// StartCAgent copies MeshCentral's C agent for this machine
// (agents/meshagent_x86-64 on linux/amd64) into a temporary directory as
// "meshagent", writes msh there as meshagent.msh and runs `./meshagent run`
// in that directory, its output going to a log file (line-buffered through
// stdbuf when available; the agent block-buffers otherwise). A cleanup stops
// it by PID. It skips the test on platforms without a C agent build.
func StartCAgent(t testing.TB, msh []byte) *CAgent {
	t.Helper()
	name := cAgentBinary()
	if name == "" {
		t.Skipf("mctest: no C MeshAgent build for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	src := filepath.Join(Install(t), "agents", name)
	dir := t.TempDir()
	bin, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("mctest: read C agent: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meshagent"), bin, 0o755); err != nil {
		t.Fatalf("mctest: write C agent: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meshagent.msh"), msh, 0o644); err != nil {
		t.Fatalf("mctest: write meshagent.msh: %v", err)
	}
	a := &CAgent{t: t, dir: dir, logPath: filepath.Join(dir, "meshagent-output.log")}
	if err := a.start(); err != nil {
		t.Fatalf("mctest: %v", err)
	}
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			t.Logf("mctest: C agent log tail (%s):\n%s", a.logPath, tail(a.Log(), 40))
		}
	})
	return a
}

func (a *CAgent) start() error {
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open C agent log: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "---- mctest: starting C agent at %s\n", time.Now().Format(time.RFC3339))
	var cmd *exec.Cmd
	if sb, err := exec.LookPath("stdbuf"); err == nil {
		// stdbuf execs the agent, so the PID is the agent's.
		cmd = exec.Command(sb, "-oL", "-eL", "./meshagent", "run")
	} else {
		cmd = exec.Command("./meshagent", "run")
	}
	cmd.Dir = a.dir
	cmd.Env = loopbackEnv()
	cmd.Stdout = logf
	cmd.Stderr = logf
	setupProc(cmd, sigKill)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start C agent in %s: %w", a.dir, err)
	}
	done := make(chan struct{})
	go func() {
		cmd.Wait()
		close(done)
	}()
	a.mu.Lock()
	a.cmd, a.done = cmd, done
	a.mu.Unlock()
	a.t.Logf("mctest: C agent started in %s (pid %d)", a.dir, cmd.Process.Pid)
	return nil
}

// stop sends SIGTERM to the agent, then SIGKILL to its process group after
// 5 s or if children remain.
func (a *CAgent) stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	pgid := cmd.Process.Pid
	select {
	case <-done:
	default:
		cmd.Process.Signal(sigTerm)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		a.t.Logf("mctest: C agent ignored SIGTERM for 5 s; killing it")
	}
	signalGroup(pgid, sigKill)
	<-done
}

// Dir returns the agent's directory (meshagent, meshagent.msh, meshagent.db).
func (a *CAgent) Dir() string { return a.dir }

// PID returns the agent process id, or 0 when it is stopped.
func (a *CAgent) PID() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil {
		return 0
	}
	return a.cmd.Process.Pid
}

// Stop stops the agent (SIGTERM, then SIGKILL). It keeps its directory, so
// Restart brings back the same node id.
func (a *CAgent) Stop() { a.stop() }

// Restart stops the agent if it runs and starts it again in the same
// directory (same meshagent.db, so the same node id).
func (a *CAgent) Restart() {
	a.t.Helper()
	a.stop()
	if err := a.start(); err != nil {
		a.t.Fatalf("mctest: restart C agent: %v", err)
	}
}

// Log returns the agent's output so far.
func (a *CAgent) Log() string {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", a.logPath, err)
	}
	return string(b)
}

// NodeID returns the agent's node id in MeshCentral's form ("node//...") by
// running `./meshagent -nodeid` in its directory. It waits up to timeout
// for the agent to have created its identity (meshagent.db) on first start.
func (a *CAgent) NodeID(t testing.TB, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		if st, err := os.Stat(filepath.Join(a.dir, "meshagent.db")); err == nil && st.Size() > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cmd := exec.CommandContext(ctx, "./meshagent", "-nodeid")
			cmd.Dir = a.dir
			out, err := cmd.Output()
			cancel()
			last = strings.TrimSpace(string(out))
			if err == nil && len(last) == 96 {
				id, err := NodeIDFromHex(last)
				if err != nil {
					t.Fatalf("mctest: %v", err)
				}
				return id
			}
			if err != nil {
				last = fmt.Sprintf("%s (%v)", last, err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mctest: C agent in %s has no node id after %s (meshagent -nodeid: %q)", a.dir, timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
