package desktop

import (
	"context"
	"log/slog"
	"os/exec"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/waylandtest"
)

// TestGNOMEClipboard: through Mutter's RemoteDesktop clipboard, as root
// with no hint, text we write is what wl-paste (wl-clipboard, a real
// Wayland client in the mutter session) reads, and text wl-copy sets is
// what we read.
func TestGNOMEClipboard(t *testing.T) {
	m := waylandtest.StartMutter(t, 320, 240)
	for _, b := range []string{"wl-copy", "wl-paste"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skip("wl-clipboard not installed")
		}
	}
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("DISPLAY", "")
	// Headless mutter's seat has no keyboard, and wl-clipboard refuses a
	// seat without one: a remote desktop session's first key gives it one.
	opts := Options{ProcRoot: onlyProc(t, m.Pid)} // this test's mutter only
	scr, _, err := openGNOME(opts, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer scr.close()
	scr.key(0x10, true, false)
	scr.key(0x10, false, false)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run := func(args ...string) *exec.Cmd {
		cmd := exec.CommandContext(ctx, "setpriv", append([]string{"--reuid", waylandtest.UserName, "--regid", waylandtest.UserName, "--clear-groups"}, args...)...)
		cmd.Env = []string{"WAYLAND_DISPLAY=" + m.Socket, "XDG_RUNTIME_DIR=" + m.Runtime, "PATH=/usr/bin:/bin"}
		return cmd
	}
	var out []byte
	if !waitFor(20*time.Second, func() bool {
		out, err = run("wl-paste", "--list-types").CombinedOutput()
		return err == nil || string(out) != "This seat has no keyboard\n"
	}) {
		t.Fatalf("the seat never got a keyboard: %s", out)
	}

	const ours = "from meshagent: grüße ✓"
	if err := WriteClipboard(ctx, opts, ours); err != nil {
		t.Fatal(err)
	}
	if !waitFor(20*time.Second, func() bool {
		out, err = run("wl-paste", "--no-newline").CombinedOutput()
		return err == nil && string(out) == ours
	}) {
		t.Fatalf("wl-paste read %q (%v), want %q", out, err, ours)
	}
	// Another session of ours reads it from the owning one.
	if got, err := ReadClipboard(ctx, opts); err != nil || got != ours {
		t.Fatalf("read back %q, %v; want %q", got, err, ours)
	}

	copyCmd := run("wl-copy", "--foreground", "from wl-copy ✓")
	if err := copyCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { copyCmd.Process.Kill(); copyCmd.Wait() }()
	var got string
	if !waitFor(20*time.Second, func() bool { got, err = ReadClipboard(ctx, opts); return got == "from wl-copy ✓" }) {
		t.Fatalf("read %q (%v) after wl-copy, want %q", got, err, "from wl-copy ✓")
	}
}
