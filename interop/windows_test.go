//go:build linux

package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/winetest"
	"github.com/meshgo/meshagent/proto/session"
)

// winAgent is the GOOS=windows build of cmd/meshagent running under wine
// as `meshagent.exe run`, with its .msh and data in C:\meshgo of a fresh
// prefix (so the identity's DACL code runs on a Windows path).
type winAgent struct {
	t      *testing.T
	p      *winetest.Prefix
	exe    string
	dataC  string // the data directory as the agent sees it (C:\meshgo)
	cmd    *exec.Cmd
	log    *syncBuffer
	cancel context.CancelFunc
}

// newWinePrefix is a fresh prefix with the shim on its own Xvfb.
func newWinePrefix(t *testing.T) *winetest.Prefix { return winetest.TestPrefix(t) }

func startWinAgent(t *testing.T, p *winetest.Prefix, msh []byte) *winAgent {
	t.Helper()
	exe := buildWinAgent(t, t.TempDir())
	host := filepath.Join(p.Dir, "drive_c", "meshgo")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "meshagent.msh"), msh, 0o600); err != nil {
		t.Fatal(err)
	}
	a := &winAgent{t: t, p: p, exe: exe, dataC: `C:\meshgo`}
	a.start()
	t.Cleanup(func() {
		a.stop()
		if t.Failed() {
			t.Logf("windows agent log:\n%s", a.log.String())
		}
	})
	return a
}

func (a *winAgent) start() {
	a.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.log = &syncBuffer{}
	a.cmd = a.p.Command(ctx, a.exe, "run", "--msh", a.dataC+`\meshagent.msh`, "--log-level", "debug")
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.WaitDelay = 3 * time.Second
	if err := a.cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
}

// stop ends the agent: wine's loader passes no console signal on, so the
// process is killed, as a crash or power loss would (the restart must
// still keep the node id).
func (a *winAgent) stop() {
	if a.cmd == nil {
		return
	}
	a.cancel()
	a.cmd.Wait()
	a.cmd = nil
}

func (a *winAgent) nodeID() string {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := a.p.Command(ctx, a.exe, "-nodeid", "--data", a.dataC)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.Output()
	if err != nil && !bytes.Contains(out, []byte("\n")) {
		a.t.Fatalf("meshagent.exe -nodeid: %v (%s)", err, out)
	}
	return strings.TrimSpace(string(out))
}

func (a *winAgent) waitLog(timeout time.Duration, s string) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if strings.Contains(a.log.String(), s) {
			return true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return false
}

// The Windows agent under wine against the real MeshCentral: online as a
// Windows device (an agent id the web UI's isWindowsNode accepts, so it
// gets the Windows desktop and terminal menus), the desktop capability
// advertised, sysinfo and netinfo stored, the node id kept across a
// restart, a cmd runcommand answered through meshctrl, and a 20 MiB file
// uploaded to and downloaded from a C:\ path with the same SHA-256.
func TestWindowsAgentUnderWine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts wine")
	}
	srv := mctest.Shared(t)
	p := newWinePrefix(t)
	mesh := srv.AddDeviceGroup(t, "windows-wine")
	a := startWinAgent(t, p, srv.MSH(t, mesh))
	if !a.waitLog(120*time.Second, "core started") {
		t.Fatal("Windows agent did not authenticate and start its core")
	}
	id := a.nodeID()
	nodeID := "node//" + id
	dev := srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == nodeID && d.Online() }, 60*time.Second)
	windowsIDs := []int{1, 2, 3, 4, 21, 22, 34, 42, 43} // default.handlebars isWindowsNode
	if !slices.Contains(windowsIDs, dev.Agent.ID) {
		t.Errorf("agent id %d is not one MeshCentral shows as Windows", dev.Agent.ID)
	}
	if dev.Agent.Caps&1 == 0 {
		t.Errorf("agent caps %#x lack the desktop bit", dev.Agent.Caps)
	}

	// sysinfo and netinfo arrive after the core starts.
	deadline := time.Now().Add(60 * time.Second)
	var info map[string]any
	for {
		info = srv.DeviceInfo(t, id)
		_, hw := info["Memory"] // from sysinfo's hardware.windows.memory
		_, net := info["Networking"]
		if hw && net {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deviceinfo lacks Memory (sysinfo) or Networking (netinfo): %v", keys(info))
		}
		time.Sleep(time.Second)
	}
	t.Logf("deviceinfo sections: %v", keys(info))
	// The display adapter (SetupAPI's display class; wine lists its "Wine
	// Adapter") is in the sysinfo record the device page's Motherboard
	// section renders (identifiers.gpu_name, asked with the page's own
	// getsysinfo; meshctrl's deviceinfo prints that section only for a
	// board vendor/name, which wine has none of).
	var gpus []any
	for _, m := range srv.ControlSend(t, map[string]any{"action": "getsysinfo", "nodeid": nodeID}, 10*time.Second) {
		if m["action"] != "getsysinfo" {
			continue
		}
		hw, _ := m["hardware"].(map[string]any)
		ident, _ := hw["identifiers"].(map[string]any)
		gpus, _ = ident["gpu_name"].([]any)
		win, _ := hw["windows"].(map[string]any)
		wg, _ := win["gpu"].([]any)
		if len(gpus) == 0 || len(wg) != len(gpus) {
			t.Errorf("getsysinfo: gpu_name %v, windows.gpu %v", ident["gpu_name"], win["gpu"])
		}
	}
	if len(gpus) == 0 {
		t.Errorf("the server's sysinfo record names no GPU")
	} else if s, _ := gpus[0].(string); s == "" {
		t.Errorf("GPU %v", gpus)
	} else {
		t.Logf("GPU under wine, as the device page gets it: %q", gpus)
	}

	out := relayCmd(t, srv, mctest.CtrlOptions{Timeout: 90 * time.Second}, "runcommand", "--id", id, "--run", "echo wine-%OS%-ok", "--reply")
	if !strings.Contains(out, "wine-Windows_NT-ok") {
		t.Errorf("runcommand through cmd: %q", out)
	}
	// wine's powershell.exe is a stub that runs nothing and exits 0: the
	// agent must say PowerShell is not available, not answer empty.
	out = relayCmd(t, srv, mctest.CtrlOptions{Timeout: 90 * time.Second}, "runcommand", "--id", id, "--run", "Write-Output ps-ok", "--powershell", "--reply")
	if !strings.Contains(out, "PowerShell is not available") || !strings.Contains(out, "stub") {
		t.Errorf("runcommand through PowerShell under wine: %q, want a clear PowerShell-is-not-available error", out)
	}
	t.Logf("PowerShell runcommand under wine: %q", strings.TrimSpace(out))

	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	up := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, up), rand.Reader, 20<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	os.MkdirAll(filepath.Join(p.Dir, "drive_c", "xfer"), 0o755)
	out = relayCmd(t, srv, mctest.CtrlOptions{Timeout: 4 * time.Minute}, "upload", "--id", id, "--file", src, "--target", `C:\xfer`)
	if !strings.Contains(out, "Upload done") {
		t.Fatalf("upload: %s", out)
	}
	onDisk := filepath.Join(p.Dir, "drive_c", "xfer", "payload.bin")
	deadline = time.Now().Add(20 * time.Second)
	for {
		if st, err := os.Stat(onDisk); err == nil && st.Size() == 20<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(`uploaded file not in C:\xfer`)
		}
		time.Sleep(100 * time.Millisecond)
	}
	back := filepath.Join(dir, "back.bin")
	out = relayCmd(t, srv, mctest.CtrlOptions{Timeout: 4 * time.Minute}, "download", "--id", id, "--file", `C:\xfer\payload.bin`, "--target", back)
	if !strings.Contains(out, "Download completed") {
		t.Fatalf("download: %s", out)
	}
	b, err := os.ReadFile(back)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(b); !bytes.Equal(sum[:], up.Sum(nil)) {
		t.Fatal("downloaded file differs from the uploaded one")
	}

	// The files session as the web UI drives it: the drive list, then a
	// rename and a delete, checked on the prefix's C: drive.
	u := dialControl(t, srv)
	ch := openRelay(t, srv, u, nodeID, 5, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ch.Write(ctx, session.Frame{Data: []byte(`{"action":"ls","reqid":1,"path":""}`)})
	if !readUntil(ctx, ch, `"C:`) {
		t.Error("the drive list has no C:")
	}
	ch.Write(ctx, session.Frame{Data: []byte(`{"action":"rename","reqid":2,"path":"C:\\xfer","oldname":"payload.bin","newname":"renamed.bin"}`)})
	renamed := filepath.Join(p.Dir, "drive_c", "xfer", "renamed.bin")
	if !waitFile(renamed, true) || !waitFile(onDisk, false) {
		t.Fatal(`rename in C:\xfer did not happen`)
	}
	ch.Write(ctx, session.Frame{Data: []byte(`{"action":"rm","reqid":3,"path":"C:\\xfer","delfiles":["renamed.bin"]}`)})
	if !waitFile(renamed, false) {
		t.Fatal(`delete in C:\xfer did not happen`)
	}
	ch.Close()

	// The web UI's question before a Windows desktop: the agent answers,
	// with the tag, an object of sessions (wine 8's WTSEnumerateSessionsW
	// lists none, so the UI would connect without a session choice).
	u.send(t, map[string]any{"action": "msg", "type": "userSessions", "nodeid": nodeID, "tag": 7})
	us := u.await(t, "userSessions", func(m map[string]any) bool { return m["type"] == "userSessions" })
	if _, ok := us["data"].(map[string]any); !ok || us["tag"] != float64(7) {
		t.Errorf("userSessions reply %v: want an object in data and tag 7", us)
	}
	t.Logf("userSessions reply: %v", us)

	a.stop()
	a.start()
	if !a.waitLog(120*time.Second, "skip_path=true") {
		t.Fatal("restart did not take the skip path")
	}
	if got := a.nodeID(); got != id {
		t.Fatalf("node id changed across restart: %s -> %s", id, got)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == nodeID && d.Online() }, 60*time.Second)
}

// readUntil reads text frames until one contains s.
func readUntil(ctx context.Context, ch session.Channel, s string) bool {
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			return false
		}
		if strings.Contains(string(f.Data), s) {
			return true
		}
	}
}

// waitFile waits until path exists (or, with exists false, is gone).
func waitFile(path string, exists bool) bool {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_, err := os.Stat(path)
		if (err == nil) == exists {
			return true
		}
		time.Sleep(100 * time.Millisecond)
	}
	return false
}

func keys(m map[string]any) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

// buildWinAgent copies the GOOS=windows meshagent.exe into dir.
func buildWinAgent(t *testing.T, dir string) string {
	t.Helper()
	src, err := agentbin.BuildWindows()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "meshagent.exe")
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// wineRun runs a Windows program in p to its end and returns its output.
func wineRun(t *testing.T, p *winetest.Prefix, exe string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out syncBuffer
	cmd := p.Command(ctx, exe, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	// wine's system processes (services.exe, the agent service) inherit
	// the descriptors and outlive the program: stop reading soon after.
	cmd.WaitDelay = 3 * time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success() {
		err = nil
	}
	return out.String(), err
}

// The install path an admin takes on Windows, under wine's SCM: the
// downloaded meshagent.exe with its .msh beside it runs `-install` (the
// C agent's flag), which copies both to C:\Program Files\Mesh Agent,
// registers the "Mesh Agent" service (the recovery settings wine rejects
// are logged, the install goes on) and starts it; the service, started by
// the SCM, reports to it itself and comes online in MeshCentral; `stop`
// takes it offline, `start` brings it back, `-uninstall` stops it and
// removes the service and the binary and keeps the identity.
func TestWindowsServiceInstallUnderWine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts wine")
	}
	srv := mctest.Shared(t)
	p := newWinePrefix(t)
	mesh := srv.AddDeviceGroup(t, "windows-wine-service")
	dl := filepath.Join(p.Dir, "drive_c", "Users", "Public", "Downloads")
	if err := os.MkdirAll(dl, 0o755); err != nil {
		t.Fatal(err)
	}
	buildWinAgent(t, dl)
	if err := os.WriteFile(filepath.Join(dl, "meshagent.msh"), srv.MSH(t, mesh), 0o600); err != nil {
		t.Fatal(err)
	}
	exe := `C:\Users\Public\Downloads\meshagent.exe`
	installed := filepath.Join(p.Dir, "drive_c", "Program Files", "Mesh Agent")
	agentLog := func() string { b, _ := os.ReadFile(filepath.Join(installed, "meshagent.log")); return string(b) }
	defer func() {
		if t.Failed() {
			t.Logf("installed agent's log:\n%s", agentLog())
		}
	}()

	out, err := wineRun(t, p, exe, "-install")
	t.Logf("-install:\n%s", out)
	if err != nil {
		t.Fatalf("-install: %v", err)
	}
	if !strings.Contains(out, "installed in") || !strings.Contains(out, "started") {
		t.Fatalf("-install did not say it installed and started the service")
	}
	// wine 8's SCM accepts only ChangeServiceConfig2 levels 1 and 7: the
	// non-crash-failure flag (level 4) is refused, logged, not fatal.
	if strings.Contains(out, "without all its recovery settings") {
		t.Log("wine refused part of the recovery settings: logged as a warning, the install went on")
	}
	for _, f := range []string{"MeshAgent.exe", "MeshAgent.msh"} {
		if _, err := os.Stat(filepath.Join(installed, f)); err != nil {
			t.Errorf("not installed: %v", err)
		}
	}
	if out, _ := wineRun(t, p, exe, "status"); !strings.Contains(out, "running") {
		t.Fatalf("status after -install: %q", out)
	}

	out, err = wineRun(t, p, exe, "-nodeid", "--data", `C:\Program Files\Mesh Agent`)
	id := strings.TrimSpace(out)
	if err != nil || id == "" || strings.ContainsAny(id, " \n") {
		t.Fatalf("-nodeid of the installed agent: %v %q", err, out)
	}
	nodeID := "node//" + id
	dev := srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == nodeID && d.Online() }, 2*time.Minute)
	t.Logf("installed service online: agent id %d", dev.Agent.ID)
	if !strings.Contains(agentLog(), "starting as a service") {
		t.Error(`the installed agent's log lacks "starting as a service": not run by the SCM`)
	}

	if out, err := wineRun(t, p, exe, "stop"); err != nil {
		t.Fatalf("stop: %v\n%s", err, out)
	}
	if out, _ := wineRun(t, p, exe, "status"); !strings.Contains(out, "stopped") {
		t.Errorf("status after stop: %q", out)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == nodeID && !d.Online() }, time.Minute)
	if !strings.Contains(agentLog(), "meshagent stopped") {
		t.Error("the service did not stop cleanly (no \"meshagent stopped\" in its log)")
	}
	if out, err := wineRun(t, p, exe, "start"); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == nodeID && d.Online() }, 2*time.Minute)

	out, err = wineRun(t, p, exe, "-uninstall")
	t.Logf("-uninstall:\n%s", out)
	if err != nil {
		t.Fatalf("-uninstall: %v", err)
	}
	if out, _ := wineRun(t, p, exe, "status"); !strings.Contains(out, "not installed") {
		t.Errorf("status after -uninstall: %q", out)
	}
	if _, err := os.Stat(filepath.Join(installed, "MeshAgent.exe")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("MeshAgent.exe after -uninstall: %v", err)
	}
	if _, err := os.Stat(filepath.Join(installed, "meshagent.identity")); err != nil {
		t.Errorf("-uninstall (not full) must keep the identity: %v", err)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == nodeID && !d.Online() }, time.Minute)
}
