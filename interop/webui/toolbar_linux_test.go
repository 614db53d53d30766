//go:build linux

package webui

import (
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"
	"github.com/meshgo/meshagent/internal/logindtest"
	"github.com/meshgo/meshagent/internal/mctest"
)

type toolbarResult struct {
	CADSent       bool   `json:"cadSent"`
	UnlockedShown bool   `json:"unlockedShown"`
	LockedShown   bool   `json:"lockedShown"`
	UnlockedAgain bool   `json:"unlockedAgain"`
	Disconnected  bool   `json:"disconnected"`
	Screenshot    string `json:"screenshot"`
}

// TestDesktopToolbar: MeshCentral's desktop toolbar in headless Chromium
// with our agent on Xvfb. Ctrl+Alt+Del from the keys menu reaches the X
// server as the chord; the remote input lock button follows the agent's
// answers (unlocked, locked, unlocked); "Disconnect and lock" locks the
// sessions through logind (a stand-in on a private bus) and is logged
// with msgid 53. The toolbar's Lock button itself is shown only for
// Windows agents (agent.id < 5), so it is not clicked here.
func TestDesktopToolbar(t *testing.T) {
	RequireBrowserTools(t, "web UI", "Xvfb", "xauth", "node", "npm")
	ld := logindtest.Start(t)
	x := startXvfb(t, knownScene.w, knownScene.h)
	x.paint(t, knownScene)
	c, err := x.Dial()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// A window with the keyboard focus, to see what the agent types.
	scr := xproto.Setup(c).DefaultScreen(c)
	win, _ := xproto.NewWindowId(c)
	xproto.CreateWindowChecked(c, 0, win, scr.Root, 0, 0, 10, 10, 0, xproto.WindowClassInputOnly, 0,
		xproto.CwEventMask, []uint32{xproto.EventMaskKeyPress}).Check()
	xproto.MapWindowChecked(c, win).Check()
	xproto.SetInputFocusChecked(c, xproto.InputFocusPointerRoot, win, 0).Check()
	keys := make(chan xproto.Keycode, 64)
	go func() {
		for {
			ev, err := c.WaitForEvent()
			if ev == nil && err == nil {
				return
			}
			if k, ok := ev.(xproto.KeyPressEvent); ok {
				keys <- k.Detail
			}
		}
	}()
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-toolbar")
	_, node := startOurAgent(t, srv, srv.MSH(t, mesh), append(x.Env(), "DBUS_SYSTEM_BUS_ADDRESS="+ld.Address)...)
	before := countLogs(t, srv, node, 53)
	r := runUI(t, srv, node, uiConfig{Toolbar: &struct{}{}})
	tb := r.Toolbar
	if tb == nil {
		t.Fatal("the browser did not get to the toolbar")
	}
	t.Logf("toolbar: %+v", *tb)
	if !tb.UnlockedShown || !tb.LockedShown || !tb.UnlockedAgain {
		t.Errorf("the input lock button did not follow the agent: unlocked %v, locked %v, unlocked again %v", tb.UnlockedShown, tb.LockedShown, tb.UnlockedAgain)
	}
	if !tb.Disconnected {
		t.Error("Disconnect and lock did not disconnect")
	}
	// The chord, in order, among whatever else the viewer typed.
	setup := xproto.Setup(c)
	mapping, err := xproto.GetKeyboardMapping(c, setup.MinKeycode, byte(setup.MaxKeycode-setup.MinKeycode+1)).Reply()
	if err != nil {
		t.Fatal(err)
	}
	sym := func(k xproto.Keycode) uint32 {
		i := int(k-setup.MinKeycode) * int(mapping.KeysymsPerKeycode)
		if i < 0 || i >= len(mapping.Keysyms) {
			return 0
		}
		return uint32(mapping.Keysyms[i])
	}
	want := []uint32{0xffe3, 0xffe9, 0xffff} // Control_L, Alt_L, Delete
	got := 0
	for deadline := time.After(10 * time.Second); got < len(want); {
		select {
		case k := <-keys:
			if sym(k) == want[got] {
				got++
			}
		case <-deadline:
			t.Fatalf("Ctrl+Alt+Del: saw %d of its 3 key presses", got)
		}
	}
	if calls := ld.WaitCalls(1, 15*time.Second); len(calls) != 1 || calls[0] != "LockSessions()" {
		t.Errorf("logind saw %q after Disconnect and lock", calls)
	}
	waitLog(t, srv, node, 53, before)
}
