package script

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// openUrl runs the real xdg-open as the console user with the display and
// browser settings of that user's desktop session: here a session of
// nobody is a process with DISPLAY and XDG directories in its
// environment, and its https handler a script that records who it ran as
// and what it was given (the one stand-in: no real browser can be asked). The core answers success, or the reason.
func TestDefaultCoreOpenURL(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	if _, err := exec.LookPath("xdg-open"); err != nil {
		t.Skip("xdg-open not installed (xdg-utils)")
	}
	dir, err := os.MkdirTemp("", "meshgo-openurl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	rec := filepath.Join(dir, "opened")
	browser := filepath.Join(dir, "browser")
	if err := os.WriteFile(browser, []byte("#!/bin/sh\necho \"$(id -un) $DISPLAY $1\" >> "+rec+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The session's default https handler is the recorder, as a desktop
	// sets it (mimeapps.list and a .desktop file in its XDG directories).
	for p, body := range map[string]string{
		"config/mimeapps.list": "[Default Applications]\nx-scheme-handler/https=meshgo-recorder.desktop\n",
		"data/applications/meshgo-recorder.desktop": "[Desktop Entry]\nType=Application\nName=Recorder\nExec=" + browser +
			" %u\nMimeType=x-scheme-handler/https;\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	session := exec.Command("sleep", "60")
	session.Env = []string{"DISPLAY=:93", "XDG_CONFIG_HOME=" + filepath.Join(dir, "config"),
		"XDG_DATA_HOME=" + filepath.Join(dir, "data"), "PATH=/usr/bin:/bin"}
	session.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { session.Process.Kill(); session.Wait() })

	var user atomic.Value
	user.Store("nobody")
	h, c := startCore(t, Config{ConsoleUser: func() (string, error) { return user.Load().(string), nil }})
	deliver(h, map[string]any{"action": "openUrl", "url": "https://example.invalid/page?a=1", "sessionid": "o1"})
	m := c.wait(t, 15*time.Second, func(m map[string]any) bool { return m["action"] == "openUrl" && m["sessionid"] == "o1" })
	if m["success"] != true {
		t.Fatalf("openUrl: %v", m)
	}
	var got string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(rec); len(b) > 0 {
			got = strings.TrimSpace(string(b))
			break
		}
	}
	if got != "nobody :93 https://example.invalid/page?a=1" {
		t.Errorf("the browser ran as %q, want nobody on :93 with the URL", got)
	}

	deliver(h, map[string]any{"action": "msg", "type": "openUrl", "url": "file:///etc/passwd", "sessionid": "o2"})
	m = c.wait(t, 15*time.Second, isMsg("openUrl", "o2"))
	if e, _ := m["error"].(string); m["success"] != false || !strings.Contains(e, "only http and https") {
		t.Errorf("file URL: %v", m)
	}
	user.Store("")
	deliver(h, map[string]any{"action": "msg", "type": "openUrl", "url": "https://example.invalid/", "sessionid": "o3"})
	m = c.wait(t, 15*time.Second, isMsg("openUrl", "o3"))
	if e, _ := m["error"].(string); m["success"] != false || !strings.Contains(e, "no user is logged in") {
		t.Errorf("nobody logged in: %v", m)
	}
}
