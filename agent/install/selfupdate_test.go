//go:build linux

package install_test

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// buildVersion builds our agent as build/release.sh does (static, the
// version stamped with -X), into dir.
func buildVersion(t *testing.T, dir, version string) string {
	t.Helper()
	out := filepath.Join(dir, "meshagent-"+version)
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version="+version, "-o", out, "github.com/meshgo/meshagent/cmd/meshagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", version, err, b)
	}
	return out
}

func sha384File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha512.Sum384(b)
	return hex.EncodeToString(h[:])
}

func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
}

// TestSelfUpdateUnderSystemd is the path an administrator of server-lite
// takes to update a fleet: version 1 of our agent runs as a systemd
// service (a real systemd in its own namespaces); version 2 is dropped
// into server-lite's --agents directory; "server-lite update-agents --all
// --wait" offers it, the agent downloads it over its control channel,
// replaces its own binary and is restarted by systemd on version 2, which
// confirms its trial. Then a build that crashes at every start is rolled
// out: systemd restarts it in a loop until the watchdog (the previous
// binary, started through systemd-run) restores version 2 at the end of
// the trial and starts the service again; the rollout halts with
// "rolled back".
func TestSelfUpdateUnderSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries and server-lite, starts systemd")
	}
	agentBinary(t) // skips off Linux
	if _, err := exec.LookPath("systemd-run"); err != nil {
		t.Skip("systemd-run not installed")
	}
	sd, _ := startSystemdNS(t)
	work := t.TempDir()
	builds := filepath.Join(work, "builds")
	os.MkdirAll(builds, 0o755)
	v1 := buildVersion(t, builds, "1.0.0-sutest")
	v2 := buildVersion(t, builds, "2.0.0-sutest")
	crasher := filepath.Join(builds, "crasher")
	src := filepath.Join(work, "crasher.go")
	os.WriteFile(src, []byte("package main\n\nimport \"os\"\n\nfunc main() { os.Stderr.WriteString(\"this build crashes at start\\n\"); os.Exit(3) }\n"), 0o644)
	if b, err := exec.Command("go", "build", "-o", crasher, src).CombinedOutput(); err != nil {
		t.Fatalf("build crasher: %v\n%s", err, b)
	}
	dist := filepath.Join(work, "dist")
	os.MkdirAll(dist, 0o755)
	served := filepath.Join(dist, "meshagent-linux-amd64")
	copyTo(t, v1, served)

	lite, base, group, pass := startServerLite(t, work, "--agents", dist)
	wss := strings.Replace(base, "https://", "wss://", 1)
	cli := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(lite, append(args[:1:1], append([]string{"--url", wss, "--user", "admin"}, args[1:]...)...)...)
		cmd.Env = append(os.Environ(), "SERVERLITE_PASS="+pass)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			code = -1
		}
		t.Logf("$ server-lite %s  (exit %d)\n%s", strings.Join(args, " "), code, out)
		return string(out), code
	}

	// Install version 1 as the C agent's install script would.
	dl := t.TempDir()
	copyTo(t, v1, filepath.Join(dl, "meshagent"))
	os.WriteFile(filepath.Join(dl, "meshagent.msh"), loopbackGet(t, base+"/meshsettings?id="+group), 0o644)
	ns := func(args ...string) (string, int) {
		return run(t, nil, "/", "nsenter", append([]string{"-t", strconv.Itoa(sd), "-m", "-p", "env", "-u", "https_proxy", "-u", "HTTPS_PROXY"}, args...)...)
	}
	if _, code := ns(filepath.Join(dl, "meshagent"), "-fullinstall", "--copy-msh=1"); code != 0 {
		t.Fatal("install under systemd failed")
	}
	inst := filepath.Join(fmt.Sprintf("/proc/%d/root", sd), "usr/local/mesh_services/meshagent")
	installed := filepath.Join(inst, "meshagent")
	mainPID := func() string {
		out, _ := exec.Command("nsenter", "-t", strconv.Itoa(sd), "-m", "-p", "systemctl", "show", "-p", "MainPID", "--value", "meshagent").Output()
		return strings.TrimSpace(string(out))
	}
	var nodeID string
	waitFor(t, "the agent's identity", time.Minute, func() bool {
		out, err := exec.Command("nsenter", "-t", strconv.Itoa(sd), "-m", "-p", "/usr/local/mesh_services/meshagent/meshagent", "-nodeid").Output()
		nodeID = "node//" + strings.TrimSpace(string(out))
		return err == nil && len(nodeID) > len("node//")
	})
	deviceLine := func() []string {
		out, _ := cli("devices")
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, nodeID+"\t") {
				return strings.Split(l, "\t")
			}
		}
		return nil
	}
	onVersion := func(v string) func() bool {
		return func() bool {
			time.Sleep(time.Second)
			f := deviceLine()
			return len(f) >= 6 && f[3] == "online" && f[5] == v
		}
	}
	waitFor(t, "version 1 online with its version listed", 2*time.Minute, onVersion("1.0.0-sutest"))

	// Version 1 -> 2, with the VERSION file release.sh writes.
	copyTo(t, v2, served)
	os.WriteFile(filepath.Join(dist, "VERSION"), []byte("2.0.0-sutest\n"), 0o644)
	pid1 := mainPID()
	out, code := cli("update-agents", "--all", "--trial", "60", "--wait")
	if code != 0 || !strings.Contains(out, "online on 2.0.0-sutest (trial confirmed)") || !strings.Contains(out, "1 updated, 0 skipped") {
		t.Fatalf("update-agents: exit %d", code)
	}
	if got := sha384File(t, installed); got != sha384File(t, v2) {
		t.Fatalf("installed binary is not version 2 (%s)", got[:16])
	}
	if pid := mainPID(); pid == pid1 || pid == "0" {
		t.Errorf("service main pid %s, before %s: not restarted", pid, pid1)
	}
	waitFor(t, "version 2 listed", time.Minute, onVersion("2.0.0-sutest"))
	var st struct{ State, Previous string }
	b, _ := os.ReadFile(filepath.Join(inst, "update-state.json"))
	json.Unmarshal(b, &st)
	if st.State != "confirmed" {
		t.Errorf("update state %q:\n%s", st.State, b)
	}
	if _, err := os.Stat(installed + ".previous"); err == nil {
		t.Error("previous binary left after the confirmation")
	}
	ents, _ := os.ReadDir(inst)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".update-") {
			t.Errorf("download left in the install directory: %s", e.Name())
		}
	}
	evs, _ := cli("events", "--id", nodeID, "--limit", "200")
	if !strings.Contains(evs, "1.0.0-sutest -> 2.0.0-sutest") {
		t.Error("event log lacks the versions")
	}
	for _, step := range []string{"agent update offered", "agent update downloading", "agent update downloaded", "agent update installed", "agent update restarting", "agent update online on the new version"} {
		if !strings.Contains(evs, step) {
			t.Errorf("event log lacks %q", step)
		}
	}

	// A build that crashes at start: rolled back by the watchdog.
	copyTo(t, crasher, served)
	os.WriteFile(filepath.Join(dist, "VERSION"), []byte("3.0.0-crashes\n"), 0o644)
	out, code = cli("update-agents", "--all", "--trial", "15", "--wait")
	if code == 0 || !strings.Contains(out, "halted") || !strings.Contains(out, "rolled back: version 3.0.0-crashes did not come online within 15 s") {
		t.Fatalf("rollout of a crashing build: exit %d, want halted with rolled back", code)
	}
	if got := sha384File(t, installed); got != sha384File(t, v2) {
		t.Fatalf("installed binary after the rollback is not version 2 (%s)", got[:16])
	}
	waitFor(t, "version 2 online again", time.Minute, onVersion("2.0.0-sutest"))
	b, _ = os.ReadFile(filepath.Join(inst, "update-state.json"))
	json.Unmarshal(b, &st)
	if st.State != "rolledback" {
		t.Errorf("update state %q:\n%s", st.State, b)
	}
	if wl, err := os.ReadFile(filepath.Join(inst, "update-watchdog.log")); err != nil || !strings.Contains(string(wl), "previous binary restored") {
		t.Errorf("watchdog log: %v\n%s", err, wl)
	}
	if out, _ := ns("systemctl", "show", "-p", "NRestarts", "meshagent"); !strings.Contains(out, "NRestarts=") {
		t.Logf("NRestarts: %s", out)
	}
}
