//go:build linux

package interop

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/logindtest"
	"github.com/meshgo/meshagent/internal/mctest"
)

// startLogindAgent runs our agent in srv's group mesh with the stand-in
// logind l as its system bus (DBUS_SYSTEM_BUS_ADDRESS), waits until
// MeshCentral lists it online and returns it with its node id (without
// "node//"). The bus is not optional: this sandbox runs as root with
// CAP_SYS_BOOT, and an agent without logind takes a power action to the
// kernel's reboot call, which reboots the machine. Every interop test whose
// agent may be sent a power action or reads logind starts it here.
func startLogindAgent(t *testing.T, srv *mctest.Server, mesh string, l *logindtest.Logind) (*agentProc, string) {
	t.Helper()
	if l == nil || !strings.HasPrefix(l.Address, "unix:path=") {
		t.Fatal("startLogindAgent needs the stand-in logind's private bus")
	}
	a := startAgentEnv(t, srv.MSH(t, mesh), []string{"DBUS_SYSTEM_BUS_ADDRESS=" + l.Address})
	if _, ok := a.waitLog(60*time.Second, "core started"); !ok {
		t.Fatal("agent did not start its core")
	}
	node := strings.TrimPrefix(a.nodeID(), "node//")
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ShortID() == node && d.Online() }, 60*time.Second)
	return a, node
}

// agentLog returns the msg of every agentlog event MeshCentral stored for
// the device (the device page's Events tab).
func agentLog(t *testing.T, srv *mctest.Server, node string) []string {
	t.Helper()
	var out []string
	for _, e := range srv.Events(t) {
		if e["action"] == "agentlog" && e["nodeid"] == "node//"+node {
			s, _ := e["msg"].(string)
			out = append(out, s)
		}
	}
	return out
}

// waitAgentLog waits for an agentlog event of the device containing text.
func waitAgentLog(t *testing.T, srv *mctest.Server, node, text string) []string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		l := agentLog(t, srv, node)
		if slices.ContainsFunc(l, func(s string) bool { return strings.Contains(s, text) }) {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("no event %q in the device's event log: %q", text, l)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// meshctrl devicepower --off/--reset/--sleep reach systemd-logind's
// PowerOff/Reboot/Suspend through the real MeshCentral and our agent.
// logind is the one stand-in (internal/logindtest, on a private
// dbus-daemon the agent is pointed at with DBUS_SYSTEM_BUS_ADDRESS): a
// real one would power the machine off. The device's event log says
// what was done, and when logind refuses, that nothing was done and why.
func TestMeshctrlDevicePower(t *testing.T) {
	l := logindtest.Start(t)
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "power-test")
	// The agent must never reach the kernel fallback here: it would
	// reboot the test machine. startLogindAgent gives it the stand-in's bus.
	a, node := startLogindAgent(t, srv, mesh, l)

	for i, tc := range []struct {
		flag, call, event string
	}{
		{"--off", "PowerOff(false)", "Performing power action 2 (power off)"},
		{"--reset", "Reboot(false)", "Performing power action 3 (reset)"},
		{"--sleep", "Suspend(false)", "Performing power action 4 (sleep)"},
	} {
		out, err := srv.Meshctrl(t, "devicepower", "--id", node, tc.flag)
		if err != nil || strings.TrimSpace(out) != "ok" {
			t.Fatalf("devicepower %s: %v %q", tc.flag, err, out)
		}
		calls := l.WaitCalls(i+1, 20*time.Second)
		if len(calls) != i+1 || calls[i] != tc.call {
			t.Fatalf("devicepower %s: logind got %v, want %s last", tc.flag, calls, tc.call)
		}
		waitAgentLog(t, srv, node, tc.event)
		for deadline := time.Now().Add(5 * time.Second); a.countLog(`msg="power action accepted"`) < i+1; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("devicepower %s: the agent's log has %d accepted lines, want %d", tc.flag, a.countLog(`msg="power action accepted"`), i+1)
			}
		}
	}
	if n := strings.Count(a.log.String(), `via="systemd-logind `); n != 3 {
		t.Errorf("%d accepted actions went through logind, want 3", n)
	}

	// logind refuses, as it refuses a caller polkit does not trust: nothing
	// happens and the event log says so.
	l.Deny("org.freedesktop.DBus.Error.InteractiveAuthorizationRequired")
	if out, err := srv.Meshctrl(t, "devicepower", "--id", node, "--off"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("devicepower --off: %v %q", err, out)
	}
	ev := waitAgentLog(t, srv, node, "Power action 2 not done")
	if n := len(l.Calls()); n != 3 {
		t.Errorf("logind has %d calls after the refusal, want 3", n)
	}
	for _, s := range ev {
		if strings.Contains(s, "not done") && !strings.Contains(s, "lacks the privilege") {
			t.Errorf("refusal event does not name the privilege: %q", s)
		}
		t.Logf("event: %s", s)
	}
}

// As an unprivileged user on a machine without logind, a power action
// fails with a clear privilege error in the event log: the kernel's
// reboot call needs CAP_SYS_BOOT, which the agent checks before calling.
// (Even were the check wrong, the kernel refuses reboot(2) to a non-root
// caller, so this test cannot power anything off.)
func TestMeshctrlDevicePowerUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the agent as nobody")
	}
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "power-nobody")
	// A directory nobody can reach, with a copy of the binary in it (the
	// build directory is private to root).
	root, err := os.MkdirTemp("", "meshgo-power-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	dir := filepath.Join(root, "agent")
	bin := filepath.Join(root, "meshagent")
	b, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meshagent.msh"), srv.MSH(t, mesh), 0o600); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	for _, p := range []string{dir, filepath.Join(dir, "meshagent.msh")} {
		if err := os.Chown(p, nobody, nobody); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	a := &agentProc{t: t, dir: dir, cred: &syscall.Credential{Uid: nobody, Gid: nobody},
		env:  []string{"DBUS_SYSTEM_BUS_ADDRESS=unix:path=" + filepath.Join(root, "no-bus")},
		args: []string{"run", "--msh", filepath.Join(dir, "meshagent.msh"), "--data", dir, "--log-level", "debug"}}
	saved := agentBin
	agentBin = bin
	a.start()
	agentBin = saved
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			t.Logf("agent log:\n%s", a.log.String())
		}
	})
	if _, ok := a.waitLog(30*time.Second, "core started"); !ok {
		t.Fatal("agent did not start its core")
	}
	var node string
	srv.WaitDevice(t, func(d mctest.Device) bool {
		if d.MeshID == mesh && d.Online() {
			node = d.ShortID()
			return true
		}
		return false
	}, 30*time.Second)
	if out, err := srv.Meshctrl(t, "devicepower", "--id", node, "--reset"); err != nil || strings.TrimSpace(out) != "ok" {
		t.Fatalf("devicepower --reset: %v %q", err, out)
	}
	ev := waitAgentLog(t, srv, node, "Power action 3 not done")
	for _, s := range ev {
		t.Logf("event: %s", s)
		if strings.Contains(s, "Performing") {
			t.Errorf("event claims the action: %q", s)
		}
		if strings.Contains(s, "not done") && (!strings.Contains(s, "CAP_SYS_BOOT") || !strings.Contains(s, "lacks the privilege")) {
			t.Errorf("event does not say which privilege is missing: %q", s)
		}
	}
}
