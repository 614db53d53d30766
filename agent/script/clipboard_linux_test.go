package script

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/desktop"
	"github.com/meshgo/meshagent/internal/xvfbtest"
)

// onlyXServer builds a process table holding just the given X server, so
// discovery finds our Xvfb and not another test's.
func onlyXServer(t *testing.T, pid int) string {
	t.Helper()
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dir := filepath.Join(root, strconv.Itoa(pid))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cmdline"), cmdline, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// getclip/setclip through the script host use the native X11 clipboard
// and find the display as a service would: no DISPLAY or XAUTHORITY in
// the agent's environment, only the X server's -auth argument.
func TestClipboardNativeWithoutDisplay(t *testing.T) {
	x := xvfbtest.Start(t, xvfbtest.Options{Width: 320, Height: 240, NoReset: true})
	t.Setenv("DISPLAY", "")
	t.Setenv("XAUTHORITY", "")
	os.Unsetenv("DISPLAY")
	os.Unsetenv("XAUTHORITY")
	cb := desktop.Clipboard{Options: desktop.Options{ProcRoot: onlyXServer(t, x.PID)}}
	h, c := startCore(t, Config{Clipboard: cb})

	want := "héllo from the agent €"
	deliver(h, map[string]any{"action": "msg", "type": "setclip", "data": want, "rights": admin, "sessionid": "set1"})
	if m := c.wait(t, 10*time.Second, isMsg("setclip", "set1")); m["success"] != true {
		t.Fatalf("setclip reply %v", m)
	}
	deliver(h, map[string]any{"action": "msg", "type": "getclip", "tag": 1, "rights": admin, "sessionid": "get1"})
	if m := c.wait(t, 10*time.Second, isMsg("getclip", "get1")); m["data"] != want || m["tag"] != float64(1) {
		t.Fatalf("getclip reply %v, want data %q", m, want)
	}

	xclip, err := exec.LookPath("xclip")
	if err != nil {
		t.Log("xclip not installed: no cross-check with another X client")
		return
	}
	env := append(os.Environ(), x.Env()...)
	out, err := (&exec.Cmd{Path: xclip, Args: []string{"xclip", "-selection", "clipboard", "-o"}, Env: env}).Output()
	if err != nil || string(out) != want {
		t.Fatalf("xclip reads %q (%v), want %q", out, err, want)
	}
	// xclip takes the selection and serves it from a background child until
	// another client takes it or the display goes away; that child keeps
	// any output pipe open, so its output goes to /dev/null.
	theirs := "set by xclip"
	in := &exec.Cmd{Path: xclip, Args: []string{"xclip", "-selection", "clipboard", "-i"}, Env: env, Stdin: strings.NewReader(theirs)}
	if err := in.Run(); err != nil {
		t.Fatalf("xclip -i: %v", err)
	}
	// xclip's background child takes the selection a moment after the
	// command returns.
	var got any
	for i := 0; i < 50; i++ {
		sid := "get2-" + strconv.Itoa(i)
		deliver(h, map[string]any{"action": "msg", "type": "getclip", "tag": 2, "rights": admin, "sessionid": sid})
		if got = c.wait(t, 10*time.Second, isMsg("getclip", sid))["data"]; got == theirs {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("getclip after xclip -i: %q, want %q", got, theirs)
}

// With no display to find, getclip answers with a clear error instead of
// staying silent.
func TestClipboardNoDisplayReplies(t *testing.T) {
	t.Setenv("DISPLAY", "")
	os.Unsetenv("DISPLAY")
	cb := desktop.Clipboard{Options: desktop.Options{ProcRoot: t.TempDir()}}
	h, c := startCore(t, Config{Clipboard: cb})
	deliver(h, map[string]any{"action": "msg", "type": "getclip", "tag": 1, "rights": admin, "sessionid": "g"})
	m := c.wait(t, 10*time.Second, isMsg("getclip", "g"))
	if e, _ := m["error"].(string); m["data"] != "" || !strings.Contains(e, "no display found") {
		t.Fatalf("getclip without a display: %v", m)
	}
	deliver(h, map[string]any{"action": "msg", "type": "setclip", "data": "x", "rights": admin, "sessionid": "s"})
	m = c.wait(t, 10*time.Second, isMsg("setclip", "s"))
	if e, _ := m["error"].(string); m["success"] != false || !strings.Contains(e, "no display found") {
		t.Fatalf("setclip without a display: %v", m)
	}
}
