package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// TestLocalAgentDiesWithServer is finding 9 of issue 20: after kill -9 of
// a server started with --local-agent (the C agent), the agent must not
// keep running, and the restarted server must start its own agent again
// (it failed with "text file busy").
func TestLocalAgentDiesWithServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds server-lite and runs the C agent")
	}
	agentBin := filepath.Join(mctest.Install(t), "agents", "meshagent_x86-64")
	if _, err := os.Stat(agentBin); err != nil {
		t.Skip("no C agent for this machine")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "server-lite")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(dir, "data")

	start := func() (*exec.Cmd, *logWatch) {
		// -v: "agent connected" is logged at Info only for a new device;
		// the restarted server's agent may come back as the same device.
		cmd := exec.Command(bin, "-v", "--data", data, "--listen", addr, "--local-agent", agentBin)
		lw := &logWatch{}
		cmd.Stdout, cmd.Stderr = lw, lw
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd, lw
	}
	srv, lw := start()
	if !lw.wait("agent connected", 60*time.Second) {
		t.Fatalf("local agent did not connect; server output:\n%s", lw)
	}
	agents := childrenOf(srv.Process.Pid)
	if len(agents) == 0 {
		t.Fatal("no local agent process found")
	}
	for _, pid := range agents {
		t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	}
	srv.Process.Signal(syscall.SIGKILL)
	srv.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range agents {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("local agent %d still running after kill -9 of the server", pid)
		}
	}
	srv2, lw2 := start()
	if !lw2.wait("agent connected", 90*time.Second) {
		t.Fatalf("restarted server: local agent did not connect; output:\n%s", lw2)
	}
	if strings.Contains(lw2.String(), "text file busy") {
		t.Errorf("restart output:\n%s", lw2)
	}
	srv2.Process.Signal(os.Interrupt)
	srv2.Wait()
}

// childrenOf lists processes whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) > 1 {
			if pp, _ := strconv.Atoi(f[1]); pp == pid {
				out = append(out, n)
			}
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && !strings.HasPrefix(strings.TrimSpace(string(b[i+1:])), "Z")
}

// logWatch collects a process's output.
type logWatch struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logWatch) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logWatch) wait(s string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if strings.Contains(l.String(), s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
