package adminapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/accounts/totp"
	"github.com/meshgo/meshagent/server-lite/store"
)

// ctlAs opens control.ashx with x-meshauth (code: the second factor, or
// "") and returns the first message and the socket.
func (e *testEnv) ctlAs(user, pass, code string) (map[string]any, *websocket.Conn) {
	e.t.Helper()
	h := http.Header{}
	v := b64(user) + "," + b64(pass)
	if code != "" {
		v += "," + b64(code)
	}
	h.Set("X-Meshauth", v)
	first, ws := e.dialControl("", h)
	if first["action"] == "serverinfo" {
		readMsg(e.t, ws) // userinfo
	}
	return first, ws
}

// call sends one request and reads until its reply.
func call(t *testing.T, ws *websocket.Conn, m map[string]any) map[string]any {
	t.Helper()
	m["responseid"] = "t1"
	sendMsg(t, ws, m)
	for {
		r := readMsg(t, ws)
		if r["responseid"] == "t1" {
			return r
		}
	}
}

// auditActions returns the actions of the audit log, oldest first.
func (e *testEnv) auditActions() []string {
	e.t.Helper()
	evs, err := e.st.Events(store.EventFilter{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, evs[i].Action)
	}
	return out
}

func wantAudit(t *testing.T, e *testEnv, actions ...string) {
	t.Helper()
	have := strings.Join(e.auditActions(), " ")
	for _, a := range actions {
		if !strings.Contains(" "+have+" ", " "+a+" ") {
			t.Errorf("audit log lacks %q: %s", a, have)
		}
	}
}

// TestAccountAdministration drives MeshCentral's account actions through
// meshctrl and control.ashx: password rules, deactivation (edituser
// --rights locked) ending the user's open session, cookie and token, the
// self-protection rules, an administrator's reset with a generated
// password, a user's own password change, and each in the audit log.
func TestAccountAdministration(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	e.acc.SetPasswordRules(accounts.PasswordRules{MinLength: 8})

	// Password rules apply to adduser.
	if out := strings.TrimSpace(e.meshctrl("adduser", "--user", "bob", "--pass", "short")); !strings.HasPrefix(out, "Invalid password: shorter than 8") {
		t.Fatalf("adduser with a short password: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("adduser", "--user", "bob", "--pass", "bob-pass-1")); out != "ok" {
		t.Fatalf("adduser: %q", out)
	}
	tok, err := e.acc.CreateLoginToken("bob", "t", 0)
	if err != nil {
		t.Fatal(err)
	}
	// bob's open session, a form-login cookie and a login token.
	first, bobWS := e.ctlAs("bob", "bob-pass-1", "")
	if first["action"] != "serverinfo" {
		t.Fatalf("bob login: %v", first)
	}
	cookie := e.formLogin("bob", "bob-pass-1")
	if cookie == nil {
		t.Fatal("bob's form login failed")
	}
	if first, _ := e.dialControl("", http.Header{"Cookie": {cookie.String()}}); first["action"] != "serverinfo" {
		t.Fatalf("bob's cookie before the lock: %v", first)
	}

	// Nobody changes their own rights or deletes themselves.
	if out := strings.TrimSpace(e.meshctrl("edituser", "--userid", "admin", "--rights", "none")); out != "You cannot change your own rights" {
		t.Fatalf("admin removing own rights: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("edituser", "--userid", "admin", "--rights", "locked")); out != "You cannot change your own rights" {
		t.Fatalf("admin locking self: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("removeuser", "--userid", "admin")); out != "You cannot delete your own account" {
		t.Fatalf("admin deleting self: %q", out)
	}
	if u, _ := e.acc.Get("admin"); !u.IsSiteAdmin() {
		t.Fatal("admin lost its rights")
	}
	// A user without user management cannot lock anyone.
	if out := strings.TrimSpace(e.meshctrlAs("bob", "bob-pass-1", "edituser", "--userid", "admin", "--rights", "locked")); out != "Permission denied" {
		t.Fatalf("bob locking admin: %q", out)
	}

	// Deactivate bob: his open session closes at once, his cookie, token
	// and password stop working.
	if out := strings.TrimSpace(e.meshctrl("edituser", "--userid", "bob", "--rights", "locked")); out != "ok" {
		t.Fatalf("edituser --rights locked: %q", out)
	}
	bobWS.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, _, err := bobWS.ReadMessage(); err != nil {
			if strings.Contains(err.Error(), "timeout") {
				t.Fatal("bob's open session survived the lock")
			}
			break
		}
	}
	if first, _ := e.dialControl("", http.Header{"Cookie": {cookie.String()}}); first["action"] != "close" {
		t.Fatalf("bob's cookie after the lock: %v", first)
	}
	if first, _ := e.ctlAs(tok.TokenUser, tok.Pass, ""); first["action"] != "close" {
		t.Fatalf("bob's login token after the lock: %v", first)
	}
	if first, _ := e.ctlAs("bob", "bob-pass-1", ""); first["action"] != "close" {
		t.Fatalf("bob's password after the lock: %v", first)
	}
	if out := strings.TrimSpace(e.meshctrl("edituser", "--userid", "bob", "--rights", "none")); out != "ok" {
		t.Fatalf("unlock: %q", out)
	}

	// An administrator's reset: a generated password, returned once; the
	// old one stops working.
	_, adminWS := e.ctlAs("admin", e.pass, "")
	r := call(t, adminWS, map[string]any{"action": "changeuserpass", "userid": "user//bob", "generate": true, "removeMultiFactor": false})
	gen, _ := r["pass"].(string)
	if r["result"] != "ok" || len(gen) < 20 {
		t.Fatalf("changeuserpass generate: %v", r)
	}
	if first, _ := e.ctlAs("bob", "bob-pass-1", ""); first["action"] != "close" {
		t.Fatal("the old password still works after the reset")
	}
	if r := call(t, adminWS, map[string]any{"action": "changeuserpass", "userid": "user//bob", "pass": "x"}); !strings.HasPrefix(r["result"].(string), "Invalid password") {
		t.Fatalf("reset to a short password: %v", r)
	}
	if r := call(t, adminWS, map[string]any{"action": "changeuserpass", "userid": "user//admin", "pass": "whatever-1"}); r["result"] == "ok" {
		t.Fatalf("reset of one's own password through changeuserpass: %v", r)
	}

	// bob changes his own password: the current one is checked.
	first, bobWS = e.ctlAs("bob", gen, "")
	if first["action"] != "serverinfo" {
		t.Fatalf("login with the generated password: %v", first)
	}
	if r := call(t, bobWS, map[string]any{"action": "changepassword", "oldpass": "wrong", "newpass": "bob-new-pass"}); r["result"] != "Current password not correct" {
		t.Fatalf("changepassword with a wrong current one: %v", r)
	}
	if r := call(t, bobWS, map[string]any{"action": "changepassword", "oldpass": gen, "newpass": "short"}); !strings.HasPrefix(r["result"].(string), "Invalid password") {
		t.Fatalf("changepassword to a short one: %v", r)
	}
	if r := call(t, bobWS, map[string]any{"action": "changepassword", "oldpass": gen, "newpass": "bob-new-pass"}); r["result"] != "ok" {
		t.Fatalf("changepassword: %v", r)
	}
	if out := e.meshctrlAs("bob", "bob-new-pass", "userinfo"); !strings.Contains(out, "bob") {
		t.Fatalf("meshctrl with the new password: %q", out)
	}
	// A login-token session may not change the password.
	tok2, _ := e.acc.CreateLoginToken("bob", "t2", 0)
	_, tws := e.ctlAs(tok2.TokenUser, tok2.Pass, "")
	if r := call(t, tws, map[string]any{"action": "changepassword", "oldpass": "bob-new-pass", "newpass": "bob-newer-pass"}); r["result"] == "ok" {
		t.Fatalf("changepassword from a login token: %v", r)
	}
	wantAudit(t, e, "accountcreate", "login", "loginfailed", "accountlock", "accountunlock", "passreset", "passchange")
	for _, ev := range mustEvents(t, e) {
		if strings.Contains(ev.Msg, gen) || strings.Contains(ev.Msg, "bob-new-pass") || strings.Contains(ev.Msg, "bob-pass-1") {
			t.Fatalf("a password in the audit log: %+v", ev)
		}
		if ev.Action == "accountlock" && (ev.Who != "user//admin" || ev.From == "" || ev.Time.IsZero() || !strings.Contains(ev.Msg, "user//bob")) {
			t.Fatalf("lock event lacks who/what/where/when: %+v", ev)
		}
	}
}

func mustEvents(t *testing.T, e *testEnv) []store.Event {
	t.Helper()
	evs, err := e.st.Events(store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// formLogin posts the login form and returns the session cookie (nil on
// failure).
func (e *testEnv) formLogin(user, pass string, extra ...string) *http.Cookie {
	e.t.Helper()
	resp := e.postLogin(user, pass, extra...)
	resp.Body.Close()
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookieName && c.Value != "" {
			if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode {
				e.t.Fatalf("session cookie flags: HttpOnly %v Secure %v SameSite %v", c.HttpOnly, c.Secure, c.SameSite)
			}
			return c
		}
	}
	return nil
}

func (e *testEnv) postLogin(user, pass string, extra ...string) *http.Response {
	e.t.Helper()
	f := url.Values{"username": {user}, "password": {pass}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Set(extra[i], extra[i+1])
	}
	resp, err := e.srv.Client().PostForm(e.srv.URL+"/login", f)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

// TestTOTPLogin: bob sets up an authenticator app through control.ashx
// (otpauth-request, otpauth-setup), then every password path needs a
// code: meshctrl without --token is told so, with a wrong code refused,
// with the right one let in (once: the same code again is refused); the
// form login answers tokenrequired; login tokens need none; clearing it
// (otpauth-clear) and an administrator's removeMultiFactor turn it off.
func TestTOTPLogin(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	e.acc.AddFactor(totp.Factor{})
	if out := strings.TrimSpace(e.meshctrl("adduser", "--user", "bob", "--pass", "bob-pass-1")); out != "ok" {
		t.Fatalf("adduser: %q", out)
	}
	_, ws := e.ctlAs("bob", "bob-pass-1", "")
	req := call(t, ws, map[string]any{"action": "otpauth-request"})
	sec, _ := req["secret"].(string)
	if sec == "" || !strings.HasPrefix(req["url"].(string), "otpauth://totp/") {
		t.Fatalf("otpauth-request: %v", req)
	}
	key, _ := totp.DecodeSecret(sec)
	if r := call(t, ws, map[string]any{"action": "otpauth-setup", "secret": sec, "token": "000000"}); r["success"] != false {
		t.Fatalf("setup with a wrong code: %v", r)
	}
	// The setup code's step counts as used, so codes for a later step are
	// what a login takes; make one a step ahead (within the skew).
	now := time.Now()
	if r := call(t, ws, map[string]any{"action": "otpauth-setup", "secret": sec, "token": totp.Code(key, now)}); r["success"] != true {
		t.Fatalf("otpauth-setup: %v", r)
	}
	if u := call(t, ws, map[string]any{"action": "userinfo"})["userinfo"].(map[string]any); u["otpsecret"] != float64(1) {
		t.Fatalf("userinfo after setup: %v", u)
	}

	// meshctrl: without --token, told to give one; wrong token refused.
	if out := e.meshctrlAs("bob", "bob-pass-1", "userinfo"); !strings.Contains(out, "Authentication token required, use --token [number].") {
		t.Fatalf("meshctrl without --token: %q", out)
	}
	if out := e.meshctrlAs("bob", "bob-pass-1", "userinfo", "--token", "123456"); !strings.Contains(out, "Invalid login") {
		t.Fatalf("meshctrl with a wrong --token: %q", out)
	}
	next := totp.Code(key, now.Add(30*time.Second))
	if out := e.meshctrlAs("bob", "bob-pass-1", "userinfo", "--token", next); !strings.Contains(out, "user//bob") {
		t.Fatalf("meshctrl with --token: %q", out)
	}
	if out := e.meshctrlAs("bob", "bob-pass-1", "userinfo", "--token", next); !strings.Contains(out, "Invalid login") {
		t.Fatalf("the same code twice: %q", out)
	}
	// A wrong password with a right code is still a wrong password.
	if first, _ := e.ctlAs("bob", "wrong", totp.Code(key, now.Add(60*time.Second))); first["msg"] == "tokenrequired" || first["action"] != "close" {
		t.Fatalf("wrong password and a code: %v", first)
	}
	// The form login: 401 tokenrequired, then in with the code.
	resp := e.postLogin("bob", "bob-pass-1")
	var body strings.Builder
	buf := make([]byte, 512)
	n, _ := resp.Body.Read(buf)
	body.Write(buf[:n])
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body.String(), `"tokenrequired"`) || !strings.Contains(body.String(), `"totp"`) || len(resp.Cookies()) != 0 {
		t.Fatalf("form login without a code: %d %s %v", resp.StatusCode, body.String(), resp.Cookies())
	}
	if c := e.formLogin("bob", "bob-pass-1", "token", totp.Code(key, now.Add(60*time.Second))); c == nil {
		t.Fatal("form login with the code failed")
	}
	// Login tokens have no second factor (as in MeshCentral).
	tok, _ := e.acc.CreateLoginToken("bob", "t", 0)
	if first, _ := e.ctlAs(tok.TokenUser, tok.Pass, ""); first["action"] != "serverinfo" {
		t.Fatalf("login token with 2FA on: %v", first)
	}
	// otpauth-clear turns it off.
	if r := call(t, ws, map[string]any{"action": "otpauth-clear"}); r["success"] != true {
		t.Fatalf("otpauth-clear: %v", r)
	}
	if first, _ := e.ctlAs("bob", "bob-pass-1", ""); first["action"] != "serverinfo" {
		t.Fatalf("after clear: %v", first)
	}
	// An administrator removes a lost authenticator.
	e.acc.SetFactorData("bob", totp.Name, totp.Data(sec, 0))
	_, aws := e.ctlAs("admin", e.pass, "")
	if r := call(t, aws, map[string]any{"action": "changeuserpass", "userid": "user//bob", "pass": "", "removeMultiFactor": true}); r["result"] != "ok" {
		t.Fatalf("removeMultiFactor: %v", r)
	}
	if first, _ := e.ctlAs("bob", "bob-pass-1", ""); first["action"] != "serverinfo" {
		t.Fatalf("after removeMultiFactor: %v", first)
	}
	wantAudit(t, e, "2faadd", "login2fa", "loginfailed", "2faremove")
}

// TestOriginAgainstServerNames: with the server's names configured, a
// page on any other origin (even one whose Host header names it, as a
// DNS-rebinding page's does) cannot open control.ashx.
func TestOriginAgainstServerNames(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	e.api.cfg.Hostnames = []string{"127.0.0.1", "mesh.example.org"}
	port := e.api.cfg.Port
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://127.0.0.1:" + strconv.Itoa(port), true},
		{"https://MESH.example.org:" + strconv.Itoa(port), true},
		{"https://evil.example:" + strconv.Itoa(port), false},
		{"http://127.0.0.1:" + strconv.Itoa(port), false},
		{"https://127.0.0.1:1", false},
		{"https://127.0.0.1", false},
		{"null", false},
	} {
		h := http.Header{}
		h.Set("X-Meshauth", b64("admin")+","+b64(e.pass))
		h.Set("Origin", tc.origin)
		first, _ := e.dialControl("", h)
		if got := first["action"] == "serverinfo"; got != tc.ok {
			t.Errorf("Origin %s: %v, want allowed=%v", tc.origin, first, tc.ok)
		}
	}
	wantAudit(t, e, "invalidorigin")
}
