package adminapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

// liteEnv is a whole in-process server-lite (servertest: the composition
// root with the admin API) with the real C agent connected, driven by the
// real meshctrl.
type liteEnv struct {
	*servertest.Server
	t      *testing.T
	url    string
	nodeID string
}

func newLiteEnv(t *testing.T, core string) *liteEnv {
	t.Helper()
	mc := mctest.Install(t)
	if core == "meshcore" {
		core = filepath.Join(mc, "agents", "meshcore.js")
	}
	srv := servertest.Start(t, servertest.Options{CoreFile: core})
	if srv.AdminUser != "admin" || len(srv.AdminPass) < 16 {
		t.Fatalf("first admin %q %q", srv.AdminUser, srv.AdminPass)
	}
	e := &liteEnv{Server: srv, t: t, url: srv.URL}
	mctest.StartCAgent(t, srv.Msh())
	e.nodeID = srv.WaitCore(60 * time.Second).NodeID
	return e
}

func (e *liteEnv) meshctrl(args ...string) string { return e.Meshctrl(args...) }

func (e *liteEnv) meshctrlAs(user, pass string, args ...string) string {
	return e.MeshctrlAs(user, pass, args...)
}

func (e *liteEnv) mustJSON(out string, v any) {
	e.t.Helper()
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), v); err != nil {
		e.t.Fatalf("decode %q: %v", out, err)
	}
}

func TestInteropCAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the C agent")
	}
	e := newLiteEnv(t, "meshcore")
	short := strings.TrimPrefix(e.nodeID, "node//")

	// The first admin sees the default group and the agent in it, online.
	var groups []map[string]any
	e.mustJSON(e.meshctrl("listdevicegroups", "--json"), &groups)
	if len(groups) != 1 || groups[0]["name"] != app.DefaultGroupName {
		t.Fatalf("groups %v", groups)
	}
	var devs []map[string]any
	e.mustJSON(e.meshctrl("listdevices", "--json"), &devs)
	if len(devs) != 1 || devs[0]["_id"] != e.nodeID || devs[0]["conn"] != float64(1) {
		t.Fatalf("devices %v", devs)
	}
	if out := e.meshctrl("deviceinfo", "--id", short); !strings.Contains(out, "Connected now") && !strings.Contains(out, "Agent") {
		t.Logf("deviceinfo:\n%s", out)
	}

	// meshctrl --loginkeyfile with the key file app.New wrote.
	keyFile := filepath.Join(filepath.Dir(e.MshPath), adminapi.LoginKeyFile)
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("login key file: %v", err)
	}
	kout := e.MeshctrlKey("admin", "listdevices", "--json")
	e.mustJSON(kout, &devs)
	if len(devs) != 1 {
		t.Fatalf("listdevices with --loginkeyfile: %s", kout)
	}

	// runcommand through the real agent, with and without --reply.
	out := strings.TrimSpace(e.meshctrl("runcommand", "--id", e.nodeID, "--run", "echo hello-from-agent", "--reply"))
	if out != "hello-from-agent" {
		t.Fatalf("runcommand --reply: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("runcommand", "--id", short, "--run", "true")); out != "OK" {
		t.Fatalf("runcommand: %q", out)
	}
	time.Sleep(500 * time.Millisecond) // let the previous command finish: the agent runs one at a time

	// A second user without rights on the group sees nothing and is refused.
	if out := strings.TrimSpace(e.meshctrl("adduser", "--user", "eve", "--pass", "evepass1")); out != "ok" {
		t.Fatalf("adduser: %q", out)
	}
	eve := func(args ...string) string { return strings.TrimSpace(e.meshctrlAs("eve", "evepass1", args...)) }
	e.mustJSON(eve("listdevices", "--json"), &devs)
	if len(devs) != 0 {
		t.Fatalf("eve sees %v", devs)
	}
	if out := eve("runcommand", "--id", e.nodeID, "--run", "echo pwned", "--reply"); out != "Invalid nodeid" {
		t.Fatalf("eve runcommand: %q", out)
	}

	out = e.meshctrl("listevents")
	if !strings.Contains(out, "runcommands") {
		t.Fatalf("listevents:\n%s", out)
	}

	// upload and download through meshrelay.ashx with the relay tokens the
	// API mints: meshctrl's own relay path, never failing on "$".
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	payload := bytes.Repeat([]byte("server-lite relay test\n"), 4000)
	os.WriteFile(src, payload, 0o644)
	remote := filepath.Join(dir, "remote")
	os.Mkdir(remote, 0o755)
	for i := 0; i < 3; i++ { // a few rounds: each mints fresh cookies
		out = e.meshctrl("upload", "--id", short, "--file", src, "--target", remote)
		// meshctrl may exit before the agent has closed the file.
		if !waitFile(filepath.Join(remote, "src.bin"), payload, 10*time.Second) {
			t.Fatalf("upload round %d:\n%s", i, out)
		}
		back := filepath.Join(dir, fmt.Sprintf("back%d.bin", i))
		out = e.meshctrl("download", "--id", short, "--file", filepath.Join(remote, "src.bin"), "--target", back)
		if !waitFile(back, payload, 10*time.Second) {
			t.Fatalf("download round %d:\n%s", i, out)
		}
	}
	// Eve cannot open a tunnel to the device.
	if out := eve("download", "--id", short, "--file", src, "--target", filepath.Join(dir, "eve.bin")); !strings.Contains(out, "Unable to route") {
		t.Fatalf("eve download: %q", out)
	}
}

// waitFile reports whether path holds want within timeout.
func waitFile(path string, want []byte, timeout time.Duration) bool {
	for end := time.Now().Add(timeout); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if got, err := os.ReadFile(path); err == nil && bytes.Equal(got, want) {
			return true
		}
	}
	return false
}
