//go:build linux

package waylandtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// PortalSway is a headless sway with the session a desktop portal needs:
// its own session bus, PipeWire, WirePlumber, xdg-desktop-portal and the
// wlroots backend (xdg-desktop-portal-wlr, ScreenCast only) configured to
// pick the output without a chooser, so nothing needs answering.
type PortalSway struct {
	Runtime string // XDG_RUNTIME_DIR
	Socket  string // sway's Wayland socket
	Bus     string // DBUS_SESSION_BUS_ADDRESS
	UID     int
	GID     int
	Dir     string // logs: sway.log, xdp.log, xdpw.log, pipewire.log
}

const portalSwayScript = `cd "$XDG_RUNTIME_DIR"
pipewire >pipewire.log 2>&1 &
i=0; while [ ! -S pipewire-0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
wireplumber >wireplumber.log 2>&1 &
sway -c config >sway.log 2>&1 &
i=0; while [ ! -S wayland-1 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
export WAYLAND_DISPLAY=wayland-1
/usr/libexec/xdg-desktop-portal-wlr -l DEBUG >xdpw.log 2>&1 &
/usr/libexec/xdg-desktop-portal -r >xdp.log 2>&1 &
printf '%s\n' "$DBUS_SESSION_BUS_ADDRESS" >bus.tmp && mv bus.tmp bus.address
wait
`

// StartPortalSway runs it all as UserName under dbus-run-session and
// waits until the portal owns org.freedesktop.portal.Desktop. It skips
// the test when a part is missing or the test is not root.
func StartPortalSway(t TB, w, h int) *PortalSway {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run sway as an unprivileged user")
	}
	for _, b := range []string{"sway", "pipewire", "wireplumber", "dbus-run-session", "gst-launch-1.0", "dbus-send",
		"/usr/libexec/xdg-desktop-portal", "/usr/libexec/xdg-desktop-portal-wlr"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skip(b + " not installed (apt-get install sway pipewire wireplumber xdg-desktop-portal xdg-desktop-portal-wlr gstreamer1.0-pipewire gstreamer1.0-tools)")
		}
	}
	uid, gid := testUser(t)
	dir, err := os.MkdirTemp("", "meshportal-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chown(dir, uid, gid)
	os.Chmod(dir, 0o700)
	conf := fmt.Sprintf("output * resolution %dx%d bg #000000 solid_color\ndefault_border none\nfocus_follows_mouse no\n", w, h)
	xdpw := "[screencast]\nchooser_type=none\noutput_name=HEADLESS-1\nmax_fps=30\n"
	for name, body := range map[string]string{"config": conf, ".config/xdg-desktop-portal-wlr/config": xdpw} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o700)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Chown(p, uid, gid) })
	cmd := exec.Command("dbus-run-session", "--", "/bin/sh", "-c", portalSwayScript)
	cmd.Dir = dir
	cmd.Env = []string{
		"XDG_RUNTIME_DIR=" + dir, "HOME=" + dir, "PATH=/usr/local/bin:/usr/bin:/bin",
		"WLR_BACKENDS=headless", "WLR_LIBINPUT_NO_DEVICES=1", "WLR_RENDERER=pixman",
		"XDG_CURRENT_DESKTOP=sway", "XDG_SESSION_TYPE=wayland",
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-run-session sway: %v", err)
	}
	s := &PortalSway{Runtime: dir, Dir: dir, UID: uid, GID: gid}
	stopGroupOnCleanup(t, cmd) // the session bus, portals, pipewire and sway
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, "bus.address")); err == nil && s.Bus == "" {
			s.Bus = strings.TrimSpace(string(b))
		}
		if s.Bus != "" {
			if hasName(s.Bus, uid, gid, "org.freedesktop.portal.Desktop") {
				s.Socket = filepath.Join(dir, "wayland-1")
				return s
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("sway with xdg-desktop-portal did not come up in 45s: %s", s.Logs())
	return nil
}

// Logs returns the tails of the session's logs, for failure messages.
func (s *PortalSway) Logs() string {
	var b strings.Builder
	for _, n := range []string{"sway.log", "xdp.log", "xdpw.log", "pipewire.log", "wireplumber.log"} {
		data, _ := os.ReadFile(filepath.Join(s.Dir, n))
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", n, data)
	}
	return b.String()
}

// mutterPortalScript is mutterScript with xdg-desktop-portal and its GNOME
// backend (xdg-desktop-portal-gnome) on the session bus, the backend's
// dialogs drawn on mutter's screen. The activation environment gets the
// Wayland display so the bus can restart the backend.
const mutterPortalScript = `cd "$XDG_RUNTIME_DIR"
pipewire >pipewire.log 2>&1 &
i=0; while [ ! -S pipewire-0 ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
wireplumber >wireplumber.log 2>&1 &
mutter --headless $MUTTER_MONITORS --no-x11 --wayland-display wayland-mesh >mutter.log 2>&1 &
i=0; while [ ! -S wayland-mesh ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
export WAYLAND_DISPLAY=wayland-mesh
dbus-update-activation-environment WAYLAND_DISPLAY XDG_CURRENT_DESKTOP XDG_SESSION_TYPE >/dev/null 2>&1
/usr/libexec/xdg-desktop-portal-gnome >xdpg.log 2>&1 &
/usr/libexec/xdg-desktop-portal -r >xdp.log 2>&1 &
printf '%s\n' "$DBUS_SESSION_BUS_ADDRESS" >bus.tmp && mv bus.tmp bus.address
wait
`

// StartMutterPortal is StartMutter with xdg-desktop-portal and
// xdg-desktop-portal-gnome running in the session: the portal's
// RemoteDesktop and ScreenCast, whose grant dialog appears on mutter's
// screen (answer it with ClickAt). It waits until the portal owns its
// name, and skips when the portal or its GNOME backend is missing.
func StartMutterPortal(t TB, w, h int) *Mutter {
	t.Helper()
	for _, b := range []string{"/usr/libexec/xdg-desktop-portal", "/usr/libexec/xdg-desktop-portal-gnome", "dbus-send"} {
		if _, err := exec.LookPath(b); err != nil {
			t.Skip(b + " not installed (apt-get install xdg-desktop-portal xdg-desktop-portal-gnome)")
		}
	}
	m := startMutter(t, mutterPortalScript, [2]int{w, h})
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		if hasName(m.Bus, m.UID, m.GID, "org.freedesktop.portal.Desktop") {
			return m
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("xdg-desktop-portal did not come up in 45s: %s", m.PortalLogs())
	return nil
}

// hasName asks bus (as uid) whether name has an owner.
func hasName(bus string, uid, gid int, name string) bool {
	q := exec.Command("dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus", "/org/freedesktop/DBus",
		"org.freedesktop.DBus.NameHasOwner", "string:"+name)
	q.Env = []string{"DBUS_SESSION_BUS_ADDRESS=" + bus}
	q.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := q.Output()
	return err == nil && strings.Contains(string(out), "boolean true")
}

// PortalLogs returns the tails of the portal's and mutter's logs.
func (m *Mutter) PortalLogs() string {
	var b strings.Builder
	for _, n := range []string{"mutter.log", "xdp.log", "xdpg.log"} {
		data, _ := os.ReadFile(filepath.Join(m.Runtime, n))
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", n, data)
	}
	return b.String()
}
