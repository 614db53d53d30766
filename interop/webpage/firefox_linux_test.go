//go:build linux

package webpage

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/server-lite/servertest"
)

// bidi is a minimal WebDriver BiDi client (the W3C protocol Firefox
// speaks natively; Playwright drives only its own patched Firefox): enough
// to open a page and run script in it.
type bidi struct {
	ws   *websocket.Conn
	mu   sync.Mutex
	next int
	ctx  string // the top-level browsing context
}

func (b *bidi) call(method string, params any) (json.RawMessage, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next++
	id := b.next
	if err := b.ws.WriteJSON(map[string]any{"id": id, "method": method, "params": params}); err != nil {
		return nil, err
	}
	b.ws.SetReadDeadline(time.Now().Add(60 * time.Second))
	for {
		var m struct {
			ID      int             `json:"id"`
			Type    string          `json:"type"`
			Result  json.RawMessage `json:"result"`
			Error   string          `json:"error"`
			Message string          `json:"message"`
		}
		if err := b.ws.ReadJSON(&m); err != nil {
			return nil, err
		}
		if m.ID != id { // events and other replies
			continue
		}
		if m.Type == "error" {
			return nil, fmt.Errorf("%s: %s: %s", method, m.Error, m.Message)
		}
		return m.Result, nil
	}
}

// eval runs an expression (awaiting a promise) in the page and returns its
// value as a string.
func (b *bidi) eval(expr string) (string, error) {
	res, err := b.call("script.evaluate", map[string]any{"expression": expr, "target": map[string]string{"context": b.ctx}, "awaitPromise": true})
	if err != nil {
		return "", err
	}
	var r struct {
		Type   string `json:"type"`
		Result struct {
			Type  string `json:"type"`
			Value any    `json:"value"`
		} `json:"result"`
		ExceptionDetails *struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return "", err
	}
	if r.Type == "exception" {
		return "", fmt.Errorf("page exception: %s", r.ExceptionDetails.Text)
	}
	return fmt.Sprint(r.Result.Value), nil
}

// waitFor polls expr until it is "true".
func (b *bidi) waitFor(t *testing.T, what, expr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		v, err := b.eval("String(!!(" + expr + "))")
		if err == nil && v == "true" {
			return
		}
		if time.Now().After(deadline) {
			shot, _ := b.eval("document.body ? document.body.innerText.slice(0, 500) : ''")
			t.Fatalf("Firefox: %s not within %v (last error %v); page text: %q", what, d, err, shot)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// firefoxPath is Debian's firefox-esr, or "" when not installed.
func firefoxPath() string {
	for _, n := range []string{"firefox-esr", "firefox"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

// TestWebPageFirefox is a smoke test of the page in headless Firefox ESR
// over WebDriver BiDi: log in, see a device come online in the list.
func TestWebPageFirefox(t *testing.T) {
	ff := firefoxPath()
	if ff == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("firefox-esr is not installed (.ci/packages.txt lists it)")
		}
		t.Skip("firefox-esr not installed")
	}
	srv := servertest.Start(t, servertest.Options{Quiet: true})

	home := t.TempDir()
	profile := t.TempDir()
	// No updates, telemetry or first-run pages: nothing leaves loopback.
	prefs := `user_pref("app.update.enabled", false);
user_pref("browser.shell.checkDefaultBrowser", false);
user_pref("datareporting.policy.dataSubmissionEnabled", false);
user_pref("toolkit.telemetry.enabled", false);
user_pref("browser.startup.homepage_override.mstone", "ignore");
user_pref("network.captive-portal-service.enabled", false);
user_pref("network.connectivity-service.enabled", false);
user_pref("browser.safebrowsing.malware.enabled", false);
user_pref("browser.safebrowsing.phishing.enabled", false);
user_pref("extensions.update.enabled", false);
user_pref("browser.newtabpage.enabled", false);
user_pref("network.dns.disablePrefetch", true);
user_pref("network.proxy.type", 0);
`
	if err := os.WriteFile(profile+"/user.js", []byte(prefs), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, ff, "--headless", "--no-remote", "--remote-debugging-port", "0", "--profile", profile, "about:blank")
	cmd.Env = append(os.Environ(), "HOME="+home, "MOZ_CRASHREPORTER_DISABLE=1", "MOZ_DISABLE_AUTO_SAFE_MODE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-pid, syscall.SIGKILL) // the group we created for it
		cmd.Wait()
	})
	var logMu sync.Mutex
	var ffLog strings.Builder
	addr := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			logMu.Lock()
			ffLog.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			logMu.Lock()
			t.Logf("firefox log:\n%s", ffLog.String())
			logMu.Unlock()
		}
	})
	var wsURL string
	select {
	case wsURL = <-addr:
	case <-time.After(90 * time.Second):
		t.Fatal("Firefox did not start its WebDriver BiDi server within 90 s")
	}
	if !strings.HasPrefix(wsURL, "ws://127.0.0.1:") {
		t.Fatalf("BiDi on %s, want loopback", wsURL)
	}
	ws, _, err := websocket.DefaultDialer.Dial(strings.TrimSuffix(wsURL, "/")+"/session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	b := &bidi{ws: ws}
	if _, err := b.call("session.new", map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{"acceptInsecureCerts": true}}}); err != nil {
		t.Fatal(err)
	}
	tree, err := b.call("browsingContext.getTree", map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	var tr struct {
		Contexts []struct {
			Context string `json:"context"`
		} `json:"contexts"`
	}
	json.Unmarshal(tree, &tr)
	if len(tr.Contexts) == 0 {
		t.Fatalf("no browsing context: %s", tree)
	}
	b.ctx = tr.Contexts[0].Context
	version, _ := b.eval("navigator.userAgent")
	t.Logf("browser: %s", version)

	if _, err := b.call("browsingContext.navigate", map[string]any{"context": b.ctx, "url": "https://" + srv.Addr() + "/", "wait": "complete"}); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "the login form", `document.getElementById('username') && !document.getElementById('loginview').hidden`, 30*time.Second)
	login := fmt.Sprintf(`(() => { document.getElementById('username').value = %q; document.getElementById('password').value = %q;
		document.getElementById('loginbtn').click(); return 'ok'; })()`, srv.AdminUser, srv.AdminPass)
	if _, err := b.eval(login); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, "the device list", `!document.getElementById('devicesview').hidden`, 30*time.Second)
	who, _ := b.eval(`document.getElementById('whoami').textContent`)
	if who != srv.AdminUser {
		t.Fatalf("signed in as %q", who)
	}
	// A device comes online while the page is open: the live event shows it.
	sim := srv.ConnectSim(servertest.NewIdentity(t), "ffsim")
	b.waitFor(t, "the device online in the list", fmt.Sprintf(`document.querySelector('.device[data-node=%q] .state.online')`, sim.NodeID), 60*time.Second)
	name, _ := b.eval(fmt.Sprintf(`document.querySelector('.device[data-node=%q] .name').textContent`, sim.NodeID))
	if name != "ffsim" {
		t.Fatalf("device name in the list %q", name)
	}
}
