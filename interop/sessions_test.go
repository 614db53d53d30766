//go:build linux

package interop

import (
	"crypto/rand"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// onlineAgent starts our agent in a new group of the shared MeshCentral
// and returns its id in the form meshctrl's relay commands want (without
// "node//").
func onlineAgent(t *testing.T, srv *mctest.Server, group string) (*agentProc, string) {
	t.Helper()
	mesh := srv.AddDeviceGroup(t, group)
	a := startAgent(t, srv.MSH(t, mesh))
	if _, ok := a.waitLog(30*time.Second, "core started"); !ok {
		t.Fatal("agent did not start its core")
	}
	id := a.nodeID()
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ShortID() == id && d.Online() }, 30*time.Second)
	return a, id
}

// relayCmd runs a meshctrl relay command, retrying only on meshctrl's own
// "$$" relay-cookie bug (meshcentral-loopback.md).
func relayCmd(t *testing.T, srv *mctest.Server, o mctest.CtrlOptions, args ...string) string {
	t.Helper()
	o.RelayRetries = 3
	out, err := srv.MeshctrlWith(t, o, args...)
	if err != nil {
		t.Fatalf("meshctrl %s: %v\n%s", args[0], err, out)
	}
	return out
}

// meshctrl shell, in a pseudo-terminal as a user runs it, types a command
// and reads its output back from our agent's pty.
func TestMeshctrlShell(t *testing.T) {
	srv := mctest.Shared(t)
	_, id := onlineAgent(t, srv, "shell-test")
	out := relayCmd(t, srv, mctest.CtrlOptions{TTY: true, Timeout: 90 * time.Second,
		Stdin: []byte("echo shell-$((6*7))-ok\nexit\n")}, "shell", "--id", id)
	if !strings.Contains(out, "shell-42-ok") {
		t.Fatalf("shell output lacks the command's result:\n%s", out)
	}
}

// A 50 MiB random file goes up and comes back with the same SHA-256; a
// missing file gives an error, not a hang.
func TestMeshctrlUploadDownload(t *testing.T) {
	srv := mctest.Shared(t)
	_, id := onlineAgent(t, srv, "files-test")
	dir := t.TempDir()
	src := filepath.Join(dir, "payload.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	up := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, up), rand.Reader, 50<<20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	remote := filepath.Join(dir, "remote")
	os.Mkdir(remote, 0o755)

	out := relayCmd(t, srv, mctest.CtrlOptions{Timeout: 3 * time.Minute}, "upload", "--id", id, "--file", src, "--target", remote)
	if !strings.Contains(out, "Upload done") {
		t.Fatalf("upload: %s", out)
	}
	// meshctrl exits without uploaddone; the agent commits the file on
	// close once every byte arrived. Give it a moment to rename.
	dst := filepath.Join(dir, "back.bin")
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := os.Stat(filepath.Join(remote, "payload.bin")); err == nil && st.Size() == 50<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("uploaded file not in place")
		}
		time.Sleep(50 * time.Millisecond)
	}
	out = relayCmd(t, srv, mctest.CtrlOptions{Timeout: 3 * time.Minute}, "download", "--id", id, "--file", filepath.Join(remote, "payload.bin"), "--target", dst)
	if !strings.Contains(out, "Download completed") {
		t.Fatalf("download: %s", out)
	}
	down := sha256.New()
	g, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(down, g)
	g.Close()
	if string(up.Sum(nil)) != string(down.Sum(nil)) {
		t.Fatal("downloaded file differs from the uploaded one")
	}

	start := time.Now()
	out = relayCmd(t, srv, mctest.CtrlOptions{Timeout: 60 * time.Second}, "download", "--id", id, "--file", filepath.Join(remote, "missing.bin"), "--target", filepath.Join(dir, "missing.out"))
	if strings.Contains(out, "Download completed") || time.Since(start) > 45*time.Second {
		t.Fatalf("missing file: %s (after %v)", out, time.Since(start))
	}
	t.Logf("missing file: %q", strings.TrimSpace(out))
}
