package notify_test

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/notify"
	"github.com/meshgo/meshagent/server-lite/notify/notifytest"
	"github.com/meshgo/meshagent/server-lite/store"
)

const (
	botToken      = "123456:AAH-bot-token-SECRET-value"
	webhookSecret = "webhook-secret-0123456789-SECRET"
)

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type env struct {
	st   *store.Store
	acc  *accounts.Manager
	logs *lockedBuf
	path string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &env{st: st, acc: accounts.New(accounts.FromStore(st)), logs: &lockedBuf{}, path: path}
}

func (e *env) start(t *testing.T, s notify.Settings) *notify.Notifier {
	t.Helper()
	n, err := notify.New(notify.Config{Settings: s, Store: e.st, Accounts: e.acc,
		Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	t.Cleanup(n.Close)
	return n
}

func (e *env) events(t *testing.T, action string) []store.Event {
	t.Helper()
	e.st.Flush()
	evs, err := e.st.Events(store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.Event
	for _, ev := range evs {
		if ev.Kind == notify.EvNotify && ev.Action == action {
			out = append(out, ev)
		}
	}
	return out
}

// Every provider delivers to its loopback receiver in the shape of its API.
func TestProvidersDeliver(t *testing.T) {
	e := newEnv(t)
	tg, nt, wh := notifytest.Telegram(t, botToken), notifytest.Ntfy(t), notifytest.Webhook(t, webhookSecret)
	n := e.start(t, notify.Settings{
		Telegram: notify.TelegramConfig{Token: botToken, APIURL: tg.URL},
		Ntfy:     notify.NtfyConfig{URL: nt.URL},
		Webhook:  notify.WebhookConfig{URL: wh.URL, Secret: webhookSecret},
	})
	for _, c := range []struct{ handle, text string }{
		{"telegram:424242", "hello telegram"},
		{"ntfy:ops-alerts", "hello ntfy"},
		{"webhook:scripts", "hello webhook"},
	} {
		if ok, err := n.Enqueue("k-"+c.handle, "", c.handle, "subject", c.text); !ok || err != nil {
			t.Fatalf("enqueue %s: %v %v", c.handle, ok, err)
		}
	}
	if m := tg.Wait(t, 1, 30*time.Second); m[0].To != "424242" || m[0].Text != "hello telegram" {
		t.Fatalf("telegram got %+v", m)
	}
	if m := nt.Wait(t, 1, 30*time.Second); m[0].To != "ops-alerts" || m[0].Text != "hello ntfy" {
		t.Fatalf("ntfy got %+v", m)
	}
	if m := wh.Wait(t, 1, 30*time.Second); m[0].To != "scripts" || m[0].Text != "hello webhook" || m[0].ID != "k-webhook:scripts" {
		t.Fatalf("webhook got %+v", m)
	}
	if wh.BadSignatures() != 0 {
		t.Fatal("webhook signature refused")
	}
	// A handle of a service that is not configured is refused at once.
	if _, err := n.Enqueue("k-mail", "", "email:a@example.org", "s", "t"); err == nil {
		t.Fatal("email enqueued without an SMTP server configured")
	}
}

// A receiver checking the signature refuses a message signed with another
// secret; the failure is retried and logged, never delivered.
func TestWebhookWrongSecretRefused(t *testing.T) {
	e := newEnv(t)
	wh := notifytest.Webhook(t, webhookSecret)
	n := e.start(t, notify.Settings{Webhook: notify.WebhookConfig{URL: wh.URL, Secret: "another-secret-of-16+chars"},
		RetryBase: notify.Duration(time.Hour)})
	n.Enqueue("k1", "", "webhook:x", "s", "t")
	for end := time.Now().Add(30 * time.Second); wh.BadSignatures() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatal("no request reached the receiver")
		}
	}
	waitEvents(t, e, "notifyfailed", 1)
	if len(wh.Msgs()) != 0 {
		t.Fatal("a wrongly signed message was accepted")
	}
}

func waitEvents(t *testing.T, e *env, action string, n int) []store.Event {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if evs := e.events(t, action); len(evs) >= n {
			return evs
		}
		if time.Now().After(end) {
			t.Fatalf("%d %s events, want %d", len(e.events(t, action)), action, n)
		}
	}
}

// E-mail goes through a real MTA (exim4) on loopback: STARTTLS, AUTH PLAIN,
// delivered into the mailbox file.
func TestEmailThroughExim(t *testing.T) {
	mta := notifytest.StartExim(t)
	e := newEnv(t)
	n := e.start(t, notify.Settings{SMTP: notify.SMTPConfig{Host: mta.Host, Port: mta.Port, From: "server-lite@" + mta.Domain,
		User: mta.User, Password: mta.Password, CAFile: mta.CAFile}})
	if _, err := n.Enqueue("mail-1", "", "email:alice@"+mta.Domain, "server-lite: test", "line one\n.line starting with a dot\nüñïçødé"); err != nil {
		t.Fatal(err)
	}
	box := mta.WaitMail(t, 1, 60*time.Second)
	for _, want := range []string{"Envelope-to: alice@example.test", "Subject: server-lite: test", "line one", "\n.line starting with a dot", "üñïçødé"} {
		if !strings.Contains(box, want) {
			t.Fatalf("mailbox lacks %q:\n%s", want, box)
		}
	}
	if strings.Contains(e.logs.String(), mta.Password) {
		t.Fatal("SMTP password in the log")
	}
	// Without the server's CA the certificate is refused: nothing is sent
	// (so the message above really went over verified TLS).
	e2 := newEnv(t)
	n2 := e2.start(t, notify.Settings{SMTP: notify.SMTPConfig{Host: mta.Host, Port: mta.Port, From: "server-lite@" + mta.Domain,
		User: mta.User, Password: mta.Password}, RetryBase: notify.Duration(time.Hour)})
	n2.Enqueue("mail-2", "", "email:bob@"+mta.Domain, "s", "should not arrive")
	ev := waitEvents(t, e2, "notifyfailed", 1)
	if !strings.Contains(ev[0].Msg, "certificate") {
		t.Fatalf("failure event %q does not name the certificate", ev[0].Msg)
	}
	// A wrong password is refused by the MTA.
	e3 := newEnv(t)
	n3 := e3.start(t, notify.Settings{SMTP: notify.SMTPConfig{Host: mta.Host, Port: mta.Port, From: "server-lite@" + mta.Domain,
		User: mta.User, Password: "wrong-password", CAFile: mta.CAFile}, RetryBase: notify.Duration(time.Hour)})
	n3.Enqueue("mail-3", "", "email:bob@"+mta.Domain, "s", "should not arrive")
	ev = waitEvents(t, e3, "notifyfailed", 1)
	if !strings.Contains(ev[0].Msg, "AUTH") {
		t.Fatalf("failure event %q does not name AUTH", ev[0].Msg)
	}
	if box := mta.Mail(); strings.Contains(box, "should not arrive") {
		t.Fatalf("mail delivered without verified TLS or with a wrong password:\n%s", box)
	}
}

// Failures are retried with backoff, logged in the event log, and what is
// still queued when the server stops is delivered after the restart; an
// idempotency key already queued or delivered is not sent again.
func TestRetryRestartDedup(t *testing.T) {
	e := newEnv(t)
	nt := notifytest.Ntfy(t)
	nt.FailNext(2)
	s := notify.Settings{Ntfy: notify.NtfyConfig{URL: nt.URL}, RetryBase: notify.Duration(200 * time.Millisecond)}
	n := e.start(t, s)
	n.Enqueue("same-key", "user//alice", "ntfy:t1", "s", "first")
	if ok, _ := n.Enqueue("same-key", "user//alice", "ntfy:t1", "s", "again"); ok {
		t.Fatal("a queued key was queued twice")
	}
	m := nt.Wait(t, 1, 30*time.Second)
	if m[0].Text != "first" || nt.Requests() != 3 {
		t.Fatalf("got %+v after %d requests, want first after 3", m, nt.Requests())
	}
	evs := waitEvents(t, e, "notifyfailed", 2)
	if evs[0].Who != "user//alice" || !strings.Contains(evs[0].Msg, "HTTP 500") {
		t.Fatalf("failure event %+v", evs[0])
	}
	if ok, _ := n.Enqueue("same-key", "", "ntfy:t1", "s", "after delivery"); ok {
		t.Fatal("a delivered key was queued again")
	}

	// Restart: a message that could not be delivered stays in the store.
	nt.FailNext(1000)
	n.Enqueue("across-restart", "", "ntfy:t2", "s", "survives")
	waitEvents(t, e, "notifyfailed", 3)
	n.Close()
	if n.Pending() != 1 {
		t.Fatalf("pending %d", n.Pending())
	}
	nt.FailNext(0)
	n2 := e.start(t, s)
	m = nt.Wait(t, 2, 30*time.Second)
	if m[1].Text != "survives" || m[1].To != "t2" {
		t.Fatalf("after restart got %+v", m)
	}
	for end := time.Now().Add(10 * time.Second); n2.Pending() != 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("still pending: %d", n2.Pending())
		}
	}
	if len(nt.Msgs()) != 2 {
		t.Fatalf("duplicates delivered: %+v", nt.Msgs())
	}
}

// A provider that hangs holds only its own worker: enqueueing returns at
// once, other providers deliver, and the hung attempt times out, is logged
// and retried.
func TestHangingProvider(t *testing.T) {
	e := newEnv(t)
	wh, nt := notifytest.Webhook(t, webhookSecret), notifytest.Ntfy(t)
	wh.Hang()
	n := e.start(t, notify.Settings{Webhook: notify.WebhookConfig{URL: wh.URL, Secret: webhookSecret}, Ntfy: notify.NtfyConfig{URL: nt.URL},
		SendTimeout: notify.Duration(time.Second), RetryBase: notify.Duration(100 * time.Millisecond)})
	start := time.Now()
	for i := range 100 {
		if _, err := n.Enqueue("w"+string(rune('a'+i%26))+time.Now().String(), "", "webhook:x", "s", "t"); err != nil {
			t.Fatal(err)
		}
	}
	n.Enqueue("n1", "", "ntfy:t", "s", "through")
	if d := time.Since(start); d > 20*time.Second {
		t.Fatalf("enqueueing 101 messages took %v with a hanging provider", d)
	}
	nt.Wait(t, 1, 30*time.Second)
	ev := waitEvents(t, e, "notifyfailed", 1)
	if !strings.Contains(ev[0].Msg, "webhook") {
		t.Fatalf("failure %q", ev[0].Msg)
	}
	wh.Unhang()
	wh.Wait(t, 100, 120*time.Second)
}

// Telegram: one message per second per chat (Telegram's limit), and a 429
// answer's retry_after is honoured.
func TestTelegramPacing(t *testing.T) {
	e := newEnv(t)
	tg := notifytest.Telegram(t, botToken)
	n := e.start(t, notify.Settings{Telegram: notify.TelegramConfig{Token: botToken, APIURL: tg.URL}, RetryBase: notify.Duration(10 * time.Millisecond)})
	for i := range 3 {
		n.Enqueue("p"+string(rune('0'+i)), "", "telegram:777", "s", "m")
	}
	n.Enqueue("other", "", "telegram:888", "s", "m")
	m := tg.Wait(t, 4, 60*time.Second)
	var same []time.Time
	for _, x := range m {
		if x.To == "777" {
			same = append(same, x.At)
		}
	}
	for i := 1; i < len(same); i++ {
		if d := same[i].Sub(same[i-1]); d < 900*time.Millisecond {
			t.Fatalf("two messages to one chat %v apart", d)
		}
	}
	tg.FailNext(1)
	before := time.Now()
	n.Enqueue("after429", "", "telegram:999", "s", "m")
	m = tg.Wait(t, 5, 60*time.Second)
	if d := m[4].At.Sub(before); d < 900*time.Millisecond {
		t.Fatalf("retry_after 1 not honoured: delivered %v after a 429", d)
	}
	t.Logf("figures: per-chat spacing %v, retry after 429 %v", same[len(same)-1].Sub(same[0])/time.Duration(len(same)-1), m[4].At.Sub(before))
}

// Secrets never reach the log or the event log, even in errors from a
// provider whose URL holds the token (Telegram's).
func TestSecretsNotLogged(t *testing.T) {
	e := newEnv(t)
	tg := notifytest.Telegram(t, "a-different-token:XYZ")
	wh := notifytest.Webhook(t, "not-the-secret-we-sign-with")
	// A dead endpoint too: the connection error would name the URL.
	n := e.start(t, notify.Settings{Telegram: notify.TelegramConfig{Token: botToken, APIURL: tg.URL},
		Webhook: notify.WebhookConfig{URL: wh.URL, Secret: webhookSecret}, RetryBase: notify.Duration(50 * time.Millisecond), MaxAttempts: 2})
	n.Enqueue("t1", "", "telegram:1", "s", "x")
	n.Enqueue("w1", "", "webhook:x", "s", "x")
	waitEvents(t, e, "notifydropped", 2)
	dead := newEnv(t)
	n2 := dead.start(t, notify.Settings{Telegram: notify.TelegramConfig{Token: botToken, APIURL: "http://127.0.0.1:1"}, RetryBase: notify.Duration(time.Hour)})
	n2.Enqueue("t2", "", "telegram:1", "s", "x")
	waitEvents(t, dead, "notifyfailed", 1)
	for _, env := range []*env{e, dead} {
		all := env.logs.String()
		evs, _ := env.st.Events(store.EventFilter{})
		for _, ev := range evs {
			all += ev.Msg + ev.Action
		}
		for _, secret := range []string{botToken, "AAH-bot-token", webhookSecret} {
			if strings.Contains(all, secret) {
				t.Fatalf("secret %q in the logs:\n%s", secret, all)
			}
		}
		if !strings.Contains(all, "notification") {
			t.Fatalf("nothing logged:\n%s", all)
		}
	}
}
