//go:build linux

package install_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
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
	work := t.TempDir()
	script := filepath.Join(work, "meshinstall.sh")
	os.WriteFile(script, loopbackGet(t, base+"/meshagents?script=1"), 0o755)

	t.Run("systemctl stand-in", func(t *testing.T) {
		scriptWithFakeSystemd(t, srv, meshID, work, script)
	})
	t.Run("real systemd", func(t *testing.T) {
		scriptUnderSystemd(t, srv, meshID, work, script)
	})
}

func scriptWithFakeSystemd(t *testing.T, srv *mctest.Server, meshID, work, script string) {
	base, short := srv.HTTPSURL(), strings.TrimPrefix(meshID, "mesh//")
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
	if !strings.Contains(string(calls), "enable meshagent.service\nrestart meshagent.service\n") {
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

// scriptUnderSystemd runs the script as an administrator would on a
// systemd host, with no root prefix and the real systemctl: inside the
// namespaces of a real systemd (see startSystemdNS), where it installs to
// /usr/local/mesh_services/meshagent on the namespace's own /usr/local.
func scriptUnderSystemd(t *testing.T, srv *mctest.Server, meshID, work, script string) {
	base, short := srv.HTTPSURL(), strings.TrimPrefix(meshID, "mesh//")
	sd, etc := startSystemdNS(t)
	ns := func(args ...string) (string, int) {
		return run(t, nil, "/", "nsenter", append([]string{"-t", strconv.Itoa(sd), "-m", "-p", "--wd=" + work, "env", "-u", "https_proxy", "-u", "HTTPS_PROXY", "-u", "http_proxy", "-u", "HTTP_PROXY"}, args...)...)
	}
	before := map[string]bool{}
	for _, d := range srv.ListDevices(t) {
		before[d.ID] = true
	}
	out, code := ns("bash", script, base, short)
	if code != 0 || !strings.Contains(out, "installed in /usr/local/mesh_services/meshagent and started") {
		t.Fatalf("meshinstall.sh under systemd: exit %d", code)
	}
	nsRoot := fmt.Sprintf("/proc/%d/root", sd)
	dir := filepath.Join(nsRoot, "usr/local/mesh_services/meshagent")
	if msh, err := os.ReadFile(filepath.Join(dir, "meshagent.msh")); err != nil || !bytes.Contains(msh, []byte("StartupType=1")) {
		t.Errorf("installed .msh (the script detects systemd as StartupType=1): %v\n%.300s", err, msh)
	}
	if _, err := os.Stat(filepath.Join(etc, "meshagent.service")); err != nil {
		t.Errorf("unit: %v", err)
	}
	dev := srv.WaitDevice(t, func(d mctest.Device) bool { return d.Online() && d.MeshID == meshID && !before[d.ID] }, 2*time.Minute)
	t.Logf("device online under systemd: %s agent=%+v", dev.ID, dev.Agent)
	if out, _ := ns("systemctl", "is-active", "meshagent"); strings.TrimSpace(out) != "active" {
		t.Errorf("systemctl is-active: %q", out)
	}

	if _, code := ns("bash", script, "uninstall", base, short); code != 0 {
		t.Fatalf("meshinstall.sh uninstall under systemd: exit %d", code)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s survived the uninstall", dir)
	}
	if _, err := os.Stat(filepath.Join(etc, "meshagent.service")); err == nil {
		t.Error("unit survived the uninstall")
	}
	if out, _ := ns("systemctl", "show", "-p", "LoadState", "meshagent"); !strings.Contains(out, "LoadState=not-found") {
		t.Errorf("systemd still knows the unit: %q", out)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == dev.ID && !d.Online() }, time.Minute)
}

// MeshCentral's "uninstall agent" (the web UI sends control.ashx
// uninstallagent; the server passes it to the agent) removes our agent
// installed under a real systemd: stopping the unit kills its whole cgroup,
// so the uninstaller must run outside it (a transient unit), or it dies
// half-way with the service. The service and binary go, the settings and
// identity stay (as the C agent's uninstall), and the device goes offline.
func TestUninstallFromMeshCentralUnderSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MeshCentral and systemd")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces")
	}
	agentBinary(t)
	srv := mctest.Start(t, mctest.Options{})
	meshID := srv.AddDeviceGroup(t, "uninstall")
	sd, etc := startSystemdNS(t)
	ns := func(args ...string) (string, int) {
		return run(t, nil, "/", "nsenter", append([]string{"-t", strconv.Itoa(sd), "-m", "-p", "env", "-u", "https_proxy", "-u", "HTTPS_PROXY"}, args...)...)
	}
	dl := download(t, string(srv.MSH(t, meshID)))
	inst := filepath.Join(t.TempDir(), "mesh_services", "meshagent")
	if _, code := ns(filepath.Join(dl, "meshagent"), "-fullinstall", "--copy-msh=1", "--installPath="+inst); code != 0 {
		t.Fatal("install under systemd failed")
	}
	dev := srv.WaitDevice(t, func(d mctest.Device) bool { return d.Online() && d.MeshID == meshID }, 2*time.Minute)

	srv.ControlSend(t, map[string]any{"action": "uninstallagent", "nodeids": []string{dev.ID}}, 3*time.Second)
	waitFor(t, "the unit and the binary to be removed", 90*time.Second, func() bool {
		_, errUnit := os.Stat(filepath.Join(etc, "meshagent.service"))
		_, errBin := os.Stat(filepath.Join(inst, "meshagent"))
		return errUnit != nil && errBin != nil
	})
	if out, _ := ns("systemctl", "show", "-p", "LoadState", "-p", "ActiveState", "meshagent"); !strings.Contains(out, "LoadState=not-found") {
		t.Errorf("systemd still knows the unit: %q", out)
	}
	if _, err := os.Stat(filepath.Join(inst, "meshagent.msh")); err != nil {
		t.Errorf("settings removed by a plain uninstall: %v", err)
	}
	log, _ := os.ReadFile(filepath.Join(inst, "meshagent.log"))
	if !bytes.Contains(log, []byte("uninstalling the agent service at the server's request")) || !bytes.Contains(log, []byte("systemd-run")) {
		t.Errorf("agent log lacks the uninstall through systemd-run:\n%s", log)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == dev.ID && !d.Online() }, time.Minute)
	if evs := srv.Events(t); !hasEvent(evs, dev.ID, "Uninstalling the agent service meshagent") {
		t.Error("no 'Uninstalling the agent service' event for the device")
	}
}

func hasEvent(evs []map[string]any, nodeID, msg string) bool {
	for _, ev := range evs {
		if ev["nodeid"] == nodeID && ev["msg"] == msg {
			return true
		}
	}
	return false
}
