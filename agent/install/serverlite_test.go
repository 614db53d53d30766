//go:build linux

package install_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// mcAgentsDir is MeshCentral 1.1.55's agents directory (C agents and its
// install scripts), installed by .ci/run.
const mcAgentsDir = "/root/.cache/meshgo/meshcentral-1.1.55/node_modules/meshcentral/agents"

// TestServerLiteInstallScript is the path an administrator of server-lite
// takes to add a Linux machine: server-lite serves our agent's release
// build from --agents and MeshCentral's meshinstall-linux.sh from
// --c-agents at /meshagents?script=1; the script, run under a real systemd
// in its own namespaces, downloads /meshagents?id=6 and the group's .msh
// from server-lite, runs "./meshagent -fullinstall --copy-msh=1", and the
// installed service comes online on server-lite; "meshinstall.sh
// uninstall" takes it away again.
func TestServerLiteInstallScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs server-lite, starts systemd")
	}
	if os.Geteuid() != 0 {
		t.Skip("meshinstall-linux.sh refuses to run unless root")
	}
	if runtime.GOARCH != "amd64" {
		t.Skip("the script asks for id 6 (x86-64) here only")
	}
	if _, err := os.Stat(filepath.Join(mcAgentsDir, "meshinstall-linux.sh")); err != nil {
		t.Skipf("MeshCentral's install script: %v", err)
	}
	_, errWget := exec.LookPath("wget")
	_, errCurl := exec.LookPath("curl")
	if errWget != nil && errCurl != nil {
		t.Skip("neither wget nor curl installed")
	}
	sd, etc := startSystemdNS(t)
	ours, err := os.ReadFile(agentBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	dist := filepath.Join(work, "dist")
	os.MkdirAll(dist, 0o755)
	os.WriteFile(filepath.Join(dist, "meshagent-linux-amd64"), ours, 0o755)

	lite, base, group, pass := startServerLite(t, work, "--agents", dist, "--c-agents", mcAgentsDir)
	if served := loopbackGet(t, base+"/meshagents?id=6"); sha256.Sum256(served) != sha256.Sum256(ours) {
		t.Fatalf("server-lite serves a different agent as id 6 (%d bytes, ours %d)", len(served), len(ours))
	}
	script := filepath.Join(work, "meshinstall.sh")
	os.WriteFile(script, loopbackGet(t, base+"/meshagents?script=1"), 0o755)

	devices := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, lite, "devices", "--url", strings.Replace(base, "https://", "wss://", 1), "--user", "admin")
		cmd.Env = append(os.Environ(), "SERVERLITE_PASS="+pass)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	ns := func(args ...string) (string, int) {
		return run(t, nil, "/", "nsenter", append([]string{"-t", strconv.Itoa(sd), "-m", "-p", "--wd=" + work, "env", "-u", "https_proxy", "-u", "HTTPS_PROXY", "-u", "http_proxy", "-u", "HTTP_PROXY"}, args...)...)
	}
	out, code := ns("bash", script, base, group)
	if code != 0 || !strings.Contains(out, "installed in /usr/local/mesh_services/meshagent and started") {
		t.Fatalf("meshinstall.sh under systemd: exit %d", code)
	}
	dir := filepath.Join(fmt.Sprintf("/proc/%d/root", sd), "usr/local/mesh_services/meshagent")
	if msh, err := os.ReadFile(filepath.Join(dir, "meshagent.msh")); err != nil || !strings.Contains(string(msh), "MeshServer=wss://127.0.0.1:") || !strings.Contains(string(msh), "StartupType=1") {
		t.Errorf("installed .msh: %v\n%.300s", err, msh)
	}
	if _, err := os.Stat(filepath.Join(etc, "meshagent.service")); err != nil {
		t.Errorf("unit: %v", err)
	}
	// The node id once the service has created its identity.
	nodeID := ""
	online := func(want bool) func() bool {
		word := map[bool]string{true: "online", false: "offline"}[want]
		return func() bool {
			time.Sleep(time.Second) // each check is a login
			if nodeID == "" {
				out, err := exec.Command("nsenter", "-t", strconv.Itoa(sd), "-m", "-p", "/usr/local/mesh_services/meshagent/meshagent", "-nodeid").Output()
				if err != nil {
					return false
				}
				nodeID = strings.TrimSpace(string(out))
			}
			for _, l := range strings.Split(devices(), "\n") {
				if nodeID != "" && strings.Contains(l, nodeID) {
					return slices.Contains(strings.Fields(l), word)
				}
			}
			return false
		}
	}
	waitFor(t, "the installed agent online on server-lite", 2*time.Minute, online(true))
	t.Logf("devices:\n%s", devices())
	if out, _ := ns("systemctl", "is-active", "meshagent"); strings.TrimSpace(out) != "active" {
		t.Errorf("systemctl is-active: %q", out)
	}

	if _, code := ns("bash", script, "uninstall", base, group); code != 0 {
		t.Fatalf("meshinstall.sh uninstall under systemd: exit %d", code)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s survived the uninstall", dir)
	}
	waitFor(t, "the uninstalled agent offline", time.Minute, online(false))
}

// startServerLite builds server-lite into work and runs it on 127.0.0.1
// with a data directory in work and the extra arguments; it returns the
// binary (for its CLI), the URL, the default group's id (without mesh//)
// and the administrator's password.
func startServerLite(t *testing.T, work string, extra ...string) (lite, base, group, pass string) {
	t.Helper()
	lite = filepath.Join(work, "server-lite")
	if out, err := exec.Command("go", "build", "-o", lite, "github.com/meshgo/meshagent/server-lite").CombinedOutput(); err != nil {
		t.Fatalf("build server-lite: %v\n%s", err, out)
	}
	srv := exec.Command(lite, append([]string{"--data", filepath.Join(work, "data"), "--listen", "127.0.0.1:0", "--hostname", "127.0.0.1"}, extra...)...)
	srv.Dir = work
	pr, pw := io.Pipe()
	srv.Stdout, srv.Stderr = pw, pw
	var mu sync.Mutex
	var printed strings.Builder
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			mu.Lock()
			printed.WriteString(s.Text() + "\n")
			mu.Unlock()
		}
	}()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { srv.Wait(); pw.Close(); close(done) }()
	t.Cleanup(func() {
		srv.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Process.Kill()
			<-done
		}
		if t.Failed() {
			mu.Lock()
			t.Logf("server-lite output:\n%s", printed.String())
			mu.Unlock()
		}
	})
	var m []string
	rx := regexp.MustCompile(`(?s)URL: +(https://127\.0\.0\.1:\d+).*device group: Default \(mesh//(\S+)\).*password: +(\S+)`)
	waitFor(t, "server-lite to start", time.Minute, func() bool {
		mu.Lock()
		defer mu.Unlock()
		m = rx.FindStringSubmatch(printed.String())
		return m != nil
	})
	return lite, m[1], m[2], m[3]
}
