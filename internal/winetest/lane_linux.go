package winetest

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

//go:embed shim/bcryptprimitives.c shim/bcryptprimitives.def
var shimSrc embed.FS

// MinGW is the cross compiler the shim is built with (Debian's
// gcc-mingw-w64-x86-64).
const MinGW = "x86_64-w64-mingw32-gcc"

// BuildShim compiles the bcryptprimitives.dll stand-in (shim/) into dir
// and returns the DLL's path. Every Go >= 1.22 Windows program aborts at
// start under wine 8 without it ("bcryptprimitives.dll not found").
func BuildShim(ctx context.Context, dir string) (string, error) {
	for _, name := range []string{"bcryptprimitives.c", "bcryptprimitives.def"} {
		b, err := shimSrc.ReadFile("shim/" + name)
		if err != nil {
			return "", fmt.Errorf("winetest: shim source: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			return "", fmt.Errorf("winetest: shim source: %w", err)
		}
	}
	dll := filepath.Join(dir, "bcryptprimitives.dll")
	cmd := exec.CommandContext(ctx, MinGW, "-O2", "-shared", "-s", "-o", dll,
		filepath.Join(dir, "bcryptprimitives.c"), filepath.Join(dir, "bcryptprimitives.def"), "-ladvapi32")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("winetest: build shim with %s: %w\n%s", MinGW, err, out)
	}
	return dll, nil
}

// overlayPatch is one standard library file of the lane's go -overlay:
// every occurrence of old (there must be want of them) becomes new.
type overlayPatch struct {
	file     string // relative to GOROOT/src
	old, new string
	want     int
	why      string
}

// overlayPatches are the wine 8 gaps the lane works around in the
// standard library, each the smallest change that lets a Windows
// behaviour Go relies on fall back the way an older Windows makes it.
var overlayPatches = []overlayPatch{
	{
		// Go deletes a file with FileDispositionInformationEx and falls
		// back to the pre-Windows-10 way only for the statuses an older
		// Windows returns; wine 8 answers STATUS_NOT_IMPLEMENTED
		// (0xC0000002), which Go reports as "Invalid function.".
		file: "internal/syscall/windows/at_windows.go",
		old:  "case STATUS_INVALID_INFO_CLASS,",
		new:  "case STATUS_INVALID_INFO_CLASS, NTStatus(0xC0000002) /* STATUS_NOT_IMPLEMENTED: wine 8 (winetest overlay) */,",
		want: 1,
		why:  "os.Remove and os.RemoveAll (t.TempDir's cleanup)",
	},
	{
		// Every UDP socket Go opens gets two WSAIoctl calls that turn off
		// the reporting of ICMP port and net unreachable errors as read
		// errors; wine 8 implements neither and answers WSAEOPNOTSUPP
		// (10045), so net.ListenUDP fails ("wsaioctl: The attempted
		// operation is not supported for the type of object referenced").
		// Under wine the socket then keeps the default reporting: a
		// datagram to a closed port can make the next read fail, which
		// tests on loopback to live peers never see.
		file: "net/fd_windows.go",
		old:  "if err != nil {\n\t\t\treturn wrapSyscallError(\"wsaioctl\", err)",
		new:  "if err != nil && err != syscall.Errno(10045) /* WSAEOPNOTSUPP: wine 8 (winetest overlay) */ {\n\t\t\treturn wrapSyscallError(\"wsaioctl\", err)",
		want: 2,
		why:  "UDP sockets (net.ListenUDP, pion's ICE candidates)",
	},
}

// Overlay writes into dir a go -overlay file (and the standard library
// files it replaces) that works around the wine 8 gaps in
// overlayPatches, and returns the overlay's path: os.Remove and
// os.RemoveAll (so t.TempDir's cleanup) and UDP sockets work under wine.
//
// The replacements are generated from the installed GOROOT at lane time;
// nothing of Go's is kept in this repository. An error means the
// installed Go no longer has the expected lines: look at the patch again.
func Overlay(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOROOT").Output()
	if err != nil {
		return "", fmt.Errorf("winetest: go env GOROOT: %w", err)
	}
	root := strings.TrimSpace(string(out))
	replace := map[string]string{}
	for i, pt := range overlayPatches {
		orig := filepath.Join(root, "src", filepath.FromSlash(pt.file))
		src, err := os.ReadFile(orig)
		if err != nil {
			return "", fmt.Errorf("winetest: overlay: %w", err)
		}
		if n := bytes.Count(src, []byte(pt.old)); n != pt.want {
			return "", fmt.Errorf("winetest: overlay for %s: %s has %d of %q, want %d; the file changed", pt.why, orig, n, pt.old, pt.want)
		}
		patched := bytes.ReplaceAll(src, []byte(pt.old), []byte(pt.new))
		repl := filepath.Join(dir, fmt.Sprintf("%d-%s", i, filepath.Base(orig)))
		if err := os.WriteFile(repl, patched, 0o644); err != nil {
			return "", fmt.Errorf("winetest: overlay: %w", err)
		}
		replace[orig] = repl
	}
	js, err := json.Marshal(map[string]map[string]string{"Replace": replace})
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(path, js, 0o644); err != nil {
		return "", fmt.Errorf("winetest: overlay: %w", err)
	}
	return path, nil
}

// Wine64 returns the 64-bit wine loader: Debian's wine64 package installs
// it as /usr/lib/wine/wine64 and puts no wine64 on PATH.
func Wine64() (string, error) {
	for _, p := range []string{"/usr/lib/wine/wine64", "/usr/bin/wine64"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("wine64"); err == nil {
		return p, nil
	}
	return "", errors.New("winetest: no wine64 (apt-get install wine wine64)")
}

// wineserver returns the wineserver that belongs to Wine64.
func wineserver() string {
	for _, p := range []string{"/usr/lib/wine/wineserver64", "/usr/lib/wine/wineserver"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "wineserver"
}

// Prefix is a fresh wine prefix with the shim installed and wine's
// desktop on an X display.
type Prefix struct {
	// Dir is WINEPREFIX.
	Dir string
	// Display is the X display wine draws its desktop on.
	Display string
	// Wine is the wine64 loader.
	Wine string
}

// Env returns the environment a wine process of the prefix needs.
func (p *Prefix) Env() []string {
	return []string{
		"WINEPREFIX=" + p.Dir,
		"WINEDEBUG=-all",
		// No Mono or Gecko download prompts: nothing here needs them.
		"WINEDLLOVERRIDES=mscoree,mshtml=",
		"DISPLAY=" + p.Display,
	}
}

// Command returns a command that runs a Windows program in the prefix.
func (p *Prefix) Command(ctx context.Context, exe string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, p.Wine, append([]string{exe}, args...)...)
	cmd.Env = append(os.Environ(), p.Env()...)
	return cmd
}

// desktopReg gives every program of the prefix one 1024x768 virtual
// desktop named Default.
const desktopReg = "REGEDIT4\r\n\r\n[HKEY_CURRENT_USER\\Software\\Wine\\Explorer]\r\n\"Desktop\"=\"Default\"\r\n\r\n" +
	"[HKEY_CURRENT_USER\\Software\\Wine\\Explorer\\Desktops]\r\n\"Default\"=\"1024x768\"\r\n"

// Run runs a Windows program in the prefix to its end; its output is
// part of the error when it fails. Wine's system processes inherit the
// first program's descriptors and outlive it, so the output is read only
// until shortly after the program itself has exited.
func (p *Prefix) Run(ctx context.Context, exe string, args ...string) error {
	var out bytes.Buffer
	cmd := p.Command(ctx, exe, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState.Success() {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("winetest: wine %s %s: %w\n%s", exe, strings.Join(args, " "), err, out.Bytes())
	}
	return nil
}

// NewPrefix creates a wine prefix in dir (which must not exist yet or be
// empty), installs dll as system32\bcryptprimitives.dll, gives wine a
// 1024x768 virtual desktop on display and starts a persistent wineserver
// so that test binaries do not each pay wine's start-up. Close stops it.
func NewPrefix(ctx context.Context, dir, dll, display string) (*Prefix, error) {
	wine, err := Wine64()
	if err != nil {
		return nil, err
	}
	p := &Prefix{Dir: dir, Display: display, Wine: wine}
	run := func(args ...string) error {
		return p.Run(ctx, args[0], args[1:]...)
	}
	if err := run("wineboot", "-i"); err != nil {
		return nil, err
	}
	sys32 := filepath.Join(dir, "drive_c", "windows", "system32")
	b, err := os.ReadFile(dll)
	if err != nil {
		return nil, fmt.Errorf("winetest: shim: %w", err)
	}
	if err := os.WriteFile(filepath.Join(sys32, "bcryptprimitives.dll"), b, 0o755); err != nil {
		return nil, fmt.Errorf("winetest: install shim: %w", err)
	}
	// One virtual desktop ("Default", 1024x768) for every program, as on a
	// Windows console session; without it each top-level window would be
	// an X window of its own.
	reg := filepath.Join(dir, "winetest-desktop.reg")
	if err := os.WriteFile(reg, []byte(desktopReg), 0o644); err != nil {
		return nil, fmt.Errorf("winetest: %w", err)
	}
	if err := run("regedit", "/S", `Z:`+strings.ReplaceAll(reg, "/", `\`)); err != nil {
		return nil, err
	}
	if err := p.waitServer(ctx); err != nil {
		return nil, err
	}
	// wineserver forks into the background and keeps the descriptors it
	// was given: no pipes here, or waiting for it would never end.
	srv := exec.Command(wineserver(), "-p")
	srv.Env = append(os.Environ(), p.Env()...)
	if err := srv.Run(); err != nil {
		return nil, fmt.Errorf("winetest: wineserver -p: %w", err)
	}
	return p, nil
}

// waitServer waits until the prefix's wineserver has exited (wineboot
// leaves it running for a few seconds): the prefix's registry is on disk.
func (p *Prefix) waitServer(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, wineserver(), "-w")
	cmd.Env = append(os.Environ(), p.Env()...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("winetest: wineserver -w: %w\n%s", err, out)
	}
	return nil
}

// Close kills every wine process of the prefix and its wineserver.
func (p *Prefix) Close() error {
	cmd := exec.Command(wineserver(), "-k")
	cmd.Env = append(os.Environ(), p.Env()...)
	cmd.Run() // exits non-zero when no server runs any more
	return nil
}

// Xvfb is an X server for wine's desktop.
type Xvfb struct {
	// Display is ":N".
	Display string
	cmd     *exec.Cmd
}

// StartXvfb starts Xvfb on a free display number (Xvfb picks it and
// reports it through -displayfd) and returns once it accepts clients.
func StartXvfb(ctx context.Context) (*Xvfb, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	cmd := exec.Command("Xvfb", "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp", "-noreset")
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("winetest: Xvfb: %w", err)
	}
	w.Close()
	got := make(chan string, 1)
	go func() {
		// Xvfb writes the number and the newline in two writes and exits
		// ("Cannot write display number to fd 3") if the pipe is closed
		// in between: read up to the newline before closing it.
		var line []byte
		var b [32]byte
		for !bytes.Contains(line, []byte("\n")) && len(line) < 64 {
			n, err := r.Read(b[:])
			line = append(line, b[:n]...)
			if err != nil {
				break
			}
		}
		got <- strings.TrimSpace(string(line))
	}()
	select {
	case s := <-got:
		if _, err := strconv.Atoi(s); err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("winetest: Xvfb did not report a display (%q)", s)
		}
		return &Xvfb{Display: ":" + s, cmd: cmd}, nil
	case <-time.After(20 * time.Second):
	case <-ctx.Done():
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, errors.New("winetest: Xvfb did not start within 20s")
}

// Stop ends the X server.
func (x *Xvfb) Stop() {
	x.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { x.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		x.cmd.Process.Kill()
		<-done
	}
}

// TestPrefix gives t a fresh prefix with the shim installed and wine's
// desktop on an Xvfb of its own, both ended when t ends; it skips t when
// wine64 is not installed (the Windows lane installs it).
func TestPrefix(t testing.TB) *Prefix {
	t.Helper()
	if _, err := Wine64(); err != nil {
		t.Skipf("no wine64 (the Windows lane installs it): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	dll, err := BuildShim(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	x, err := StartXvfb(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(x.Stop)
	p, err := NewPrefix(ctx, filepath.Join(dir, "prefix"), dll, x.Display)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
