//go:build linux

package waylandtest

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meshgo/meshagent/agent/mutter"
)

// Mutter is a running headless GNOME compositor (mutter) with its own
// session bus, PipeWire and WirePlumber: what Mutter's RemoteDesktop and
// ScreenCast D-Bus services need to stream the screen.
type Mutter struct {
	Runtime string // its XDG_RUNTIME_DIR (pipewire-0 is there)
	Socket  string // the Wayland socket path
	Bus     string // DBUS_SESSION_BUS_ADDRESS of its session
	Log     string // mutter's stdout and stderr
	UID     int
	GID     int
	Pid     int // the mutter process
	cmd     *exec.Cmd
}

// mutterScript starts PipeWire and WirePlumber inside dbus-run-session,
// records the bus address, then becomes mutter.
const mutterScript = `cd "$XDG_RUNTIME_DIR"
pipewire >pipewire.log 2>&1 &
i=0; while [ ! -S pipewire-0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
wireplumber >wireplumber.log 2>&1 &
printf '%s\n' "$DBUS_SESSION_BUS_ADDRESS" >bus.tmp && mv bus.tmp bus.address
exec mutter --headless $MUTTER_MONITORS --no-x11 --wayland-display wayland-mesh >mutter.log 2>&1
`

// StartMutter runs mutter --headless with one w x h virtual monitor as
// UserName (created when missing), under dbus-run-session with pipewire
// and wireplumber, as a GNOME session would have them. It waits until
// the Wayland socket exists and Mutter owns its ScreenCast and
// RemoteDesktop bus names. One test on the machine runs mutter at a
// time (the others wait): agents pick the newest GNOME session. It skips
// the test when mutter, pipewire, wireplumber or dbus-run-session are
// missing or the test is not root.
func StartMutter(t TB, w, h int) *Mutter {
	t.Helper()
	return StartMutterMonitors(t, [2]int{w, h})
}

// StartMutterMonitors is StartMutter with one virtual monitor of each
// size (--virtual-monitor WxH each); mutter lays them out side by side
// and picks the primary one itself.
func StartMutterMonitors(t TB, sizes ...[2]int) *Mutter {
	t.Helper()
	return startMutter(t, mutterScript, sizes...)
}

// startMutter is StartMutterMonitors with the session script given (it
// finds the monitors in $MUTTER_MONITORS).
func startMutter(t TB, script string, sizes ...[2]int) *Mutter {
	t.Helper()
	var mons []string
	for _, sz := range sizes {
		mons = append(mons, fmt.Sprintf("--virtual-monitor %dx%d", sz[0], sz[1]))
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run mutter as an unprivileged user")
	}
	for _, b := range []string{"mutter", "pipewire", "wireplumber", "dbus-run-session", "gst-launch-1.0"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skip(b + " not installed (apt-get install mutter pipewire wireplumber dbus-daemon gstreamer1.0-pipewire gstreamer1.0-tools)")
		}
	}
	uid, gid := testUser(t)
	lockMutter(t)
	dir, err := os.MkdirTemp("", "meshgnome-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o700)
	cmd := exec.Command("dbus-run-session", "--", "/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{
		"XDG_RUNTIME_DIR=" + dir, "HOME=" + dir, "PATH=/usr/local/bin:/usr/bin:/bin",
		"XDG_SESSION_TYPE=wayland", "XDG_CURRENT_DESKTOP=GNOME", "MUTTER_MONITORS=" + strings.Join(mons, " "),
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-run-session mutter: %v", err)
	}
	m := &Mutter{Runtime: dir, Log: filepath.Join(dir, "mutter.log"), UID: uid, GID: gid, cmd: cmd}
	// dbus-run-session, the bus, pipewire, wireplumber, mutter and
	// the clients it started share one process group.
	stopGroupOnCleanup(t, cmd)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, "bus.address")); err == nil && m.Bus == "" {
			m.Bus = strings.TrimSpace(string(b))
		}
		sock := filepath.Join(dir, "wayland-mesh")
		if fi, err := os.Stat(sock); err == nil && fi.Mode()&os.ModeSocket != 0 && m.Bus != "" {
			m.Socket = sock
			if log, _ := os.ReadFile(m.Log); strings.Contains(string(log), "Using Wayland display name") {
				m.Pid = findMutter(uid, dir)
				if m.Pid != 0 && mutterServing(m.Bus, uid) {
					return m
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(m.Log)
	t.Fatalf("mutter did not come up in 30s: %s", b)
	return nil
}

// lockMutter makes this test the only one on the machine running mutter
// until it ends (other packages' tests run in parallel): an agent finds a
// GNOME session by its process, newest first, so a second mutter started
// meanwhile would be taken for this test's. Registered before mutter's own
// cleanup, the lock is released after mutter is gone.
func lockMutter(t TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "meshgo-waylandtest-mutter.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock for mutter: %v", err)
	}
	t.Cleanup(func() { f.Close() }) // closing releases the lock
}

// mutterServing reports whether Mutter owns its RemoteDesktop and
// ScreenCast names on the session bus yet (it takes them a moment after
// its Wayland socket appears).
func mutterServing(bus string, uid int) bool {
	c, err := mutter.Dial(bus, uid)
	if err != nil {
		return false
	}
	defer c.Close()
	return mutter.Available(c)
}

// testUser returns UserName's uid and gid, creating the account.
func testUser(t TB) (int, int) {
	u, err := user.Lookup(UserName)
	if err != nil {
		if out, err := exec.Command("useradd", "-M", "-r", "-s", "/usr/sbin/nologin", UserName).CombinedOutput(); err != nil {
			t.Fatalf("useradd %s: %v: %s", UserName, err, out)
		}
		if u, err = user.Lookup(UserName); err != nil {
			t.Fatal(err)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

// findMutter returns the pid of uid's mutter process whose runtime dir is
// dir, 0 for none.
func findMutter(uid int, dir string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != "mutter" {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name()), &st) != nil || int(st.Uid) != uid {
			continue
		}
		env, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		for _, kv := range strings.Split(string(env), "\x00") {
			if kv == "XDG_RUNTIME_DIR="+dir {
				return pid
			}
		}
	}
	return 0
}
