//go:build linux

package interop

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/core"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/tlsmitm"
)

// Our agent joins a group of the real MeshCentral with the .msh the server
// hands out, unchanged, and shows up online under the node id it computed,
// with its computer name and platform; a restart keeps the node id and
// takes the skip path.
func TestAgentOnlineInMeshCentral(t *testing.T) {
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "online-test")
	msh := srv.MSH(t, mesh)
	a := startAgent(t, msh)
	if _, ok := a.waitLog(30*time.Second, "msg=authenticated", "skip_path=false"); !ok {
		t.Fatal("agent did not authenticate")
	}
	nodeID := "node//" + a.nodeID()
	dev := srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == nodeID && d.Online() }, 30*time.Second)
	host, _ := os.Hostname()
	if dev.MeshID != mesh {
		t.Errorf("device in group %s, want %s", dev.MeshID, mesh)
	}
	if dev.RName != host || dev.Name != host {
		t.Errorf("device name %q, computer name %q, want %q", dev.Name, dev.RName, host)
	}
	if dev.Icon != int(core.DetectPlatformType()) {
		t.Errorf("platform icon %d, want %d", dev.Icon, core.DetectPlatformType())
	}
	if dev.Agent.ID != int(core.DefaultAgentID()) || dev.Agent.Caps&0x18 != 0x18 {
		t.Errorf("agent %+v, want id %d with console and JavaScript caps", dev.Agent, core.DefaultAgentID())
	}

	a.restart()
	if _, ok := a.waitLog(30*time.Second, "msg=authenticated", "skip_path=true"); !ok {
		t.Fatal("restart did not take the skip path")
	}
	if got := "node//" + a.nodeID(); got != nodeID {
		t.Fatalf("node id changed across restart: %s -> %s", nodeID, got)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ID == nodeID && d.Online() }, 30*time.Second)
	n := 0
	for _, d := range srv.ListDevices(t) {
		if d.MeshID == mesh {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("group has %d devices after a restart, want 1", n)
	}
}

// A TLS man-in-the-middle on loopback presents its own certificate and
// forwards to MeshCentral: the server refuses the agent's hash (and holds
// the socket), the agent times out, retries, and never comes online.
func TestAgentRefusesManInTheMiddle(t *testing.T) {
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "mitm-test")
	msh := srv.MSH(t, mesh)
	proxy := tlsmitm.Start(t, fmt.Sprintf("127.0.0.1:%d", srv.Port()))
	msh = bytes.Replace(msh, []byte(fmt.Sprintf("wss://127.0.0.1:%d/", srv.Port())), []byte("wss://"+proxy+"/"), 1)
	a := startAgent(t, msh, "--handshake-timeout", "2s")
	assertNeverOnline(t, srv, a, mesh, "handshake timed out")
}

// A server whose agent certificate does not match the .msh ServerID (here:
// the .msh names another server) is refused after its message 2.
func TestAgentRefusesWrongServerID(t *testing.T) {
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "serverid-test")
	msh := srv.MSH(t, mesh)
	real := srv.ServerID(t)
	other := strings.Repeat("5A", 48)
	if !bytes.Contains(msh, []byte(real)) {
		t.Fatalf(".msh does not carry ServerID %s", real)
	}
	msh = bytes.Replace(msh, []byte(real), []byte(other), 1)
	a := startAgent(t, msh, "--handshake-timeout", "2s")
	assertNeverOnline(t, srv, a, mesh, "does not match ServerID")
}

func assertNeverOnline(t *testing.T, srv *mctest.Server, a *agentProc, mesh, reason string) {
	t.Helper()
	deadline := time.Now().Add(25 * time.Second)
	for a.countLog(reason) < 3 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if n := a.countLog(reason); n < 3 {
		t.Fatalf("agent failed %d times with %q, want at least 3 retries", n, reason)
	}
	if a.countLog("msg=authenticated") > 0 || a.countLog("core started") > 0 {
		t.Fatal("agent authenticated or ran a core")
	}
	for _, d := range srv.ListDevices(t) {
		if d.MeshID == mesh {
			t.Fatalf("device %s appeared in the group", d.ID)
		}
	}
	if _, err := os.Stat(a.dir + "/meshagent.core"); err == nil {
		t.Fatal("a core was stored")
	}
}
