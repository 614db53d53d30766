package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/notify"
	"github.com/meshgo/meshagent/server-lite/notify/notifytest"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

// Messaging as a login second factor, end to end: once a handle is
// verified a password alone no longer logs in (the CLI and MeshCentral's
// meshctrl); the code sent to the handle does, once; a wrong code is a
// failed login; "msg2factor": false turns it off for the server.
func TestMsgSecondFactor(t *testing.T) {
	tg := notifytest.Telegram(t, botTokenE2E)
	start := func(msg2factor bool) (*servertest.Server, *testEnv) {
		srv := servertest.Start(t, servertest.Options{Configure: func(c *app.Config) {
			c.Notify = notify.Settings{Telegram: notify.TelegramConfig{Token: botTokenE2E, APIURL: tg.URL}, Msg2Factor: &msg2factor}
		}})
		return srv, &testEnv{t: t, app: srv, url: srv.URL, pass: srv.AdminPass}
	}
	srv, e := start(true)
	feedCode(t, tg, 1)
	if out, errs, code := e.cli("msg-verify", "--user", srv.AdminUser, "--service", "telegram", "5550001"); code != 0 {
		t.Fatalf("msg-verify: %d %q %q", code, out, errs)
	}

	// Password only: refused, and a code is sent.
	_, errs, code := e.cli("groups", "--user", srv.AdminUser)
	if code == 0 || !strings.Contains(errs, "second factor") {
		t.Fatalf("password alone logged in: %d %q", code, errs)
	}
	m := tg.Wait(t, 2, 60*time.Second)[1]
	loginCode := sixDigits.FindString(m.Text)
	if m.To != "5550001" || !strings.Contains(m.Text, "login code") || loginCode == "" {
		t.Fatalf("login message %+v", m)
	}
	// A second attempt within 30 s does not send another code.
	e.cli("groups", "--user", srv.AdminUser)
	time.Sleep(time.Second)
	if n := len(tg.Msgs()); n != 2 {
		t.Fatalf("%d messages: codes are resent at once", n)
	}
	// A wrong code is refused (and counted as a failed login).
	wrong := "000000"
	if loginCode == wrong {
		wrong = "111111"
	}
	if _, errs, code := e.cli("groups", "--user", srv.AdminUser, "--token", wrong); code == 0 {
		t.Fatalf("wrong code logged in: %q", errs)
	}
	// meshctrl: refused without the code, in with it.
	if out := srv.Meshctrl("serverinfo"); strings.Contains(out, "agentCertHash") || strings.Contains(out, "name:") || !strings.Contains(out, "token") {
		t.Fatalf("meshctrl logged in with a password alone:\n%s", out)
	} else {
		t.Logf("meshctrl without the code: %s", strings.TrimSpace(out))
	}
	if out := srv.Meshctrl("serverinfo", "--token", loginCode); !strings.Contains(out, "agentCertHash") && !strings.Contains(out, "name:") {
		t.Fatalf("meshctrl with the code:\n%s", out)
	} else {
		t.Logf("meshctrl with the code: %s", strings.TrimSpace(out))
	}
	// The code is used up.
	if _, _, code := e.cli("groups", "--user", srv.AdminUser, "--token", loginCode); code == 0 {
		t.Fatal("a login code worked twice")
	}
	evs, _ := srv.Store.Events(storeFilterAll)
	var required, accepted bool
	for _, ev := range evs {
		required = required || ev.Action == "login2fa" && strings.Contains(ev.Msg, "code sent by msg")
		accepted = accepted || ev.Action == "login2faok" && strings.Contains(ev.Msg, "msg")
	}
	if !required || !accepted {
		t.Fatalf("audit: required %v accepted %v", required, accepted)
	}

	// Switched off for a server: the verified handle is no second factor.
	srv2, e2 := start(false)
	feedCode(t, tg, len(tg.Msgs())+1)
	if _, errs, code := e2.cli("msg-verify", "--user", srv2.AdminUser, "--service", "telegram", "5550002"); code != 0 {
		t.Fatalf("msg-verify: %q", errs)
	}
	if out, errs, code := e2.cli("groups", "--user", srv2.AdminUser); code != 0 || !strings.Contains(out, "Default") {
		t.Fatalf("msg2factor false still asks for a code: %q %q", out, errs)
	}
}
