//go:build linux

package webui

import (
	"fmt"
	"image"
	"testing"
	"time"

	"github.com/jezek/xgb"

	"github.com/meshgo/meshagent/agent/sessionworker"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/winetest"
	"github.com/meshgo/meshagent/internal/xvfbtest"
)

// wineClick clicks the middle of r, a control's rectangle in the client
// area of a frameless top-level wine window w (wine draws controls itself,
// so only the top-level window is an X window; WS_BORDER puts the client
// area one pixel inside it).
func wineClick(c *xgb.Conn, w xvfbtest.Window, r image.Rectangle) error {
	return xvfbtest.Click(c, w.X+1+(r.Min.X+r.Max.X)/2, w.Y+1+(r.Min.Y+r.Max.Y)/2)
}

// TestConsentPromptWindows: TestConsentPrompt's user consent on our
// Windows agent under wine, through its session worker (the .msh's
// SessionWorker=1: the service's route, the worker running as wine's
// user). A device group asks for desktop consent and the privacy bar
// (meshctrl editdevicegroup --consent), MeshCentral's device page in
// headless Chromium connects, the prompt comes up as a wine window on the
// Xvfb display wine draws on, and the person at the screen clicks its
// Allow or Deny with XTEST: Allow gives the viewer its desktop with the
// bar naming the viewer, whose Disconnect ends the session; Deny shows
// "Denied". MeshCentral's event log gets the msgids.
func TestConsentPromptWindows(t *testing.T) {
	RequireBrowserTools(t, "web UI", "node", "npm")
	p := winetest.TestPrefix(t)
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-consent-windows")
	// 8 desktop prompt, 64 privacy bar; no notification, whose message box
	// would share the prompt's title.
	if out, err := srv.Meshctrl(t, "editdevicegroup", "--id", mesh, "--consent", "72"); err != nil {
		t.Fatalf("editdevicegroup --consent: %v\n%s", err, out)
	}
	agent, node := startWindowsAgent(t, p, srv, mesh, "\r\nSessionWorker=1\r\n")
	defer func() {
		if t.Failed() {
			t.Logf("windows agent log:\n%s", agent.String())
		}
	}()
	c, err := xgb.NewConnDisplay(p.Display)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	admin := srv.AdminUser()
	allow, deny := sessionworker.PromptButtons()

	for _, tc := range []struct {
		name   string
		cfg    consentCfg
		button image.Rectangle
		logID  int
		viewer string
	}{
		{"desktop allowed", consentCfg{Kind: "desktop", Expect: "accept", WaitMs: 90000, HoldMs: 60000}, allow, 30, "connected"},
		{"desktop denied", consentCfg{Kind: "desktop", Expect: "deny", WaitMs: 90000}, deny, 34, "denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := countLogs(t, srv, node, tc.logID)
			barsBefore := countLogs(t, srv, node, 31)
			person := make(chan error, 1)
			go func() {
				w, err := xvfbtest.WaitWindow(c, "MeshCentral", 120*time.Second)
				if err != nil {
					person <- err
					return
				}
				if w.W != sessionworker.PromptWidth || w.H != sessionworker.PromptHeight {
					person <- fmt.Errorf("the prompt is %dx%d, want %dx%d", w.W, w.H, sessionworker.PromptWidth, sessionworker.PromptHeight)
					return
				}
				time.Sleep(1500 * time.Millisecond) // a person reads before clicking
				if err := wineClick(c, w, tc.button); err != nil || tc.cfg.HoldMs == 0 {
					person <- err
					return
				}
				bar, err := xvfbtest.WaitWindow(c, "Sharing desktop with: "+admin, 60*time.Second)
				if err != nil {
					person <- err
					return
				}
				if bar.Y != 0 || bar.W != sessionworker.BarWidth {
					person <- fmt.Errorf("the privacy bar is at %+v, want the top of the screen, %d wide", bar, sessionworker.BarWidth)
					return
				}
				time.Sleep(2 * time.Second) // let the viewer see its picture first
				person <- wineClick(c, bar, sessionworker.BarButton())
			}()
			r := runUI(t, srv, node, uiConfig{Consent: &tc.cfg})
			if err := <-person; err != nil {
				t.Fatalf("at the screen: %v", err)
			}
			checkConsentOutcome(t, r.Consent, tc.viewer, true)
			waitLog(t, srv, node, tc.logID, before)
			if tc.cfg.HoldMs > 0 {
				waitLog(t, srv, node, 31, barsBefore) // privacy bar shown
				waitLog(t, srv, node, 29, 0)          // closed by the local user
			}
			// The prompt is gone once answered.
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
				w, ok := xvfbtest.FindWindow(c, "MeshCentral")
				if !ok {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("the prompt is still on the screen: %+v", w)
					break
				}
			}
		})
	}
}
