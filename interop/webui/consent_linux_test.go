//go:build linux

package webui

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/xvfbtest"
)

type consentCfg struct {
	Kind   string `json:"kind"`   // desktop, terminal
	Expect string `json:"expect"` // accept, deny
	WaitMs int    `json:"waitMs"`
	HoldMs int    `json:"holdMs,omitempty"`
}

type consentResult struct {
	Messages     []string `json:"messages"`
	Status       string   `json:"status"`
	StatusAfter  string   `json:"statusAfter"`
	Accepted     bool     `json:"accepted"`
	Denied       bool     `json:"denied"`
	EndedByAgent bool     `json:"endedByAgent"`
	Screenshot   string   `json:"screenshot"`
}

// TestConsentPrompt: a device group whose User Consent settings ask the
// local user (desktop and terminal prompt, desktop notification, privacy
// bar; set with meshctrl editdevicegroup --consent as an admin would),
// MeshCentral's own device page in headless Chromium connecting, and the
// person at the screen answering our agent's prompt on the Xvfb display
// with a click (XTEST): Allow gives the session, Deny and silence (the
// 30 s default timeout) refuse it with the viewer showing "Denied". The
// outcomes reach MeshCentral's event log with its msgids.
func TestConsentPrompt(t *testing.T) {
	RequireBrowserTools(t, "web UI", "Xvfb", "xauth", "node", "npm")
	x := startXvfb(t, knownScene.w, knownScene.h)
	x.paint(t, knownScene)
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-consent")
	// 1 desktop notify, 8 desktop prompt, 16 terminal prompt, 64 privacy bar.
	if out, err := srv.Meshctrl(t, "editdevicegroup", "--id", mesh, "--consent", "89"); err != nil {
		t.Fatalf("editdevicegroup --consent: %v\n%s", err, out)
	}
	agent, node := startOurAgent(t, srv, srv.MSH(t, mesh), x.Env()...)
	c, err := x.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	admin := srv.AdminUser()

	for _, tc := range []struct {
		name   string
		cfg    consentCfg
		click  string // the prompt's button the person clicks; "" for none
		logID  int
		viewer string // the outcome in the viewer
	}{
		{"desktop allowed", consentCfg{Kind: "desktop", Expect: "accept", WaitMs: 60000, HoldMs: 40000}, "Allow", 30, "connected"},
		{"desktop denied", consentCfg{Kind: "desktop", Expect: "deny", WaitMs: 60000}, "Deny", 34, "denied"},
		{"terminal allowed", consentCfg{Kind: "terminal", Expect: "accept", WaitMs: 60000}, "Allow", 27, "connected"},
		{"terminal timed out", consentCfg{Kind: "terminal", Expect: "deny", WaitMs: 60000}, "", 28, "denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countLogs(t, srv, node, tc.logID)
			person := make(chan error, 1)
			go func() {
				// The prompt, not an earlier session's notification (same title).
				want := fmt.Sprintf("%s requesting remote %s access. Grant access?", admin, tc.cfg.Kind)
				if _, err := xvfbtest.WaitWindowText(c, "MeshCentral", "_MESHAGENT_TEXT", want, 90*time.Second); err != nil {
					person <- err
					return
				}
				if tc.click == "" {
					person <- nil
					return
				}
				time.Sleep(1500 * time.Millisecond) // a person reads before clicking
				b, err := xvfbtest.WaitWindow(c, tc.click, 5*time.Second)
				if err == nil {
					err = xvfbtest.Click(c, b.X+b.W/2, b.Y+b.H/2)
				}
				if err != nil || tc.cfg.HoldMs == 0 {
					person <- err
					return
				}
				// Accepted with the privacy bar asked for: it names the
				// viewer, and its Disconnect ends the session.
				bar, err := xvfbtest.WaitWindow(c, "Sharing desktop with: "+admin, 60*time.Second)
				if err != nil {
					person <- err
					return
				}
				time.Sleep(2 * time.Second) // let the viewer see its picture first
				d, err := xvfbtest.WaitWindow(c, "Disconnect", 5*time.Second)
				if err == nil && d.X < bar.X {
					err = fmt.Errorf("Disconnect %+v outside the bar %+v", d, bar)
				}
				if err == nil {
					err = xvfbtest.Click(c, d.X+d.W/2, d.Y+d.H/2)
				}
				person <- err
			}()
			r := runUI(t, srv, node, uiConfig{Consent: &tc.cfg})
			if err := <-person; err != nil {
				t.Fatalf("at the screen: %v", err)
			}
			checkConsentOutcome(t, r.Consent, tc.viewer, tc.cfg.HoldMs > 0)
			waitLog(t, srv, node, tc.logID, before)
			if tc.cfg.HoldMs > 0 {
				waitLog(t, srv, node, 31, 0) // privacy bar shown
				waitLog(t, srv, node, 29, 0) // closed by the local user
			}
		})
	}
	if t.Failed() {
		t.Logf("agent consent lines: %q", agent.lines("consent"))
	}
}

// checkConsentOutcome checks what the viewer showed in a consent flow:
// MeshCentral's waiting message first, then the session ("connected",
// ended by the privacy bar's Disconnect when bar is set) or "denied".
func checkConsentOutcome(t *testing.T, cr *consentResult, viewer string, bar bool) {
	t.Helper()
	if cr == nil {
		t.Fatal("the browser did not get to the consent flow")
	}
	t.Logf("viewer messages %q, status %q then %q; screenshot %s", cr.Messages, cr.Status, cr.StatusAfter, cr.Screenshot)
	if len(cr.Messages) == 0 || !strings.Contains(cr.Messages[0], "Waiting for user to grant access...") {
		t.Errorf("the viewer did not show MeshCentral's waiting message: %q", cr.Messages)
	}
	switch viewer {
	case "connected":
		if !cr.Accepted {
			t.Errorf("the viewer never got the session after Allow (status %q)", cr.Status)
		}
		if bar && !cr.EndedByAgent {
			t.Error("the privacy bar's Disconnect did not end the desktop session")
		}
	case "denied":
		if !cr.Denied || strings.HasPrefix(cr.StatusAfter, "Connected") {
			t.Errorf("the viewer did not show Denied and disconnect: %q, %q", cr.Messages, cr.StatusAfter)
		}
	}
}

// countLogs counts the device's event-log entries with msgid.
func countLogs(t *testing.T, srv *mctest.Server, node string, msgid int) int {
	t.Helper()
	n := 0
	for _, e := range srv.Events(t) {
		id, _ := e["msgid"].(float64)
		if int(id) == msgid && strings.HasSuffix(fmt.Sprint(e["nodeid"]), node) {
			n++
		}
	}
	return n
}

// waitLog waits until the device has more than before entries with msgid.
func waitLog(t *testing.T, srv *mctest.Server, node string, msgid, before int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); countLogs(t, srv, node, msgid) <= before; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Errorf("MeshCentral's event log has no new entry with msgid %d", msgid)
			return
		}
	}
}
