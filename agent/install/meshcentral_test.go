//go:build linux

package install_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// mcAgentFile is the file MeshCentral serves as this machine's agent
// (meshcentral.js meshAgentsArchitectureNumbers): id 6 on x86-64, 26 on
// arm64, which is what meshinstall-linux.sh asks for on those machines.
var mcAgentFile = map[string]string{"amd64": "meshagent_x86-64", "arm64": "meshagent_aarch64"}

func loopbackGet(t *testing.T, url string) []byte {
	t.Helper()
	c := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // loopback test server, self-signed
		Proxy:           nil,
	}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %v %s", url, err, resp.Status)
	}
	return b
}

// TestMeshCentralInstallScript is the whole path an administrator takes:
// the real MeshCentral serves our binary as its Linux agent, its own
// meshinstall-linux.sh (fetched from /meshagents?script=1, as the "Add
// Agent" dialog's command does) downloads it with the group's .msh and runs
// "./meshagent -fullinstall --copy-msh=1"; the installed agent starts and
// comes online in the group; "meshinstall.sh uninstall" runs
// "./meshagent -fulluninstall" and everything installed is gone.
//
// This machine has no systemd (PID 1 is not systemd), so the installation
// goes to a temporary root (MESHAGENT_INSTALL_ROOT) made to look like a
// systemd host, and a systemctl stand-in on PATH records the calls and,
// for "start", runs the unit's ExecStart the way systemd would.
func TestMeshCentralInstallScript(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MeshCentral")
	}
	if os.Geteuid() != 0 {
		t.Skip("meshinstall-linux.sh refuses to run unless root")
	}
	file, ok := mcAgentFile[runtime.GOARCH]
	if !ok {
		t.Skipf("no MeshCentral agent id for %s", runtime.GOARCH)
	}
	for _, tool := range []string{"node", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	// The script downloads with wget, falling back to curl.
	_, errWget := exec.LookPath("wget")
	_, errCurl := exec.LookPath("curl")
	if errWget != nil && errCurl != nil {
		t.Skip("neither wget nor curl installed")
	}
	bin := agentBinary(t)
	ours, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	srv := mctest.Start(t, mctest.Options{})
	// MeshCentral prefers meshcentral-data/agents/<file> over the agents
	// shipped in its npm package, so the shared install stays untouched.
	agents := filepath.Join(srv.DataDir(), "agents")
	os.MkdirAll(agents, 0o755)
	if err := os.WriteFile(filepath.Join(agents, file), ours, 0o755); err != nil {
		t.Fatal(err)
	}
	srv.Restart(t)
	base := srv.HTTPSURL()
	id := map[string]string{"amd64": "6", "arm64": "26"}[runtime.GOARCH]
	if served := loopbackGet(t, base+"/meshagents?id="+id); sha256.Sum256(served) != sha256.Sum256(ours) {
		t.Fatalf("MeshCentral serves a different agent as id %s (%d bytes, ours %d)", id, len(served), len(ours))
	}

	meshID := srv.AddDeviceGroup(t, "install-script")
	short := strings.TrimPrefix(meshID, "mesh//")
	work := t.TempDir()
	script := filepath.Join(work, "meshinstall.sh")
	os.WriteFile(script, loopbackGet(t, base+"/meshagents?script=1"), 0o755)

	root := t.TempDir()
	env := fakeSystemd(t, root)
	out, code := run(t, env, work, "bash", script, base, short)
	if code != 0 || !strings.Contains(out, "Agent downloaded.") {
		t.Fatalf("meshinstall.sh: exit %d", code)
	}
	dir := filepath.Join(root, installDir)
	msh, err := os.ReadFile(filepath.Join(dir, "meshagent.msh"))
	if err != nil {
		t.Fatalf("no installed .msh: %v", err)
	}
	if !bytes.Contains(msh, []byte("StartupType=")) || !bytes.Contains(msh, []byte("MeshServer=")) {
		t.Errorf("installed .msh is not the script's:\n%s", msh)
	}
	calls, _ := os.ReadFile(filepath.Join(root, "systemctl.log"))
	if !strings.Contains(string(calls), "enable meshagent.service\nstart meshagent.service\n") {
		t.Errorf("systemctl calls:\n%s", calls)
	}

	dev := srv.WaitDevice(t, mctest.OnlineIn(meshID), 2*time.Minute)
	t.Logf("device online: %s %q agent=%+v", dev.ID, dev.Name, dev.Agent)
	nodeID, _ := run(t, env, dir, filepath.Join(dir, "meshagent"), "-nodeid")
	if got := strings.TrimSpace(nodeID); got == "" || !strings.HasSuffix(dev.ID, got) {
		t.Errorf("device %s is not the installed agent (-nodeid %q)", dev.ID, got)
	}
	journal, _ := os.ReadFile(filepath.Join(root, "journal-meshagent.log"))
	if !bytes.Contains(journal, []byte("meshagent starting as a service")) {
		t.Errorf("journal stand-in lacks the start:\n%s", journal)
	}
	if _, err := os.Stat(filepath.Join(dir, "meshagent.log")); err != nil {
		t.Errorf("no log file in the data directory: %v", err)
	}

	out, code = run(t, env, work, "bash", script, "uninstall", base, short)
	if code != 0 {
		t.Fatalf("meshinstall.sh uninstall: exit %d", code)
	}
	assertOnlyDirs(t, root)
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == dev.ID && !d.Online() }, time.Minute)
	calls, _ = os.ReadFile(filepath.Join(root, "systemctl.log"))
	if !strings.Contains(string(calls), "stop meshagent.service\ndisable meshagent.service\ndaemon-reload\n") {
		t.Errorf("systemctl calls:\n%s", calls)
	}
	if _, err := os.Stat(filepath.Join(root, "run", "meshagent.pid")); err == nil {
		t.Error("the agent's pid file survived the uninstall")
	}
}
