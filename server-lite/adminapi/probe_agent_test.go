package adminapi_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/store"
)

// TestProbeAgentReportsBounded is finding 2: an agent enrolled with a group
// id from the .msh reports a 2 MiB netinfo and sysinfo. Neither is stored,
// the listing stays small and fast for everyone, and well-formed reports of
// a normal size are kept and served on demand.
func TestProbeAgentReportsBounded(t *testing.T) {
	e := newProbeEnv(t, nil)
	admin := e.login(e.admin, e.pass)
	pad := strings.Repeat("A", 2<<20)
	bloat := &simagent.Announce{
		CoreInfo: []byte(`{"action":"coreinfo","value":"c","caps":14}`),
		NetInfo:  []byte(`{"action":"netinfo","netif2":{"eth0":[{"mac":"00:11:22:33:44:55","pad":"` + pad + `"}]}}`),
		SysInfo:  []byte(`{"action":"sysinfo","data":{"hash":"h1","hardware":{"pad":"` + pad + `"}}}`),
		// Sent when the server's request does not carry this hash.
		SysInfoHash: "h1",
	}
	big, conn := e.enroll(e.app.DefaultGroup.ID, "bloat", bloat)
	go drain(conn.WS, nil)
	good := &simagent.Announce{
		CoreInfo:    []byte(`{"action":"coreinfo","value":"c","caps":14}`),
		NetInfo:     []byte(`{"action":"netinfo","netif2":{"eth0":[{"mac":"00:11:22:33:44:55","address":"10.0.0.2"}]}}`),
		SysInfo:     []byte(`{"action":"sysinfo","data":{"hash":"h2","hardware":{"mem":1}}}`),
		SysInfoHash: "h2",
	}
	ok, conn2 := e.enroll(e.app.DefaultGroup.ID, "good", good)
	go drain(conn2.WS, nil)
	// A wrong shape is refused too.
	if err := conn2.WS.WriteMessage(websocket.TextMessage, []byte(`{"action":"sysinfo","data":"not an object"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	e.app.Store.Flush()
	d, err := e.app.Store.Device(big)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.NetInfo) != 0 || len(d.SysInfo) != 0 {
		t.Errorf("oversized reports stored: netinfo %d, sysinfo %d bytes", len(d.NetInfo), len(d.SysInfo))
	}
	t0 := time.Now()
	r := admin.do(map[string]any{"action": "nodes"})
	if el := time.Since(t0); el > time.Second {
		t.Errorf("nodes took %v", el)
	}
	if n, _ := r["nodes"].(map[string]any); len(n) != 1 {
		t.Errorf("nodes: %v", r)
	}
	r = admin.do(map[string]any{"action": "getsysinfo", "nodeid": ok})
	if hw, _ := r["hardware"].(map[string]any); hw["mem"] != float64(1) {
		t.Errorf("getsysinfo of the well-behaved agent: %v", r)
	}
	r = admin.do(map[string]any{"action": "getnetworkinfo", "nodeid": ok})
	if r["netif2"] == nil {
		t.Errorf("getnetworkinfo of the well-behaved agent: %v", r)
	}
}

// TestProbeRemoveOnlineDevice is finding 9: removing a device while its
// agent is online leaves no stub record behind (queued writes of the
// closing connection must not recreate it), and the agent's 1 MB name is
// not taken.
func TestProbeRemoveOnlineDevice(t *testing.T) {
	e := newProbeEnv(t, nil)
	admin := e.login(e.admin, e.pass)
	node, conn := e.enroll(e.app.DefaultGroup.ID, "dev", nil)
	go drain(conn.WS, nil)
	if err := conn.WS.WriteMessage(websocket.TextMessage, []byte(`{"action":"coreinfo","value":"c","caps":14,"name":"`+strings.Repeat("n", 1<<20)+`"}`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	e.app.Store.Flush()
	if d, _ := e.app.Store.Device(node); len(d.Name) > adminapi.MaxDeviceName {
		t.Errorf("agent set a %d-byte device name", len(d.Name))
	}
	if r := admin.do(map[string]any{"action": "removedevices", "nodeids": []any{node}}); r["result"] != "ok" {
		t.Fatalf("removedevices: %v", r)
	}
	time.Sleep(500 * time.Millisecond)
	e.app.Store.Flush()
	if d, err := e.app.Store.Device(node); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed device still stored: %+v (%v)", d, err)
	}
}
