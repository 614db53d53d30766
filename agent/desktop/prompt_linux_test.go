package desktop

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/internal/xvfbtest"
)

// The consent prompt on a real X server, answered the way a person does:
// a click on its button, sent through XTEST.
func TestX11ConsentPrompt(t *testing.T) {
	x := startXvfb(t, 1024, 768)
	ui := &X11UI{Options: Options{Display: x.Name, XAuthority: x.AuthFile, ProcRoot: t.TempDir()}}
	c, err := x.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	prompt := consent.ParseOptions(nil).PromptFor(consent.Desktop, consent.Who{RealName: "Ann Admin", Username: "admin"})
	for _, tc := range []struct {
		name    string
		click   string // button to click; "" waits for the timeout
		timeout time.Duration
		cancel  bool
		want    consent.Answer
	}{
		{name: "allow", click: "Allow", timeout: time.Minute, want: consent.Accepted},
		{name: "deny", click: "Deny", timeout: time.Minute, want: consent.Denied},
		{name: "timeout", timeout: 2 * time.Second, want: consent.TimedOut},
		{name: "viewer left", timeout: time.Minute, cancel: true, want: consent.Denied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := prompt
			p.Timeout = tc.timeout
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			type result struct {
				a   consent.Answer
				err error
			}
			done := make(chan result, 1)
			start := time.Now()
			go func() { a, err := ui.Ask(ctx, p); done <- result{a, err} }()
			win, err := xvfbtest.WaitWindow(c, "MeshCentral", 20*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			text, _ := xvfbtest.TextProperty(c, win.ID, "_MESHAGENT_TEXT")
			if !strings.Contains(text, "Ann Admin requesting remote desktop access. Grant access?") {
				t.Errorf("prompt text %q", text)
			}
			if tc.click != "" {
				b, err := xvfbtest.WaitWindow(c, tc.click, 5*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				if b.X < win.X || b.Y < win.Y || b.X+b.W > win.X+win.W || b.Y+b.H > win.Y+win.H {
					t.Errorf("button %+v outside the prompt %+v", b, win)
				}
				if err := xvfbtest.Click(c, b.X+b.W/2, b.Y+b.H/2); err != nil {
					t.Fatal(err)
				}
			}
			if tc.cancel {
				cancel()
			}
			var r result
			select {
			case r = <-done:
			case <-time.After(tc.timeout + 20*time.Second):
				t.Fatal("Ask did not return")
			}
			if r.err != nil || r.a != tc.want {
				t.Fatalf("Ask = %v, %v; want %v", r.a, r.err, tc.want)
			}
			if tc.want == consent.TimedOut && time.Since(start) < tc.timeout {
				t.Errorf("timed out after %v, before the %v timeout", time.Since(start), tc.timeout)
			}
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
				if _, ok := xvfbtest.FindWindow(c, "MeshCentral"); !ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the prompt stayed on screen after its answer")
				}
			}
		})
	}
}

func TestX11NotificationAndBar(t *testing.T) {
	x := startXvfb(t, 1024, 768)
	ui := &X11UI{Options: Options{Display: x.Name, XAuthority: x.AuthFile, ProcRoot: t.TempDir()}, NotifyFor: time.Minute}
	c, err := x.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if err := ui.Notify(context.Background(), "MeshCentral", "Ann started a remote desktop session."); err != nil {
		t.Fatal(err)
	}
	n, err := xvfbtest.WaitWindow(c, "MeshCentral", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if text, _ := xvfbtest.TextProperty(c, n.ID, "_MESHAGENT_TEXT"); !strings.Contains(text, "Ann started a remote desktop session.") {
		t.Errorf("notification text %q", text)
	}
	if n.X+n.W < 1024-40 || n.Y > 40 {
		t.Errorf("notification at %+v, want the top right corner", n)
	}
	xvfbtest.Click(c, n.X+n.W/2, n.Y+n.H/2)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := xvfbtest.FindWindow(c, "MeshCentral"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a clicked notification stayed")
		}
	}

	var disconnected atomic.Int32
	bar, err := ui.ShowBar("Sharing desktop with: Ann", func() { disconnected.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	b, err := xvfbtest.WaitWindow(c, "Sharing desktop with: Ann", 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b.Y > 4 {
		t.Errorf("bar at %+v, want the top edge", b)
	}
	if err := bar.SetText("Sharing desktop with: Ann, Bob"); err != nil {
		t.Fatal(err)
	}
	b2, err := xvfbtest.WaitWindow(c, "Sharing desktop with: Ann, Bob", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if b2.W <= b.W {
		t.Errorf("bar did not grow with its text: %d -> %d", b.W, b2.W)
	}
	btn, err := xvfbtest.WaitWindow(c, "Disconnect", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if btn.X+btn.W > b2.X+b2.W {
		t.Errorf("Disconnect button %+v outside the bar %+v", btn, b2)
	}
	xvfbtest.Click(c, btn.X+btn.W/2, btn.Y+btn.H/2)
	for deadline := time.Now().Add(10 * time.Second); disconnected.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Disconnect did not call back")
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, ok := xvfbtest.FindWindow(c, "Disconnect"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the bar stayed after Disconnect")
		}
	}
	bar.Close()
}

func TestWrapText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a b c", 3, "a b|c"},
		{"hello world", 20, "hello world"},
		{"abcdefgh ij", 4, "abcd|efgh|ij"},
		{"x\ny", 10, "x|y"},
	} {
		if got := strings.Join(wrapText(tc.in, tc.n), "|"); got != tc.want {
			t.Errorf("wrapText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
