package mctest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
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

	hosts map[string]string // name -> address, in its own /etc/hosts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// CAgentOptions tunes StartCAgentWith.
type CAgentOptions struct {
	// Hosts maps host names to addresses the agent alone sees, for a
	// service meshcore.js names by a fixed Internet address (ipinfo.io's
	// location service) that a test stands in for on loopback: the agent
	// runs in a private mount namespace where a copy of /etc/hosts with
	// these lines is bound over the real one. Each name is checked to
	// resolve to its address there before the agent starts, so nothing
	// reaches the real service. Needs root (the test is skipped otherwise).
	Hosts map[string]string
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

// CAgentPath returns the path of MeshCentral's C agent for this machine
// in the installed package (installing it when missing), for tests that
// run the binary themselves. It skips the test on platforms without a C
// agent build.
func CAgentPath(t testing.TB) string {
	t.Helper()
	name := cAgentBinary()
	if name == "" {
		t.Skipf("mctest: no C MeshAgent build for %s/%s", runtime.GOOS, runtime.GOARCH)
	}
	return filepath.Join(Install(t), "agents", name)
}

// StartCAgent copies MeshCentral's C agent for this machine
// (agents/meshagent_x86-64 on linux/amd64) into a temporary directory as
// "meshagent", writes msh there as meshagent.msh and runs `./meshagent run`
// in that directory, its output going to a log file (line-buffered through
// stdbuf when available; the agent block-buffers otherwise). A cleanup stops
// it by PID. It skips the test on platforms without a C agent build.
func StartCAgent(t testing.TB, msh []byte) *CAgent {
	t.Helper()
	return StartCAgentWith(t, msh, CAgentOptions{})
}

// StartCAgentWith is StartCAgent with options.
func StartCAgentWith(t testing.TB, msh []byte, o CAgentOptions) *CAgent {
	t.Helper()
	if len(o.Hosts) > 0 && os.Geteuid() != 0 {
		t.Skip("mctest: a private /etc/hosts for the C agent needs root")
	}
	src := CAgentPath(t)
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
	a := &CAgent{t: t, dir: dir, logPath: filepath.Join(dir, "meshagent-output.log"), hosts: o.Hosts}
	if len(a.hosts) > 0 {
		real, err := os.ReadFile("/etc/hosts")
		if err != nil {
			t.Fatalf("mctest: %v", err)
		}
		lines := strings.TrimRight(string(real), "\n") + "\n"
		for _, n := range slices.Sorted(maps.Keys(a.hosts)) {
			lines += a.hosts[n] + " " + n + "\n"
		}
		if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte(lines), 0o644); err != nil {
			t.Fatalf("mctest: %v", err)
		}
	}
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
	argv := []string{"./meshagent", "run"}
	if sb, err := exec.LookPath("stdbuf"); err == nil {
		// stdbuf execs the agent, so the PID is the agent's.
		argv = append([]string{sb, "-oL", "-eL"}, argv...)
	}
	if len(a.hosts) > 0 {
		// unshare and sh exec the agent too: the PID stays the agent's.
		script := `mount --bind hosts /etc/hosts || exit 1`
		for _, n := range slices.Sorted(maps.Keys(a.hosts)) {
			script += fmt.Sprintf(` && getent ahosts %s | awk '$1 != "%s" { bad = 1 } END { exit bad }' && getent hosts %s >/dev/null`, n, a.hosts[n], n)
		}
		script += ` || { echo "mctest: the private /etc/hosts does not take" >&2; exit 1; }; exec "$0" "$@"`
		argv = append([]string{"unshare", "--mount", "--propagation", "private", "sh", "-c", script}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
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
