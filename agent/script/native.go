package script

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/meshgo/meshagent/agent/shells"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
)

func newJSONEncoder(w io.Writer) *json.Encoder {
	e := json.NewEncoder(w)
	e.SetEscapeHTML(false)
	return e
}

// buildTime is the VCS time stamped into the binary, shown by the UI as
// hardware.agentvers.compileTime.
func buildTime() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.time" {
				return s.Value
			}
		}
	}
	return ""
}

// cpuMemInfo is the `cpuinfo` reply body (control.md 6.7).
func cpuMemInfo() map[string]any {
	out := map[string]any{"thermals": []any{}}
	if p, err := cpu.Percent(200*time.Millisecond, false); err == nil && len(p) > 0 {
		out["cpu"] = map[string]any{"total": p[0]}
	}
	if vm, err := mem.VirtualMemory(); err == nil {
		out["memory"] = map[string]any{"percentConsumed": vm.UsedPercent, "percentFree": 100 - vm.UsedPercent,
			"totalmem": float64(vm.Total), "freemem": float64(vm.Available)}
	}
	return out
}

// shellCommand maps a runcommands shell kind to a process. The script goes
// on stdin followed by an exit, so multi-line scripts behave as typed.
func shellCommand(kind, script string) (file string, args []string, stdin string, err error) {
	if kind == "" {
		kind = "sh"
		if runtime.GOOS == "windows" {
			kind = "cmd"
		}
	}
	switch kind {
	case "sh":
		if runtime.GOOS == "windows" {
			return "", nil, "", errors.New("sh is not available on Windows")
		}
		return "/bin/sh", nil, script + "\nexit\n", nil
	case "cmd":
		if runtime.GOOS != "windows" {
			return "", nil, "", errors.New("cmd is only available on Windows")
		}
		return "cmd.exe", []string{"/Q", "/K", "prompt $G"}, script + "\r\nexit\r\n", nil
	case "powershell":
		ps, perr := shells.PowerShell()
		if perr != nil {
			return "", nil, "", perr
		}
		return ps, []string{"-NoLogo", "-NoProfile", "-NonInteractive", "-Command", "-"}, script + "\nexit\n", nil
	}
	return "", nil, "", fmt.Errorf("unknown shell type %q", kind)
}

// firstTool returns the first of the candidates present in PATH.
func firstTool(names ...string) string {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

func haveDisplay() bool {
	return runtime.GOOS != "linux" || os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

var errNoClipboard = errors.New("no clipboard: no desktop session or clipboard tool (xclip, xsel, wl-clipboard) available")

func clipboardGet() (string, error) {
	var file string
	var args []string
	switch runtime.GOOS {
	case "windows":
		file, args = "powershell.exe", []string{"-NoProfile", "-Command", "Get-Clipboard -Raw"}
	case "darwin":
		file = "pbpaste"
	default:
		if !haveDisplay() {
			return "", errNoClipboard
		}
		switch t := firstTool("wl-paste", "xclip", "xsel"); {
		case strings.HasSuffix(t, "wl-paste"):
			file, args = t, []string{"--no-newline"}
		case strings.HasSuffix(t, "xclip"):
			file, args = t, []string{"-selection", "clipboard", "-o"}
		case strings.HasSuffix(t, "xsel"):
			file, args = t, []string{"--clipboard", "--output"}
		default:
			return "", errNoClipboard
		}
	}
	r := runCmd(file, args, "", 10*time.Second, "")
	if r["code"].(int64) != 0 {
		return "", fmt.Errorf("clipboard read failed: %v", r["stderr"])
	}
	return r["stdout"].(string), nil
}

func clipboardSet(text string) error {
	var file string
	var args []string
	switch runtime.GOOS {
	case "windows":
		file, args = "powershell.exe", []string{"-NoProfile", "-Command", "$input | Set-Clipboard"}
	case "darwin":
		file = "pbcopy"
	default:
		if !haveDisplay() {
			return errNoClipboard
		}
		switch t := firstTool("wl-copy", "xclip", "xsel"); {
		case strings.HasSuffix(t, "wl-copy"):
			file = t
		case strings.HasSuffix(t, "xclip"):
			file, args = t, []string{"-selection", "clipboard", "-i"}
		case strings.HasSuffix(t, "xsel"):
			file, args = t, []string{"--clipboard", "--input"}
		default:
			return errNoClipboard
		}
	}
	if text == "" {
		text = " "
	}
	r := runCmd(file, args, text, 10*time.Second, "")
	if r["code"].(int64) != 0 {
		return fmt.Errorf("clipboard write failed: %v", r["stderr"])
	}
	return nil
}

// notify shows a desktop notification; false means no UI was reachable.
func notify(title, msg string) bool {
	var file string
	var args []string
	switch runtime.GOOS {
	case "darwin":
		file, args = "osascript", []string{"-e", fmt.Sprintf("display notification %q with title %q", msg, title)}
	case "windows":
		file, args = "msg.exe", []string{"*", "/TIME:30", title + ": " + msg}
	default:
		if !haveDisplay() {
			return false
		}
		if file = firstTool("notify-send"); file == "" {
			return false
		}
		args = []string{title, msg}
	}
	return runCmd(file, args, "", 10*time.Second, "")["code"].(int64) == 0
}

// wakeOnLAN broadcasts magic packets (three rounds, like the C agent) to
// UDP port 9 on the limited broadcast address.
func wakeOnLAN(macs []string) (int, error) {
	conn, err := net.ListenPacket("udp4", ":0")
	if err != nil {
		return 0, fmt.Errorf("wake-on-lan: %w", err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.IPv4bcast, Port: 9}
	sent := 0
	for round := 0; round < 3; round++ {
		for _, m := range macs {
			hw, err := net.ParseMAC(m)
			if err != nil || len(hw) != 6 {
				continue
			}
			pkt := make([]byte, 0, 102)
			pkt = append(pkt, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
			for i := 0; i < 16; i++ {
				pkt = append(pkt, hw...)
			}
			if _, err := conn.WriteTo(pkt, dst); err == nil {
				sent++
			}
		}
	}
	return sent, nil
}

// fdCount counts the agent's open file descriptors from /proc/self/fd,
// leaving out the one used to read that directory.
func fdCount() (int, error) {
	if runtime.GOOS != "linux" {
		return 0, fmt.Errorf("not supported on %s", runtime.GOOS)
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("count descriptors: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return 0, fmt.Errorf("count descriptors: %w", err)
	}
	self := strconv.Itoa(int(d.Fd()))
	n := 0
	for _, s := range names {
		if s != self {
			n++
		}
	}
	return n, nil
}

// readText limits for fs.readText: scripts read small text files (the
// console `type`), never bulk data.
const (
	defaultReadText = 64 << 10
	maxReadText     = 1 << 20
)

// bareErr drops the operation and path from an *fs.PathError, which the
// caller's message already names.
func bareErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readText returns up to max bytes of a regular file as text. Anything
// else is refused before it is opened: opening a FIFO for reading would
// block until a writer appears, and a directory has no text.
func readText(path string, max int64) (map[string]any, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, bareErr(err))
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("read %s: is a directory", path)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, bareErr(err))
	}
	defer f.Close()
	// One byte more than asked tells whether there is more (files in /proc
	// report size 0, so the size cannot tell).
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	truncated := int64(len(b)) > max
	if truncated {
		b = b[:max]
		// Do not leave half a character at the cut.
		i := len(b) - 1
		for i > 0 && i > len(b)-utf8.UTFMax && !utf8.RuneStart(b[i]) {
			i--
		}
		if i >= 0 && !utf8.FullRune(b[i:]) {
			b = b[:i]
		}
	}
	return map[string]any{"text": strings.ToValidUTF8(string(b), "\uFFFD"), "size": fi.Size(), "truncated": truncated}, nil
}
