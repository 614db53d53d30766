package adminapi

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// dialControl opens control.ashx with the given query and headers and
// returns the first message and the connection.
func (e *testEnv) dialControl(query string, h http.Header) (map[string]any, *websocket.Conn) {
	e.t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	u := e.url + "/control.ashx"
	if query != "" {
		u += "?" + query
	}
	ws, _, err := d.Dial(u, h)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { ws.Close() })
	return readMsg(e.t, ws), ws
}

func readMsg(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

func sendMsg(t *testing.T, ws *websocket.Conn, m map[string]any) {
	t.Helper()
	b, _ := json.Marshal(m)
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		t.Fatal(err)
	}
}

func TestControlLoginMethods(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	if _, err := e.acc.Create("notool", "pw", accounts.SiteNoMeshCmd); err != nil {
		t.Fatal(err)
	}
	if _, err := e.acc.Create("locked", "pw", accounts.SiteLocked); err != nil {
		t.Fatal(err)
	}
	hdr := func(v string) http.Header { h := http.Header{}; h.Set("X-Meshauth", v); return h }
	for _, tc := range []struct {
		name   string
		query  string
		header http.Header
		cause  string // "" = success
		msg    string
	}{
		{"meshauth", "", hdr(b64("admin") + "," + b64(e.pass)), "", ""},
		{"meshauth with 2FA part ignored", "", hdr(b64("admin") + "," + b64(e.pass) + "," + b64("123456")), "", ""},
		{"meshauth upper-case name", "", hdr(b64("ADMIN") + "," + b64(e.pass)), "", ""},
		{"meshauth wrong password", "", hdr(b64("admin") + "," + b64("nope")), "noauth", "noauth-2d"},
		{"meshauth one part", "", hdr(b64("admin")), "noauth", "noauth-2c"},
		{"meshauth four parts", "", hdr("a,b,c,d"), "noauth", "noauth-2c"},
		{"meshauth bad base64", "", hdr("!!,??"), "noauth", "noauth-2c"},
		{"meshauth locked", "", hdr(b64("locked") + "," + b64("pw")), "noauth", "noauth-2d"},
		{"meshauth notools", "", hdr(b64("notool") + "," + b64("pw")), "notools", "notools"},
		{"url user pass", "user=admin&pass=" + url.QueryEscape(e.pass), nil, "", ""},
		{"url wrong pass", "user=admin&pass=x", nil, "noauth", "noauth-2a"},
		{"bad auth cookie ignored, falls through", "auth=0123456789abcdef0123456789abcdef", hdr(b64("admin") + "," + b64(e.pass)), "", ""},
		{"nothing", "", nil, "noauth", "noauth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, ws := e.dialControl(tc.query, tc.header)
			if tc.cause == "" {
				if first["action"] != "serverinfo" {
					t.Fatalf("first message %v", first)
				}
				if second := readMsg(t, ws); second["action"] != "userinfo" {
					t.Fatalf("second message %v", second)
				}
				return
			}
			if first["action"] != "close" || first["cause"] != tc.cause || first["msg"] != tc.msg {
				t.Fatalf("got %v, want close %s/%s", first, tc.cause, tc.msg)
			}
			ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Fatalf("after close message: %v", err)
			}
		})
	}
}

func TestFormLoginAndSessionCookie(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	hc := e.srv.Client()
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	// Failure: 401 and no cookie (MeshCentral sets an empty one, §6.2 #11).
	resp, err := hc.PostForm(e.srv.URL+"/login", url.Values{"username": {"admin"}, "password": {"wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("failed login: %d cookies %v", resp.StatusCode, resp.Cookies())
	}
	// Success: one HttpOnly, Secure session cookie without "$".
	resp, err = hc.PostForm(e.srv.URL+"/login", url.Values{"action": {"login"}, "username": {"admin"}, "password": {e.pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusOK || len(cs) != 1 || cs[0].Name != "xid" || !cs[0].HttpOnly || !cs[0].Secure || strings.Contains(cs[0].Value, "$") {
		t.Fatalf("login: %d %v", resp.StatusCode, cs)
	}
	// POST / works like /login.
	resp, err = hc.PostForm(e.srv.URL+"/", url.Values{"username": {"admin"}, "password": {e.pass}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /: %d", resp.StatusCode)
	}

	h := http.Header{}
	h.Set("Cookie", "xid="+cs[0].Value)
	if first, _ := e.dialControl("", h); first["action"] != "serverinfo" {
		t.Fatalf("cookie login: %v", first)
	}
	// The same value works as ?auth= (meshctrl --loginkey takes a ready cookie).
	if first, _ := e.dialControl("auth="+cs[0].Value, nil); first["action"] != "serverinfo" {
		t.Fatalf("auth= login: %v", first)
	}
	// Logout revokes it.
	req, _ := http.NewRequest("GET", e.srv.URL+"/logout", nil)
	req.Header.Set("Cookie", "xid="+cs[0].Value)
	if resp, err = hc.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if first, _ := e.dialControl("", h); first["action"] != "close" {
		t.Fatalf("cookie after logout: %v", first)
	}
	// A form with the wrong action, or a huge body, is refused.
	resp, _ = hc.PostForm(e.srv.URL+"/login", url.Values{"action": {"createaccount"}, "username": {"x"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("other action: %d", resp.StatusCode)
	}
	resp, _ = hc.Post(e.srv.URL+"/login", "application/x-www-form-urlencoded", strings.NewReader("username="+strings.Repeat("a", 100<<10)))
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("huge form: %d", resp.StatusCode)
	}
}

func TestControlOriginAndProtocol(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	h := http.Header{}
	h.Set("X-Meshauth", b64("admin")+","+b64(e.pass))
	h.Set("Origin", "https://evil.example")
	if first, _ := e.dialControl("", h); first["action"] != "close" || first["cause"] != "invalidorigin" {
		t.Fatalf("foreign origin: %v", first)
	}
	h.Set("Origin", strings.Replace(e.url, "wss://", "https://", 1))
	first, ws := e.dialControl("", h)
	if first["action"] != "serverinfo" {
		t.Fatalf("same origin: %v", first)
	}
	si := first["serverinfo"].(map[string]any)
	if si["domain"] != "" || len(si["tlshash"].(string)) != 96 || strings.ToUpper(si["tlshash"].(string)) != si["tlshash"] {
		t.Fatalf("serverinfo %v", si)
	}
	readMsg(t, ws) // userinfo

	// Garbage is ignored; unknown actions get an answer; ping gets pong;
	// replies come in request order with responseid and tag.
	ws.WriteMessage(websocket.TextMessage, []byte("not json"))
	ws.WriteMessage(websocket.TextMessage, []byte(`{"action":"x"}`))
	ws.WriteMessage(websocket.BinaryMessage, []byte(`{"action":"ping"}`))
	sendMsg(t, ws, map[string]any{"action": "bogusaction", "responseid": "r1", "tag": 7})
	sendMsg(t, ws, map[string]any{"action": "ping"})
	sendMsg(t, ws, map[string]any{"action": "meshes", "responseid": "r2"})
	sendMsg(t, ws, map[string]any{"action": "getsysinfo", "nodeid": "node/other/x", "responseid": "r3"})
	if m := readMsg(t, ws); m["action"] != "bogusaction" || m["responseid"] != "r1" || m["tag"] != float64(7) || m["result"] != "Unknown action" {
		t.Fatalf("unknown action reply %v", m)
	}
	if m := readMsg(t, ws); m["action"] != "pong" {
		t.Fatalf("ping reply %v", m)
	}
	if m := readMsg(t, ws); m["action"] != "meshes" || m["responseid"] != "r2" {
		t.Fatalf("meshes reply %v", m)
	}
	if m := readMsg(t, ws); m["action"] != "getsysinfo" || m["result"] != "Invalid device id" || m["responseid"] != "r3" {
		t.Fatalf("getsysinfo reply %v", m)
	}
	// authcookie: relay credentials without "$" and URL-safe.
	sendMsg(t, ws, map[string]any{"action": "authcookie"})
	m := readMsg(t, ws)
	for _, k := range []string{"cookie", "rcookie"} {
		v, _ := m[k].(string)
		if len(v) < 22 || strings.ContainsAny(v, "$@+/=%&") {
			t.Fatalf("authcookie %s = %q", k, v)
		}
	}
	sendMsg(t, ws, map[string]any{"action": "close"})
	ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("session not closed by close action")
	}
}

// TestMsgRights: message routing checks rights per type before anything
// reaches the agent, and the agent gets the server's rights, not the
// client's.
func TestMsgRights(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	g := store.Group{ID: "mesh//G", Name: "G", MType: 2}
	e.st.PutGroup(g)
	n := e.addDevice(g.ID, "pc", true)
	e.acc.Create("viewer", "pw", 0)
	e.acc.SetLink("viewer", g.ID, session.RightRemoteViewOnly, false)
	h := http.Header{}
	h.Set("X-Meshauth", b64("viewer")+","+b64("pw"))
	_, ws := e.dialControl("", h)
	readMsg(t, ws)
	for _, tc := range []struct {
		req  map[string]any
		want string
	}{
		{map[string]any{"type": "messagebox", "title": "t", "msg": "m", "rights": 0xFFFFFFFF}, "OK"},
		{map[string]any{"type": "console", "value": "ls"}, "Unable to route"},
		{map[string]any{"type": "ps"}, "Unable to route"},
		{map[string]any{"type": "tunnel", "value": "*/meshrelay.ashx?p=2&nodeid=" + n + "&id=abc&rauth=x"}, "OK"},
		{map[string]any{"type": "tunnel", "value": "*/meshrelay.ashx?p=2&nodeid=node//other&id=abc"}, "Unable to route"},
	} {
		tc.req["action"], tc.req["nodeid"], tc.req["responseid"] = "msg", n, "r"
		sendMsg(t, ws, tc.req)
		m := readMsg(t, ws)
		for m["action"] == "event" { // the audit entry of our own action
			m = readMsg(t, ws)
		}
		if m["result"] != tc.want {
			t.Errorf("%v: got %v want %s", tc.req, m, tc.want)
		}
	}
	sent := e.agents.sentTo("msg")
	if len(sent) != 2 {
		t.Fatalf("agent got %v", sent)
	}
	for _, m := range sent {
		if m["rights"] != float64(session.RightRemoteViewOnly) || m["userid"] != "user//viewer" {
			t.Fatalf("forwarded %v", m)
		}
	}
	v := sent[1]["value"].(string)
	if !strings.Contains(v, "nodeid="+n) || strings.Contains(v, "rauth=x") || !strings.Contains(v, "&rauth=") {
		t.Fatalf("tunnel value %q", v)
	}
}
