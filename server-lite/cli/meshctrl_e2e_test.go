//go:build linux

package cli

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// MeshCentral's own meshctrl drives our agent through server-lite: shell
// (in a pseudo-terminal, as a user runs it), upload and download.
func TestMeshctrlSessionsOurAgent(t *testing.T) {
	e := newLiveEnv(t, liveOptions{})
	meshctrl := filepath.Join(mctest.Install(t), "meshctrl.js")
	id := strings.TrimPrefix(e.nodeID, "node//") // meshctrl adds node// itself for relay commands
	run := func(tty bool, stdin string, args ...string) string {
		t.Helper()
		args = append(append([]string{meshctrl}, args...), "--url", e.url, "--loginuser", "admin", "--loginpass", e.pass)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var cmd *exec.Cmd
		if tty {
			q := make([]string, 0, len(args)+1)
			for _, w := range append([]string{"node"}, args...) {
				q = append(q, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
			}
			cmd = exec.CommandContext(ctx, "script", "-qfec", strings.Join(q, " "), "/dev/null")
		} else {
			cmd = exec.CommandContext(ctx, "node", args...)
		}
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.Run()
		return out.String()
	}

	out := run(true, "echo via-meshctrl-$((20+3))\nexit\n", "shell", "--id", id)
	if !strings.Contains(out, "via-meshctrl-23") {
		t.Fatalf("meshctrl shell:\n%s", out)
	}
	src, sum := randomFile(t, t.TempDir(), 8<<20)
	remote := filepath.Join(e.dir, "meshctrl-up")
	os.MkdirAll(remote, 0o755)
	if out := run(false, "", "upload", "--id", id, "--file", src, "--target", remote); !strings.Contains(out, "Upload done") {
		t.Fatalf("meshctrl upload:\n%s", out)
	}
	// meshctrl exits without uploaddone; the agent commits once all bytes
	// arrived and the relay closed.
	up := filepath.Join(remote, filepath.Base(src))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(up); err == nil && st.Size() == 8<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("uploaded file not in place")
		}
		time.Sleep(50 * time.Millisecond)
	}
	back := filepath.Join(t.TempDir(), "back.bin")
	if out := run(false, "", "download", "--id", id, "--file", up, "--target", back); !strings.Contains(out, "Download completed") {
		t.Fatalf("meshctrl download:\n%s", out)
	}
	if fileSum(t, back) != sum {
		t.Fatal("downloaded file differs")
	}
}
