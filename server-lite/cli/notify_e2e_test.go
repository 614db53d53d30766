package cli

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/notify"
	"github.com/meshgo/meshagent/server-lite/notify/notifytest"
	"github.com/meshgo/meshagent/server-lite/servertest"
	"github.com/meshgo/meshagent/server-lite/store"
)

const e2eWebhookSecret = "e2e-webhook-secret-0123456789"

var sixDigits = regexp.MustCompile(`\b\d{6}\b`)

// feedCode answers msg-verify's prompt with the code the n-th message of r
// carries, as the user reading it would.
func feedCode(t *testing.T, r *notifytest.Receiver, n int) {
	pr, pw := io.Pipe()
	codeInput = pr
	t.Cleanup(func() { pw.Close() })
	go func() {
		m := r.Wait(t, n, 60*time.Second)[n-1]
		fmt.Fprintln(pw, sixDigits.FindString(m.Text))
	}()
}

// The messaging path a user takes, end to end over control.ashx with the
// CLI: verify a handle with the code it received, subscribe to a group,
// a simulated agent that disconnects and stays away gives one batched
// notice, one that reconnects within the window gives none; an admin
// messages another user; a hanging provider blocks neither the admin API
// nor agents.
func TestNotifyEndToEnd(t *testing.T) {
	nt, wh := notifytest.Ntfy(t), notifytest.Webhook(t, e2eWebhookSecret)
	const window = 2 * time.Second
	off := false // the login factor has its own test (TestMsgSecondFactor)
	srv := servertest.Start(t, servertest.Options{Configure: func(c *app.Config) {
		c.Notify = notify.Settings{Msg2Factor: &off, Ntfy: notify.NtfyConfig{URL: nt.URL}, Webhook: notify.WebhookConfig{URL: wh.URL, Secret: e2eWebhookSecret},
			BatchWindow: notify.Duration(window), RetryBase: notify.Duration(200 * time.Millisecond), SendTimeout: notify.Duration(2 * time.Second)}
	}})
	e := &testEnv{t: t, app: srv, url: srv.URL, pass: srv.AdminPass}
	id := servertest.NewIdentity(t)
	sim := srv.ConnectSim(id, "lab-pc")

	feedCode(t, nt, 1)
	out, errs, code := e.cli("msg-verify", "--user", srv.AdminUser, "--service", "ntfy", "admin-alerts")
	if code != 0 || out != "verified\tntfy:admin-alerts\n" {
		t.Fatalf("msg-verify: %d %q %q", code, out, errs)
	}
	if out, errs, code := e.cli("notify", "--user", srv.AdminUser, "--group", "Default", "--events", "connect,disconnect"); code != 0 {
		t.Fatalf("notify: %d %q %q", code, out, errs)
	}
	out, _, _ = e.cli("notify-list", "--user", srv.AdminUser)
	if !strings.Contains(out, "handle\tntfy:admin-alerts\n") || !strings.Contains(out, "sub\t"+srv.DefaultGroup.ID+"\tconnect,disconnect\t") {
		t.Fatalf("notify-list: %q", out)
	}

	away := func() {
		sim.WS.Close()
		for end := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, ok := srv.Agents.Agent(sim.NodeID); !ok {
				return
			}
			if time.Now().After(end) {
				t.Fatal("agent still registered")
			}
		}
	}
	// Disconnects and stays away: one message, and only one.
	away()
	m := nt.Wait(t, 2, 60*time.Second)[1]
	if m.To != "admin-alerts" || !strings.Contains(m.Text, `"lab-pc" in "Default" disconnected`) {
		t.Fatalf("notice %q", m.Text)
	}
	time.Sleep(window + time.Second)
	if n := len(nt.Msgs()); n != 2 {
		t.Fatalf("%d messages after one disconnect: %+v", n, nt.Msgs())
	}
	// Comes back (that is news), then drops and reconnects within the
	// window: nothing more.
	sim = srv.ConnectSim(id, "lab-pc")
	if m := nt.Wait(t, 3, 60*time.Second)[2]; !strings.Contains(m.Text, `"lab-pc" in "Default" connected`) {
		t.Fatalf("notice %q", m.Text)
	}
	away()
	sim = srv.ConnectSim(id, "lab-pc")
	time.Sleep(window + 2*time.Second)
	if n := len(nt.Msgs()); n != 3 {
		t.Fatalf("a disconnect and reconnect within the window sent: %+v", nt.Msgs()[3:])
	}

	// An administrator messages another user, who verified a webhook label.
	if _, err := srv.Accounts.Create("bob", "bob-password-1", 0); err != nil {
		t.Fatal(err)
	}
	feedCode(t, wh.Receiver, 1)
	if out, errs, code := e.cli("msg-verify", "--user", "bob", "--pass", "bob-password-1", "--service", "webhook", "bob-scripts"); code != 0 {
		t.Fatalf("bob msg-verify: %d %q %q", code, out, errs)
	}
	if out, errs, code := e.cli("msg-user", "--user", srv.AdminUser, "--to", "bob", "please", "reboot", "lab-pc"); code != 0 || out != "queued\n" {
		t.Fatalf("msg-user: %d %q %q", code, out, errs)
	}
	if m := wh.Wait(t, 2, 60*time.Second)[1]; m.To != "bob-scripts" || m.Text != "please reboot lab-pc" {
		t.Fatalf("bob got %+v", m)
	}
	// Bob has no user-management right: he cannot message others.
	if _, errs, code := e.cli("msg-user", "--user", "bob", "--pass", "bob-password-1", "--to", srv.AdminUser, "hi"); code == 0 || !strings.Contains(errs, "No user management rights") {
		t.Fatalf("bob messaged the admin: %q", errs)
	}

	// The webhook hangs: messages to it queue, the admin API answers at
	// once, agents connect, and other providers still deliver.
	wh.Hang()
	start := time.Now()
	for i := range 5 {
		if _, errs, code := e.cli("msg-user", "--user", srv.AdminUser, "--to", "bob", fmt.Sprint("queued while hanging ", i)); code != 0 {
			t.Fatalf("msg-user while hanging: %q", errs)
		}
	}
	if _, errs, code := e.cli("devices", "--user", srv.AdminUser); code != 0 {
		t.Fatalf("devices while hanging: %q", errs)
	}
	other := srv.ConnectSim(servertest.NewIdentity(t), "second-pc")
	if m := nt.Wait(t, 4, 60*time.Second)[3]; !strings.Contains(m.Text, `"second-pc" in "Default" connected`) {
		t.Fatalf("notice %q", m.Text)
	}
	t.Logf("figures: 5 msg-user, a devices listing and an agent connect with a hanging webhook took %v", time.Since(start).Round(time.Millisecond))
	wh.Unhang()
	wh.Wait(t, 7, 60*time.Second)

	// Failures are in the event log, which the CLI shows.
	out, _, _ = e.cli("events", "--user", srv.AdminUser, "--limit", "1000")
	if !strings.Contains(out, "notifyfailed") {
		t.Fatalf("no notifyfailed event in:\n%s", out)
	}
	// Agent errors and a core crash, from the agent's own messages
	// (MeshCentral's errorlog and getcoredump), on a device subscription.
	if _, errs, code := e.cli("notify", "--user", srv.AdminUser, "--id", other.NodeID, "--events", "errors,crash"); code != 0 {
		t.Fatalf("notify --id: %q", errs)
	}
	other.WS.WriteMessage(websocket.TextMessage, []byte(`{"action":"errorlog","log":[{"t":1,"m":"core: uncaught exception: boom"}]}`))
	other.WS.WriteMessage(websocket.TextMessage, []byte(`{"action":"getcoredump","value":true}`))
	m = nt.Wait(t, 5, 60*time.Second)[4]
	if !strings.Contains(m.Text, `"second-pc" in "Default" agent error: core: uncaught exception: boom`) || !strings.Contains(m.Text, `"second-pc" in "Default" core crashed`) {
		t.Fatalf("errors notice %q", m.Text)
	}
	// Mute, then the device's events say nothing.
	if _, errs, code := e.cli("notify-mute", "--user", srv.AdminUser, "--id", sim.NodeID); code != 0 {
		t.Fatalf("mute: %q", errs)
	}
	away()
	time.Sleep(window + 2*time.Second)
	if n := len(nt.Msgs()); n != 5 {
		t.Fatalf("muted device notified: %+v", nt.Msgs()[5:])
	}
}

const botTokenE2E = "424242:e2e-bot-token-secret"

var storeFilterAll = store.EventFilter{}
