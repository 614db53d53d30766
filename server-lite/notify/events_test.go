package notify_test

import (
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/notify"
	"github.com/meshgo/meshagent/server-lite/notify/notifytest"
	"github.com/meshgo/meshagent/server-lite/store"
)

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// verified registers handle for user through the 6-digit code the
// receiver got, as a user would.
func verified(t *testing.T, n *notify.Notifier, r *notifytest.Receiver, user, handle string) {
	t.Helper()
	before := len(r.Msgs())
	cookie, err := n.StartVerify("session-1", user, handle)
	if err != nil {
		t.Fatal(err)
	}
	m := r.Wait(t, before+1, 30*time.Second)[before]
	code := codeRE.FindString(m.Text)
	if code == "" {
		t.Fatalf("no code in %q", m.Text)
	}
	if _, err := n.ConfirmVerify("another-session", user, cookie, code, nil); err == nil {
		t.Fatal("another session confirmed the code")
	}
	wrong := fmt.Sprintf("%06d", (atoi(code)+1)%1000000)
	if _, err := n.ConfirmVerify("session-1", user, cookie, wrong, nil); err == nil {
		t.Fatal("a wrong code was accepted")
	}
	h, err := n.ConfirmVerify("session-1", user, cookie, code, nil)
	if err != nil || h != handle || n.Handle(user) != handle {
		t.Fatalf("confirm: %q %v", h, err)
	}
	if _, err := n.ConfirmVerify("session-1", user, cookie, code, nil); err == nil {
		t.Fatal("a code was accepted twice")
	}
}

func atoi(s string) (n int) { fmt.Sscan(s, &n); return }

// Batching: a disconnect alone is one message after the window; a
// disconnect and a reconnect within it cancel; a muted device says
// nothing; many devices fit in MaxText characters; a device offline
// longer than its limit is reported once; rights gone, notices gone.
func TestBatching(t *testing.T) {
	e := newEnv(t)
	nt := notifytest.Ntfy(t)
	g, _ := e.st.CreateGroup("Lab")
	var online atomic.Bool
	n, err := notify.New(notify.Config{Settings: notify.Settings{Ntfy: notify.NtfyConfig{URL: nt.URL}, BatchWindow: notify.Duration(time.Second)},
		Store: e.st, Accounts: e.acc, OfflineUnit: 200 * time.Millisecond, Online: func(string) bool { return online.Load() }})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	defer n.Close()
	u, err := e.acc.Create("alice", "pw-alice-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	e.acc.SetLink(u.ID, g.ID, 0xFFFFFFFF, false)
	var devs []string
	for i := range 60 {
		id := fmt.Sprintf("node//dev%02d", i)
		e.st.PutDevice(store.Device{ID: id, GroupID: g.ID, Name: fmt.Sprintf("machine-with-a-long-name-%02d", i)})
		devs = append(devs, id)
	}
	verified(t, n, nt, u.ID, "ntfy:alice-alerts")
	if err := n.SetSub(u.ID, g.ID, notify.NotifyConnect|notify.NotifyDisconnect, 0); err != nil {
		t.Fatal(err)
	}
	base := len(nt.Msgs())
	next := func() notifytest.Msg { return nt.Wait(t, base+1, 30*time.Second)[base] }
	quiet := func(what string) {
		time.Sleep(2500 * time.Millisecond) // more than the window
		if m := nt.Msgs(); len(m) != base {
			t.Fatalf("%s: got %+v", what, m[base:])
		}
	}

	n.Post(notify.DeviceEvent{Kind: notify.Disconnect, NodeID: devs[0]})
	m := next()
	base++
	if m.To != "alice-alerts" || !strings.Contains(m.Text, `"machine-with-a-long-name-00" in "Lab" disconnected`) || strings.Count(m.Text, "\n") != 1 {
		t.Fatalf("one disconnect: %q", m.Text)
	}

	n.Post(notify.DeviceEvent{Kind: notify.Disconnect, NodeID: devs[1]})
	n.Post(notify.DeviceEvent{Kind: notify.Connect, NodeID: devs[1]})
	quiet("disconnect then reconnect")

	n.Mute(u.ID, devs[2], true)
	n.Post(notify.DeviceEvent{Kind: notify.Disconnect, NodeID: devs[2]})
	quiet("muted device")

	for _, d := range devs {
		n.Post(notify.DeviceEvent{Kind: notify.Connect, NodeID: d})
	}
	m = next()
	base++
	if l := len([]rune(m.Text)); l > notify.MaxText || !strings.Contains(m.Text, "more") || !strings.Contains(m.Text, "-00\" in \"Lab\" connected") {
		t.Fatalf("%d characters: %q", l, m.Text)
	}
	if strings.Contains(m.Text, "-02\"") {
		t.Fatal("muted device reported")
	}

	// Offline longer than 2 "minutes" (200 ms each here), device level
	// subscription overriding the group's.
	n.SetSub(u.ID, devs[3], notify.NotifyAgentError, 2)
	n.Post(notify.DeviceEvent{Kind: notify.Disconnect, NodeID: devs[3]})
	m = next()
	base++
	if !strings.Contains(m.Text, "-03\" in \"Lab\" offline for more than 2 minutes") || strings.Contains(m.Text, "disconnected") {
		t.Fatalf("offline: %q", m.Text)
	}
	// Back within the limit: nothing.
	n.Post(notify.DeviceEvent{Kind: notify.Disconnect, NodeID: devs[3]})
	n.Post(notify.DeviceEvent{Kind: notify.Connect, NodeID: devs[3]})
	online.Store(true)
	quiet("back online within the limit")
	online.Store(false)

	n.Post(notify.DeviceEvent{Kind: notify.AgentError, NodeID: devs[3], Detail: "core: uncaught\nexception"})
	n.Post(notify.DeviceEvent{Kind: notify.CoreCrash, NodeID: devs[3]})
	m = next()
	base++
	if !strings.Contains(m.Text, "agent error: core: uncaught exception") || strings.Contains(m.Text, "core crashed") {
		t.Fatalf("agent error (crash not subscribed): %q", m.Text)
	}

	// Rights taken away: no more notices.
	e.acc.SetLink(u.ID, g.ID, 0, true)
	n.Post(notify.DeviceEvent{Kind: notify.Disconnect, NodeID: devs[4]})
	quiet("no rights")
}

// A user deleted and created again under the same name does not inherit
// the old account's handle or subscriptions.
func TestRecreatedUserStartsClean(t *testing.T) {
	e := newEnv(t)
	nt := notifytest.Ntfy(t)
	n := e.start(t, notify.Settings{Ntfy: notify.NtfyConfig{URL: nt.URL}})
	u, _ := e.acc.Create("carol", "pw-carol-1", 0)
	verified(t, n, nt, u.ID, "ntfy:carol-old")
	n.SetSub(u.ID, "mesh//x", notify.NotifyConnect, 0)
	e.acc.Delete(u.ID)
	time.Sleep(1100 * time.Millisecond) // creation times are in seconds
	u2, _ := e.acc.Create("carol", "pw-carol-2", 0)
	if u2.ID != u.ID {
		t.Fatalf("ids %s %s", u.ID, u2.ID)
	}
	if h := n.Handle(u2.ID); h != "" {
		t.Fatalf("new carol inherited handle %q", h)
	}
	if p := n.UserPrefs(u2.ID); len(p.Subs) != 0 || p.Handle != "" {
		t.Fatalf("new carol inherited %+v", p)
	}
	if err := n.SendUser(u2.ID, "admin", "hi", ""); err == nil {
		t.Fatal("message queued to the old carol's handle")
	}
}

// A login code with leading zeros is accepted in the spelling meshctrl
// sends (minimist parses --token as a number: 012345 arrives as 12345),
// and only once; a wrong number is still wrong.
func TestLoginCodeWithoutLeadingZeros(t *testing.T) {
	e := newEnv(t)
	nt := notifytest.Ntfy(t)
	n, err := notify.New(notify.Config{Settings: notify.Settings{Ntfy: notify.NtfyConfig{URL: nt.URL}}, Store: e.st, Accounts: e.acc})
	if err != nil {
		t.Fatal(err)
	}
	n.Start()
	defer n.Close()
	u, err := e.acc.Create("carol", "pw-carol-1", 0)
	if err != nil {
		t.Fatal(err)
	}
	verified(t, n, nt, u.ID, "ntfy:carol-codes")
	// Codes are random: ask until one starts with a zero (one in ten).
	for i := 0; ; i++ {
		if i == 300 {
			t.Fatal("no login code with a leading zero in 300")
		}
		before := len(nt.Msgs())
		if err := n.SendLoginCode(u.ID); err != nil {
			t.Fatal(err)
		}
		code := codeRE.FindString(nt.Wait(t, before+1, 30*time.Second)[before].Text)
		if code == "" || code[0] != '0' {
			continue
		}
		stripped := strings.TrimLeft(code, "0")
		if wrong := fmt.Sprint((atoi(code) + 1) % 1000000); n.CheckLoginCode(u.ID, wrong) {
			t.Fatalf("wrong code %s accepted for %s", wrong, code)
		}
		if !n.CheckLoginCode(u.ID, stripped) {
			t.Fatalf("code %s refused as meshctrl sends it (%q)", code, stripped)
		}
		if n.CheckLoginCode(u.ID, code) {
			t.Fatalf("code %s accepted twice", code)
		}
		return
	}
}
