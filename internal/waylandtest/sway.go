//go:build linux

package waylandtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// UserName is the unprivileged account sway runs as: it refuses root.
const UserName = "meshwl"

// Sway is a running headless sway.
type Sway struct {
	Runtime string // its XDG_RUNTIME_DIR
	Socket  string // the wayland-N socket path
	Log     string // its stdout and stderr
	UID     int
	cmd     *exec.Cmd
}

// TB is what StartSway needs of a test; testing.TB has it, and commands
// such as deskbench can provide it too.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// StartSway runs sway headless (pixman renderer, no input devices) with one
// w x h output as UserName, creating that user when missing. It skips the
// test when sway is not installed or the test is not root.
func StartSway(t TB, w, h int) *Sway {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run sway as an unprivileged user")
	}
	bin, err := exec.LookPath("sway")
	if err != nil {
		t.Skip("sway not installed (apt-get install sway)")
	}
	uid, gid := testUser(t)
	dir, err := os.MkdirTemp("", "meshwl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700)
	cfg := filepath.Join(dir, "config")
	conf := fmt.Sprintf("output * resolution %dx%d bg #000000 solid_color\ndefault_border none\nfocus_follows_mouse no\n", w, h)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "sway.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "-c", cfg)
	cmd.Dir = dir
	cmd.Env = []string{
		"XDG_RUNTIME_DIR=" + dir, "HOME=" + dir, "PATH=/usr/local/bin:/usr/bin:/bin",
		"WLR_BACKENDS=headless", "WLR_LIBINPUT_NO_DEVICES=1", "WLR_RENDERER=pixman",
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sway: %v", err)
	}
	s := &Sway{Runtime: dir, Log: logPath, UID: uid, cmd: cmd}
	stopGroupOnCleanup(t, cmd) // sway and the clients it started
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if m, _ := filepath.Glob(filepath.Join(dir, "wayland-[0-9]")); len(m) > 0 {
			s.Socket = m[0]
			if ipc, _ := filepath.Glob(filepath.Join(dir, "sway-ipc.*.sock")); len(ipc) > 0 {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b, _ := os.ReadFile(logPath)
	t.Fatalf("sway did not come up in 10s: %s", b)
	return nil
}

// Msg runs swaymsg against this sway (e.g. "exec wev").
func (s *Sway) Msg(args ...string) ([]byte, error) {
	ipc, _ := filepath.Glob(filepath.Join(s.Runtime, "sway-ipc.*.sock"))
	if len(ipc) == 0 {
		return nil, fmt.Errorf("no sway ipc socket")
	}
	cmd := exec.Command("swaymsg", append([]string{"-s", ipc[0]}, args...)...)
	return cmd.CombinedOutput()
}

// stopGroupOnCleanup ends cmd's process group when the test ends: SIGTERM
// first, so compositors and portals can tidy their sockets, then SIGKILL
// after 10 s for a child that ignores it, so no test leaves a session
// running for the next one to find.
func stopGroupOnCleanup(t TB, cmd *exec.Cmd) {
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
}
