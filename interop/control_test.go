//go:build linux

package interop

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meshgo/meshagent/internal/mctest"
)

// userConn is a minimal MeshCentral user session on control.ashx, logged
// in with the x-meshauth header as meshctrl does (admin-api.md §1.3).
type userConn struct {
	ws   *websocket.Conn
	msgs chan map[string]any
}

func dialControl(t testing.TB, srv *mctest.Server) *userConn {
	t.Helper()
	return dialControlAs(t, srv, srv.AdminUser(), srv.AdminPass())
}

// dialControlAs logs in to control.ashx as the given user.
func dialControlAs(t testing.TB, srv *mctest.Server, user, pass string) *userConn {
	t.Helper()
	h := http.Header{}
	h.Set("x-meshauth", base64.StdEncoding.EncodeToString([]byte(user))+","+
		base64.StdEncoding.EncodeToString([]byte(pass)))
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 20 * time.Second}
	ws, _, err := d.Dial(srv.URL()+"/control.ashx", h)
	if err != nil {
		t.Fatalf("control.ashx: %v", err)
	}
	u := &userConn{ws: ws, msgs: make(chan map[string]any, 256)}
	t.Cleanup(func() { ws.Close() })
	go func() {
		defer close(u.msgs)
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				select {
				case u.msgs <- m:
				default:
				}
			}
		}
	}()
	return u
}

func (u *userConn) send(t testing.TB, m map[string]any) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := u.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

func (u *userConn) await(t testing.TB, what string, pred func(map[string]any) bool) map[string]any {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case m, ok := <-u.msgs:
			if !ok {
				t.Fatalf("control.ashx closed while waiting for %s", what)
			}
			if pred(m) {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s", what)
		}
	}
}

// The default core answers MeshCentral's console, runcommands and sysinfo
// as the C agent's core does, so the web UI and meshctrl show the device.
func TestCoreInRealMeshCentral(t *testing.T) {
	srv := mctest.Shared(t)
	_, id := onlineAgent(t, srv, "core-test")
	full := "node//" + id

	// Device details: meshctrl's --raw view is the stored sysinfo (its text
	// view prints CPU only with a board vendor, memory only for Windows,
	// and never storage: meshctrl.js displayDeviceInfo).
	var hw map[string]any
	deadline := time.Now().Add(30 * time.Second)
	for hw == nil && time.Now().Before(deadline) {
		out, _ := srv.Meshctrl(t, "deviceinfo", "--id", full, "--raw")
		var raw struct {
			Hardware map[string]any `json:"hardware"`
		}
		if json.Unmarshal([]byte(out), &raw) == nil && raw.Hardware != nil {
			hw = raw.Hardware
		} else {
			time.Sleep(time.Second)
		}
	}
	if hw == nil {
		t.Fatal("MeshCentral has no system information for our agent")
	}
	ident, _ := hw["identifiers"].(map[string]any)
	linux, _ := hw["linux"].(map[string]any)
	if s, _ := ident["cpu_name"].(string); s == "" {
		t.Errorf("no cpu_name in %v", ident)
	}
	if linux["memory"] == nil {
		t.Errorf("no memory in hardware.linux: %v", linux)
	}
	if v, _ := linux["volumes"].([]any); len(v) == 0 {
		t.Errorf("no volumes in hardware.linux: %v", linux)
	}
	text, err := srv.Meshctrl(t, "deviceinfo", "--id", full)
	if err != nil || !strings.Contains(text, "--- Networking ---") || !strings.Contains(text, "Version: ") || !strings.Contains(text, "IPv4 Layer") {
		t.Errorf("deviceinfo lacks OS or network interfaces (%v):\n%s", err, text)
	}

	out, err := srv.Meshctrl(t, "runcommand", "--id", full, "--run", "echo rc-$((2+3))-done", "--reply")
	if err != nil || !strings.Contains(out, "rc-5-done") {
		t.Errorf("runcommand --reply: %v\n%s", err, out)
	}

	u := dialControl(t, srv)
	console := func(cmd string) string {
		u.send(t, map[string]any{"action": "msg", "type": "console", "nodeid": full, "value": cmd})
		m := u.await(t, "console reply to "+cmd, func(m map[string]any) bool {
			return m["action"] == "msg" && m["type"] == "console" && m["nodeid"] == full
		})
		s, _ := m["value"].(string)
		return s
	}
	if s := console("help"); !strings.Contains(s, "info") || !strings.Contains(s, "sysinfo") {
		t.Errorf("help: %q", s)
	}
	if s := console("info"); !strings.Contains(s, id) {
		t.Errorf("info does not show the node id: %q", s)
	}
	if s := console("nosuchcommand"); !strings.Contains(strings.ToLower(s), "unknown command") {
		t.Errorf("unknown command: %q", s)
	}
}
