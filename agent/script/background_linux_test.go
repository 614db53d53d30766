package script

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The desktop toolbar's background toggle through the default core: the
// real gsettings runs as the console user (nobody here) with their
// session's settings backend (a keyfile in their XDG config directory,
// where a GNOME session would have dconf): the picture is removed and the
// reply says "", the next toggle puts it back and says which.
func TestDefaultCoreDeskBackground(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run as another user")
	}
	if _, err := exec.LookPath("gsettings"); err != nil {
		t.Skip("gsettings not installed")
	}
	if out, _ := exec.Command("gsettings", "list-schemas").Output(); !strings.Contains(string(out), "org.gnome.desktop.background") {
		t.Skip("no org.gnome.desktop.background schema (gsettings-desktop-schemas)")
	}
	dir, err := os.MkdirTemp("", "meshgo-background-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	env := []string{"DISPLAY=:94", "XDG_CONFIG_HOME=" + dir, "GSETTINGS_BACKEND=keyfile", "PATH=/usr/bin:/bin", "HOME=" + dir}
	gs := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("gsettings", args...)
		cmd.Env = env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gsettings %v: %v: %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	const pic = "file:///usr/share/backgrounds/meshgo-test.png"
	gs("set", backgroundKey, "picture-uri", pic)
	session := exec.Command("sleep", "60")
	session.Env = env
	session.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := session.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { session.Process.Kill(); session.Wait() })

	h, c := startCore(t, Config{ConsoleUser: func() (string, error) { return "nobody", nil }})
	deliver(h, map[string]any{"action": "msg", "type": "deskBackground", "sessionid": "b1"})
	m := c.wait(t, 15*time.Second, isMsg("deskBackground", "b1"))
	if m["data"] != "" {
		t.Fatalf("first toggle: %v", m)
	}
	if got := gs("get", backgroundKey, "picture-uri"); got != "''" {
		t.Fatalf("background after removal %s", got)
	}
	deliver(h, map[string]any{"action": "msg", "type": "deskBackground", "sessionid": "b2"})
	m = c.wait(t, 15*time.Second, isMsg("deskBackground", "b2"))
	if m["data"] != pic {
		t.Fatalf("second toggle: %v", m)
	}
	if got := gs("get", backgroundKey, "picture-uri"); got != "'"+pic+"'" {
		t.Fatalf("background after restore %s", got)
	}
}

func TestGsettingsValue(t *testing.T) {
	for in, want := range map[string]string{"'file:///a.png'\n": "file:///a.png", "''": "", `"x"`: "x", "plain": "plain"} {
		if got := gsettingsValue(in); got != want {
			t.Errorf("gsettingsValue(%q) = %q, want %q", in, got, want)
		}
	}
	if !backgroundRemoved("") || !backgroundRemoved("file:///dev/null") || backgroundRemoved("file:///a.png") {
		t.Error("backgroundRemoved")
	}
}
