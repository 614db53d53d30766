//go:build linux

package portal

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/godbus/dbus/v5"
)

// helperEnv names the bus address a re-run of this executable connects to
// as the helper of DialAs.
const helperEnv = "MESHAGENT_PORTAL_BUS_HELPER"

// init turns this process into DialAs's helper when started as one. It
// runs before main (and before a test binary's tests) in every program
// that links this package, so no command needs wiring for it.
func init() {
	if addr := os.Getenv(helperEnv); addr != "" {
		os.Exit(runHelper(addr))
	}
}

// runHelper connects to the bus at addr, hands the connected socket to the
// parent over fd 3, and stays alive until the parent closes fd 3: the bus
// reports this process as the connection's peer, and the portal looks at
// the peer's /proc entry when it first serves it.
func runHelper(addr string) int {
	ctl := os.NewFile(3, "ctl")
	c, err := dialUnix(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f, err := c.(*net.UnixConn).File()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cc, err := net.FileConn(ctl)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if _, _, err := cc.(*net.UnixConn).WriteMsgUnix([]byte{1}, syscall.UnixRights(int(f.Fd())), nil); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f.Close()
	c.Close()
	var b [1]byte
	cc.Read(b[:]) // until the parent closes its end
	return 0
}

// dialUnix connects to a unix: bus address (path= or abstract=).
func dialUnix(addr string) (net.Conn, error) {
	for _, a := range strings.Split(addr, ";") {
		rest, ok := strings.CutPrefix(a, "unix:")
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "path":
				return net.DialTimeout("unix", unescape(v), 5*time.Second)
			case "abstract":
				return net.DialTimeout("unix", "@"+unescape(v), 5*time.Second)
			}
		}
	}
	return nil, fmt.Errorf("bus address %q: no unix path or abstract name", addr)
}

// unescape undoes a D-Bus address value's %XX escapes.
func unescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(n))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// DialAs connects to a user's session bus at addr so that the bus sees a
// process of that user as the peer, authenticated and with unix fd
// passing. Why not just connect with the uid switched (as agent/mutter
// does): xdg-desktop-portal opens /proc/PEER/root to tell a sandboxed app
// from a host one and refuses a peer it cannot open, and a root process's
// is closed to the user. So a helper (this executable, re-run as the user
// through /proc/self/exe) connects and passes the socket back; it stays
// alive as long as the connection. The connection reaches godbus through
// a private socket in a root-only directory and a relay that forwards the
// bytes and any passed fds. Close the returned connection to end it all.
func DialAs(addr string, uid, gid int) (*dbus.Conn, error) {
	pair, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("portal helper socketpair: %w", err)
	}
	mine, theirs := os.NewFile(uintptr(pair[0]), "ctl"), os.NewFile(uintptr(pair[1]), "ctl-helper")
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{helperEnv + "=" + addr}
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{theirs}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if uid != syscall.Geteuid() {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		mine.Close()
		theirs.Close()
		return nil, fmt.Errorf("portal helper: %w", err)
	}
	theirs.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop := func() {
		mine.Close()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	ctl, err := net.FileConn(mine)
	if err != nil {
		stop()
		return nil, fmt.Errorf("portal helper: %w", err)
	}
	ctl.SetReadDeadline(time.Now().Add(15 * time.Second))
	buf, oob := make([]byte, 1), make([]byte, syscall.CmsgSpace(4))
	_, oobn, _, _, err := ctl.(*net.UnixConn).ReadMsgUnix(buf, oob)
	fds := rights(oob[:oobn])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			syscall.Close(fd)
		}
		ctl.Close()
		stop()
		return nil, fmt.Errorf("portal helper as uid %d got no bus connection (%v): %s", uid, err, strings.TrimSpace(stderr.String()))
	}
	// The *os.File owns fds[0]: close it through the File, never with a
	// raw close. A raw close leaves the File's finalizer to close the same
	// number again at some later GC, by then another file's (a frame
	// pipe's, a later bus connection's).
	bf := os.NewFile(uintptr(fds[0]), "bus")
	busConn, err := net.FileConn(bf)
	bf.Close()
	if err != nil {
		ctl.Close()
		stop()
		return nil, fmt.Errorf("portal helper: %w", err)
	}
	c, err := relay(busConn.(*net.UnixConn), uid)
	if err != nil {
		busConn.Close()
		ctl.Close()
		stop()
		return nil, err
	}
	go func() {
		<-c.Context().Done()
		busConn.Close()
		ctl.Close()
		stop()
	}()
	return c, nil
}

// relay gives godbus a connection to bus: it listens on a socket in a new
// root-only directory, dials it, and forwards between the accepted end and
// bus, bytes and SCM_RIGHTS fds (credentials messages are dropped: the bus
// knows its peer from the socket).
func relay(bus *net.UnixConn, uid int) (*dbus.Conn, error) {
	dir, err := os.MkdirTemp("", "meshagent-portal-")
	if err != nil {
		return nil, fmt.Errorf("portal relay: %w", err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "bus")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("portal relay: %w", err)
	}
	defer l.Close()
	accepted := make(chan *net.UnixConn, 1)
	go func() {
		l.SetDeadline(time.Now().Add(15 * time.Second))
		a, err := l.AcceptUnix()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- a
	}()
	c, err := dbus.Dial("unix:path=" + sock)
	if err != nil {
		return nil, fmt.Errorf("portal relay dial: %w", err)
	}
	a := <-accepted
	if a == nil {
		c.Close()
		return nil, errors.New("portal relay: no connection accepted")
	}
	var once sync.Once
	end := func() { once.Do(func() { a.Close(); bus.Close() }) }
	go func() { forward(bus, a); end() }()
	go func() { forward(a, bus); end() }()
	if err := c.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(uid))}); err != nil {
		c.Close()
		return nil, fmt.Errorf("portal: session bus auth as uid %d: %w", uid, err)
	}
	if err := c.Hello(); err != nil {
		c.Close()
		return nil, fmt.Errorf("portal: session bus hello: %w", err)
	}
	return c, nil
}

// forward copies from src to dst with any passed fds, until either fails.
func forward(dst, src *net.UnixConn) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(64*4))
	for {
		n, oobn, _, _, err := src.ReadMsgUnix(buf, oob)
		if n <= 0 && err != nil {
			return
		}
		n, oobn = max(n, 0), max(oobn, 0)
		fds := rights(oob[:oobn])
		var out []byte
		if len(fds) > 0 {
			out = syscall.UnixRights(fds...)
		}
		_, _, werr := dst.WriteMsgUnix(buf[:n], out, nil)
		for _, fd := range fds {
			syscall.Close(fd)
		}
		if werr != nil || err != nil {
			return
		}
	}
}

// rights returns the fds of the SCM_RIGHTS messages in oob.
func rights(oob []byte) []int {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, m := range msgs {
		if f, err := syscall.ParseUnixRights(&m); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}
