//go:build linux

package interop

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/mutter"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/waylandtest"
)

// TestClipboardGNOMEThroughMeshCentral: the web UI's clipboard messages
// (setclip, getclip through MeshCentral's control.ashx, as
// default.handlebars sends them) reach a GNOME (mutter) session's
// clipboard through our agent, which runs as root and is told nothing:
// what setclip sets is what wl-paste (a Wayland client in that session)
// pastes, what wl-copy copies is what getclip answers.
func TestClipboardGNOMEThroughMeshCentral(t *testing.T) {
	for _, b := range []string{"wl-copy", "wl-paste", "setpriv"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skip(b + " not installed")
		}
	}
	m := waylandtest.StartMutter(t, 320, 240)
	// Headless mutter's seat has no keyboard and wl-clipboard refuses such
	// a seat: a remote desktop session's key gives it one for as long as
	// that session lasts.
	c, err := mutter.Dial(m.Bus, m.UID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rd, err := mutter.Start(c, nil, mutter.CursorHidden)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	rd.KeyboardKeysym(0xffe1, true) // Shift_L
	rd.KeyboardKeysym(0xffe1, false)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wl := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "setpriv", append([]string{"--reuid", waylandtest.UserName, "--regid", waylandtest.UserName, "--clear-groups"}, args...)...)
		cmd.Env = []string{"WAYLAND_DISPLAY=" + m.Socket, "XDG_RUNTIME_DIR=" + m.Runtime, "PATH=/usr/bin:/bin"}
		return cmd
	}

	srv := mctest.Shared(t)
	_, id := onlineAgent(t, srv, "clipboard-gnome")
	full := "node//" + id
	u := dialControl(t, srv)

	const ours = "from the web UI: grüße ✓"
	u.send(t, map[string]any{"action": "msg", "type": "setclip", "nodeid": full, "data": ours})
	r := u.await(t, "setclip reply", func(m map[string]any) bool { return m["action"] == "msg" && m["type"] == "setclip" })
	if r["success"] != true {
		t.Fatalf("setclip reply %v", r)
	}
	var out []byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = wl("wl-paste", "--no-newline").CombinedOutput()
		if err == nil && string(out) == ours {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("wl-paste read %q (%v), want %q", out, err, ours)
		}
		time.Sleep(200 * time.Millisecond)
	}

	const theirs = "copied in GNOME ✓"
	cp := wl("wl-copy", "--foreground", theirs)
	if err := cp.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cp.Process.Kill(); cp.Wait() }()
	var got any
	for i := 0; i < 100; i++ {
		u.send(t, map[string]any{"action": "msg", "type": "getclip", "nodeid": full, "tag": i})
		r := u.await(t, "getclip reply", func(m map[string]any) bool {
			return m["action"] == "msg" && m["type"] == "getclip" && m["tag"] == float64(i)
		})
		if got = r["data"]; got == theirs {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("getclip after wl-copy: %q, want %q", got, theirs)
}
