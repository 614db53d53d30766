//go:build linux

package interop

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/xvfbtest"
	"github.com/meshgo/meshagent/proto/handshake"
)

// An X server that starts after the agent makes MeshCentral show the
// desktop capability (its Desktop tab) without a reconnect. The agent runs
// in mount and PID namespaces of its own, with empty /tmp/.X11-unix and
// /run/user and a /proc that shows only its namespace, so the other X
// servers and Wayland sessions on this machine (other tests run theirs at
// the same time; the agent finds X servers by their processes and reaches
// them through abstract sockets) are hidden from it; Xvfb is then started
// inside those namespaces.
func TestDesktopCapabilityAfterXStarts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for a mount namespace")
	}
	xvfbtest.RequireTools(t)
	for _, tool := range []string{"unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "caps-refresh")
	dir := t.TempDir()
	msh := filepath.Join(dir, "meshagent.msh")
	if err := os.WriteFile(msh, srv.MSH(t, mesh), 0o600); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	script := `mount -t tmpfs tmpfs /tmp/.X11-unix && mkdir -p /run/user && mount -t tmpfs tmpfs /run/user && exec "$@"`
	cmd := exec.Command("unshare", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child", "--propagation", "private",
		"sh", "-c", script, "sh", agentBin, "run", "--msh", msh, "--log-level", "debug")
	cmd.Env = agentbin.Env("DISPLAY=", "WAYLAND_DISPLAY=")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The agent is unshare's child (PID 1 of the new namespace); when it
	// exits, the kernel ends everything else in the namespace.
	inner := childPID(t, cmd.Process.Pid, 30*time.Second)
	t.Cleanup(func() {
		syscall.Kill(inner, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("agent log:\n%s", log.String())
		}
	})
	a := &agentProc{t: t, dir: dir, log: log}
	if _, ok := a.waitLog(60*time.Second, "core started"); !ok {
		t.Fatal("agent did not start its core")
	}
	id := a.nodeID()
	dev := srv.WaitDevice(t, func(d mctest.Device) bool { return d.ShortID() == id && d.Online() && d.Agent.Caps != 0 }, 60*time.Second)
	if dev.Agent.Caps&int(handshake.CapDesktop) != 0 {
		t.Fatalf("desktop capability advertised with no X server in the agent's view: caps %d", dev.Agent.Caps)
	}

	n := 0
	for d := 170; d < 230; d++ {
		if xvfbtest.Free(d) {
			n = d
			break
		}
	}
	if n == 0 {
		t.Fatal("no free X display number")
	}
	x := exec.Command("nsenter", "-t", strconv.Itoa(inner), "-m", "-p", "Xvfb", fmt.Sprintf(":%d", n), "-nolisten", "tcp", "-screen", "0", "320x240x24")
	x.Stdout, x.Stderr = log, log
	// Killing nsenter leaves Xvfb (its child, in the agent's namespace)
	// holding the output pipe until the agent's cleanup ends the namespace:
	// do not wait for the pipe.
	x.WaitDelay = time.Second
	if err := x.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Process.Kill(); x.Wait() })
	start := time.Now()
	dev = srv.WaitDevice(t, func(d mctest.Device) bool {
		return d.ShortID() == id && d.Agent.Caps&int(handshake.CapDesktop) != 0
	}, 60*time.Second)
	t.Logf("desktop capability shown %v after Xvfb started (caps %d)", time.Since(start).Round(time.Second), dev.Agent.Caps)
	if !dev.Online() {
		t.Error("the agent reconnected instead of re-advertising")
	}
}

// childPID waits for the first child of pid to appear and returns it.
func childPID(t *testing.T, pid int, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
			if c, err := strconv.Atoi(f[0]); err == nil {
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d has no child after %v (%v)", pid, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
