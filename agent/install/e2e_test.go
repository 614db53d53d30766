//go:build linux

package install_test

// End-to-end tests of the real binary on Linux: the C agent's install
// commands run against a temporary root (MESHAGENT_INSTALL_ROOT), never the
// real /usr/local or /etc, with a stand-in systemctl on PATH that records
// its calls and, for "start", runs the unit's ExecStart as systemd would.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const rootEnv = "MESHAGENT_INSTALL_ROOT"

var build struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// agentBinary builds cmd/meshagent once for the package's tests.
func agentBinary(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("end-to-end install tests run on Linux")
	}
	build.once.Do(func() {
		build.dir, build.err = os.MkdirTemp("", "meshagent-install-e2e-")
		if build.err != nil {
			return
		}
		build.bin = filepath.Join(build.dir, "meshagent")
		cmd := exec.Command("go", "build", "-o", build.bin, "-ldflags", "-X main.version=e2e-test", "github.com/meshgo/meshagent/cmd/meshagent")
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.bin
}

// fakeSystemctl stands in for systemctl under $MESHAGENT_INSTALL_ROOT.
const fakeSystemctl = `#!/bin/bash
root="${MESHAGENT_INSTALL_ROOT:?}"
echo "$*" >> "$root/systemctl.log"
cmd="$1"; unit="$2"; name="${unit%.service}"
pidfile="$root/run/$name.pid"
unitfile="$root/etc/systemd/system/$name.service"
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "$cmd" in
daemon-reload|disable) exit 0;;
enable) [ -f "$unitfile" ] || { echo "Unit $unit not found." >&2; exit 1; }; exit 0;;
start)
	running && exit 0
	[ -f "$unitfile" ] || { echo "Unit $unit not found." >&2; exit 5; }
	read -r -a argv <<< "$(sed -n 's/^ExecStart=//p' "$unitfile")"
	argv[0]="$root${argv[0]}"
	cd "$root$(sed -n 's/^WorkingDirectory=//p' "$unitfile")" || exit 1
	setsid "${argv[@]}" >> "$root/journal-$name.log" 2>&1 < /dev/null &
	echo $! > "$pidfile"
	exit 0;;
stop)
	if running; then
		pid=$(cat "$pidfile"); kill -TERM "$pid"
		for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$pidfile"; exit 0;;
restart) "$0" stop "$unit"; exec "$0" start "$unit";;
is-active) if running; then echo active; exit 0; else echo inactive; exit 3; fi;;
*) echo "fake systemctl: unsupported: $*" >&2; exit 1;;
esac
`

// fakeSystemd prepares root to look like a systemd host and returns the
// environment for commands run "on" it.
func fakeSystemd(t *testing.T, root string) []string {
	t.Helper()
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"run/systemd/system", "etc/systemd/system"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	t.Cleanup(func() { killService(t, root, "meshagent") })
	return append(cleanEnv(), rootEnv+"="+root, "PATH="+bin+":"+os.Getenv("PATH"))
}

// killService ends an agent the fake systemctl started, by its PID.
func killService(t *testing.T, root, name string) {
	b, err := os.ReadFile(filepath.Join(root, "run", name+".pid"))
	if err != nil {
		return
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 1 {
		if syscall.Kill(pid, 0) == nil {
			t.Logf("killing leftover agent pid %d", pid)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// cleanEnv is the test's environment without proxies (everything is on
// loopback) and without a root from outside.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch strings.ToUpper(k) {
		case "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", rootEnv, "PATH":
			continue
		}
		env = append(env, kv)
	}
	return env
}

func run(t *testing.T, env []string, dir string, name string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env, cmd.Dir = env, dir
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	shown := string(out)
	if lines := strings.Split(shown, "\n"); len(lines) > 40 {
		shown = "[...]\n" + strings.Join(lines[len(lines)-40:], "\n")
	}
	t.Logf("$ %s %s  (exit %d)\n%s", filepath.Base(name), strings.Join(args, " "), code, shown)
	return string(out), code
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// download lays out what MeshCentral's install script leaves in its
// working directory: ./meshagent and ./meshagent.msh.
func download(t *testing.T, msh string) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile(agentBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "meshagent"), b, 0o755)
	os.WriteFile(filepath.Join(dir, "meshagent.msh"), []byte(msh), 0o644)
	return dir
}

// deadMSH points at a closed loopback port: the agent starts and retries.
func deadMSH() string {
	return "MeshName=test\r\nMeshType=2\r\nMeshID=0x" + strings.ToUpper(randomHex(48)) + "\r\nServerID=" +
		strings.ToUpper(randomHex(48)) + "\r\nMeshServer=wss://127.0.0.1:9/agent.ashx\r\n"
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func fileContains(path, s string) bool {
	b, err := os.ReadFile(path)
	return err == nil && bytes.Contains(b, []byte(s))
}

const installDir = "usr/local/mesh_services/meshagent"

// TestInstalledLayoutRuns installs with files only (no service manager
// under the root), then starts the installed binary the way the unit does
// and checks that it finds its .msh and data directory beside itself.
func TestInstalledLayoutRuns(t *testing.T) {
	root := t.TempDir()
	dl := download(t, deadMSH())
	env := append(cleanEnv(), rootEnv+"="+root, "PATH="+os.Getenv("PATH"))
	out, code := run(t, env, dl, "./meshagent", "-fullinstall", "--copy-msh=1")
	if code != 0 || !strings.Contains(out, "files only") {
		t.Fatalf("install: exit %d", code)
	}
	dir := filepath.Join(root, installDir)
	bin := filepath.Join(dir, "meshagent")
	unit, err := os.ReadFile(filepath.Join(root, "etc/systemd/system/meshagent.service"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(unit, []byte("ExecStart=/usr/local/mesh_services/meshagent/meshagent service-run\n")) {
		t.Fatalf("unit:\n%s", unit)
	}

	cmd := exec.Command(bin, "service-run")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-done
		}
	})
	logPath := filepath.Join(dir, "meshagent.log")
	waitFor(t, "the service log file", 60*time.Second, func() bool { return fileContains(logPath, "meshagent starting as a service") })
	if !fileContains(logPath, "settings="+filepath.Join(dir, "meshagent.msh")) || !fileContains(logPath, "data="+dir) {
		b, _ := os.ReadFile(logPath)
		t.Errorf("log does not show the installed settings and data dir:\n%s", b)
	}
	if st, err := os.Stat(filepath.Join(dir, "meshagent.identity")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("identity: %v %v", st, err)
	}
	if st, _ := os.Stat(dir); st.Mode().Perm() != 0o700 {
		t.Errorf("install dir mode %v", st.Mode().Perm())
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("service-run after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("service-run ignored SIGTERM")
	}
	if !fileContains(logPath, "meshagent stopped") {
		t.Errorf("no stop in the log")
	}
	if !strings.Contains(stderr.String(), "meshagent starting as a service") {
		t.Errorf("platform log (stderr, the journal under systemd) lacks the start:\n%s", stderr.String())
	}
	nodeID, code := run(t, env, dir, bin, "-nodeid")
	if code != 0 || len(strings.TrimSpace(nodeID)) < 40 {
		t.Errorf("-nodeid in the installed layout: %q", nodeID)
	}

	out, code = run(t, env, dl, "./meshagent", "-fulluninstall")
	if code != 0 {
		t.Fatalf("fulluninstall: exit %d", code)
	}
	assertOnlyDirs(t, root)
}

// assertOnlyDirs fails if any file is left under root, except the fake
// service manager's own records.
func assertOnlyDirs(t *testing.T, root string) {
	t.Helper()
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "systemctl.log" || strings.HasPrefix(rel, "journal-") {
			return nil
		}
		t.Errorf("left behind after -fulluninstall: %s", rel)
		return nil
	})
	if _, err := os.Stat(filepath.Join(root, installDir)); err == nil {
		t.Errorf("install directory left behind")
	}
}

// TestServiceLifecycle runs install, status, stop, start, restart and
// -fulluninstall through a systemctl stand-in that starts the unit's
// ExecStart for real.
func TestServiceLifecycle(t *testing.T) {
	root := t.TempDir()
	env := fakeSystemd(t, root)
	dl := download(t, deadMSH()+"meshServiceName=acme-agent\r\n")
	bin := filepath.Join(root, "opt/acme-agent/meshagent")
	if _, code := run(t, env, dl, "./meshagent", "-install", "--copy-msh=1", `--installPath="/opt/acme-agent"`, "--no-embedded=1"); code != 0 {
		t.Fatal("install failed")
	}
	t.Cleanup(func() { killService(t, root, "acme-agent") })
	journal := filepath.Join(root, "journal-acme-agent.log")
	waitFor(t, "the agent's start in the journal", 60*time.Second, func() bool { return fileContains(journal, "meshagent starting as a service") })
	if out, code := run(t, env, dl, bin, "status"); code != 0 || !strings.Contains(out, "acme-agent: running") {
		t.Errorf("status: %q %d", out, code)
	}
	if _, code := run(t, env, dl, bin, "stop"); code != 0 {
		t.Error("stop failed")
	}
	if out, code := run(t, env, dl, bin, "-state"); code != 3 || !strings.Contains(out, "stopped") {
		t.Errorf("state after stop: %q %d", out, code)
	}
	if _, code := run(t, env, dl, bin, "start"); code != 0 {
		t.Error("start failed")
	}
	if _, code := run(t, env, dl, bin, "restart"); code != 0 {
		t.Error("restart failed")
	}
	if out, _ := run(t, env, dl, bin, "status"); !strings.Contains(out, "running") {
		t.Errorf("status after restart: %q", out)
	}
	// -uninstall, run from the download directory without --installPath,
	// finds the installation from the unit, and keeps settings and
	// identity for a later reinstall.
	if _, code := run(t, env, dl, "./meshagent", "-uninstall"); code != 0 {
		t.Error("uninstall failed")
	}
	dir := filepath.Dir(bin)
	for _, f := range []string{"meshagent.msh", "meshagent.identity"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("-uninstall removed %s", f)
		}
	}
	if _, err := os.Stat(bin); err == nil {
		t.Error("-uninstall left the binary")
	}
	// With the unit gone, the path must be given again.
	if _, code := run(t, env, dl, "./meshagent", "-fulluninstall", "--installPath=/opt/acme-agent"); code != 0 {
		t.Error("fulluninstall failed")
	}
	calls, _ := os.ReadFile(filepath.Join(root, "systemctl.log"))
	want := []string{"daemon-reload", "enable acme-agent.service", "restart acme-agent.service", "stop acme-agent.service", "start acme-agent.service", "is-active acme-agent.service",
		"stop acme-agent.service", "is-active acme-agent.service", "start acme-agent.service", "restart acme-agent.service"}
	got := strings.Split(strings.TrimSpace(string(calls)), "\n")
	if len(got) < len(want) || strings.Join(got[:len(want)], "|") != strings.Join(want, "|") {
		t.Errorf("systemctl calls:\n%s\nwant to begin with\n%s", calls, strings.Join(want, "\n"))
	}
	assertOnlyDirs(t, root)
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s left behind", dir)
	}
}

// TestNoServiceManager: without systemd and without a root, install
// refuses before touching anything (it would otherwise leave files nobody
// starts), unless --files-only. Only the dry run is exercised here: a real
// install would write to /usr/local.
func TestNoServiceManager(t *testing.T) {
	dl := download(t, deadMSH())
	env := append(cleanEnv(), "PATH="+os.Getenv("PATH"))
	out, code := run(t, env, dl, "./meshagent", "-fullinstall", "--dry-run", "--memory-max=512M")
	if code != 0 || !strings.Contains(out, "MemoryMax=512M") || !strings.Contains(out, "copy  -rwxr-xr-x /usr/local/mesh_services/meshagent/meshagent <- "+dl) {
		t.Errorf("dry run: %d\n%s", code, out)
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs here; the refusal is not reachable without a root")
	}
	if os.Geteuid() == 0 {
		// As root a mistake here would write to /usr/local: check the
		// refusal with an unwritable install path instead.
		out, code = run(t, env, dl, "./meshagent", "-fullinstall", "--installPath=/proc/nonexistent/mesh")
	} else {
		out, code = run(t, env, dl, "./meshagent", "-fullinstall")
	}
	if code == 0 || !strings.Contains(out, "no supported service manager") {
		t.Errorf("install without a service manager: exit %d\n%s", code, out)
	}
	if _, code := run(t, env, dl, "./meshagent", "-fullinstall", "--bogus-flag=1", "--dry-run"); code != 0 {
		t.Errorf("unknown option should warn, not fail")
	}
	if _, code := run(t, env, dl, "./meshagent", "-fullinstall", "stray"); code != 2 {
		t.Errorf("stray argument: exit %d, want 2", code)
	}
}
