package desktop

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/waylandtest"
)

// TestWaylandClipboard: through wlroots data-control, text we write is
// what wl-paste (wl-clipboard, a real client) reads, text wl-copy sets is
// what we read.
func TestWaylandClipboard(t *testing.T) {
	sw := waylandtest.StartSway(t, 320, 240)
	for _, b := range []string{"wl-copy", "wl-paste"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skip("wl-clipboard not installed")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	opts := Options{WaylandDisplay: sw.Socket}
	env := []string{"WAYLAND_DISPLAY=" + sw.Socket, "XDG_RUNTIME_DIR=" + sw.Runtime, "PATH=/usr/bin:/bin"}

	const ours = "from meshagent: grüße ✓"
	if err := WriteClipboard(ctx, opts, ours); err != nil {
		t.Fatal(err)
	}
	paste := exec.CommandContext(ctx, "wl-paste", "--no-newline")
	paste.Env = env
	out, err := paste.CombinedOutput()
	if err != nil || string(out) != ours {
		t.Fatalf("wl-paste read %q (%v), want %q", out, err, ours)
	}
	if got, err := ReadClipboard(ctx, opts); err != nil || got != ours {
		t.Fatalf("read back %q, %v; want %q", got, err, ours)
	}

	copyCmd := exec.Command("wl-copy", "--foreground", "from wl-copy")
	copyCmd.Env = env
	if err := copyCmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { copyCmd.Process.Kill(); copyCmd.Wait() }()
	var got string
	if !waitFor(10*time.Second, func() bool { got, _ = ReadClipboard(ctx, opts); return got == "from wl-copy" }) {
		t.Fatalf("read %q after wl-copy, want %q", got, "from wl-copy")
	}
}
