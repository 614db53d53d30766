//go:build linux

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/notify/notifytest"
)

// The built binary with messaging in its config file: a secret inline in
// a file others can read is refused; the admin verifies a Telegram chat
// and messages themselves with the binary's CLI; a message queued while
// Telegram fails is delivered after a restart; e-mail goes through a real
// exim; no secret appears in the output, even at -v.
func TestDeployedNotify(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs server-lite")
	}
	const token = "987654:DEPLOYED-bot-token-secret"
	const whSecret = "deployed-webhook-secret-value-42"
	tg := notifytest.Telegram(t, token)
	wh := notifytest.Webhook(t, whSecret)
	mta := notifytest.StartExim(t)
	work := t.TempDir()
	os.WriteFile(filepath.Join(work, "bot-token"), []byte(token+"\n"), 0o600)
	os.WriteFile(filepath.Join(work, "webhook-secret"), []byte(whSecret), 0o644)
	cfg := map[string]any{"data": "data", "listen": "127.0.0.1:0", "notify": map[string]any{
		"telegram": map[string]any{"tokenFile": "bot-token", "apiURL": tg.URL},
		"smtp": map[string]any{"host": mta.Host, "port": mta.Port, "from": "lite@" + mta.Domain, "user": mta.User,
			"password": mta.Password, "caFile": mta.CAFile},
		"webhook":   map[string]any{"url": wh.URL, "secretFile": "webhook-secret"},
		"retryBase": "500ms", "batchWindow": "2s", "msg2factor": false,
	}}
	b, _ := json.Marshal(cfg)
	conf := filepath.Join(work, "server-lite.json")
	os.WriteFile(conf, b, 0o644)

	bin, err := buildServerLite()
	if err != nil {
		t.Fatal(err)
	}
	refused := func(why string) {
		t.Helper()
		out, err := exec.Command(bin, "--config", conf).CombinedOutput()
		if err == nil || !strings.Contains(string(out), why) {
			t.Fatalf("started (%v) without refusing %q:\n%s", err, why, out)
		}
	}
	refused("chmod 600") // the config file holds the SMTP password and is 0644
	os.Chmod(conf, 0o600)
	refused("webhook secret") // the webhook secret file is 0644
	os.Chmod(filepath.Join(work, "webhook-secret"), 0o600)

	p := startLite(t, work, "--config", "server-lite.json", "-v")
	local := "127.0.0.1:" + p.waitFor(`listening on: \S+:(\d+)`, time.Minute)[1]
	pass := p.waitFor(`password: +(\S+)`, time.Second)[1]
	p.waitFor(`messaging enabled`, time.Second)
	cli := func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{args[0], "--url", "wss://" + local, "--user", "admin"}, args[1:]...)...)
		cmd.Env = append(os.Environ(), "SERVERLITE_PASS="+pass)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("server-lite %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// msg-verify asks for the code on stdin: fed once Telegram has it.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	verify := exec.CommandContext(ctx, bin, "msg-verify", "--url", "wss://"+local, "--user", "admin", "--service", "telegram", "31337")
	verify.Env = append(os.Environ(), "SERVERLITE_PASS="+pass)
	in, _ := verify.StdinPipe()
	var vout strings.Builder
	verify.Stdout, verify.Stderr = &vout, &vout
	if err := verify.Start(); err != nil {
		t.Fatal(err)
	}
	m := tg.Wait(t, 1, time.Minute)[0]
	in.Write([]byte(regexp.MustCompile(`\d{6}`).FindString(m.Text) + "\n"))
	in.Close()
	if err := verify.Wait(); err != nil || !strings.Contains(vout.String(), "verified\ttelegram:31337") {
		t.Fatalf("msg-verify: %v\n%s", err, vout.String())
	}
	if out := cli("", "notify-list"); !strings.Contains(out, "handle\ttelegram:31337") {
		t.Fatalf("notify-list after msg-verify: %q", out)
	}
	cli("", "msg-user", "--to", "admin", "hello from the deployed server")
	if m := tg.Wait(t, 2, time.Minute)[1]; m.To != "31337" || m.Text != "hello from the deployed server" {
		t.Fatalf("telegram got %+v", m)
	}

	// Telegram fails: the message stays queued across a restart.
	tg.FailNext(1 << 20)
	cli("", "msg-user", "--to", "admin", "queued across a restart")
	p.waitFor(`notification failed; will retry`, time.Minute)
	p.stop()
	tg.FailNext(0)
	p2 := startLite(t, work, "--config", "server-lite.json", "-v")
	p2.waitFor(`notification queue loaded.*pending=1`, time.Minute)
	if m := tg.Wait(t, 3, time.Minute)[2]; m.Text != "queued across a restart" {
		t.Fatalf("after restart telegram got %+v", m)
	}
	for _, out := range []string{p.output(), p2.output()} {
		for _, secret := range []string{token, whSecret, mta.Password} {
			if strings.Contains(out, secret) {
				t.Fatalf("secret %q in server-lite's output:\n%s", secret, out)
			}
		}
	}
	// The database holding the queue is owner-only.
	if fi, err := os.Stat(filepath.Join(work, "data", "server-lite.db")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("database mode: %v %v", fi.Mode(), err)
	}
}
