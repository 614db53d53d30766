package desktop

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestWLKeymapLevels(t *testing.T) {
	k := newWLKeymap()
	for _, tc := range []struct {
		vk   byte
		want string
	}{
		{'A', "[ 0x00000061, 0x00000041 ]"},
		{'1', "[ 0x00000031, 0x00000021 ]"},
		{0xba, "[ 0x0000003b, 0x0000003a ]"}, // ; :
		{0x10, "[ 0x0000ffe1 ]"},             // Shift_L
		{0x0d, "[ 0x0000ff0d ]"},             // Return
		{0x70, "[ 0x0000ffbe ]"},             // F1
	} {
		code, ok := k.vkCode[tc.vk]
		if !ok {
			t.Errorf("VK %#x has no keycode", tc.vk)
			continue
		}
		if line := fmt.Sprintf("key <K%d> { %s };", code, tc.want); !strings.Contains(k.text(), line) {
			t.Errorf("VK %#x: keymap lacks %q", tc.vk, line)
		}
	}
	txt := k.text()
	for _, m := range []string{"modifier_map Shift {", "modifier_map Control {", "modifier_map Mod1 {", "modifier_map Lock {", "modifier_map Mod4 {"} {
		if !strings.Contains(txt, m) {
			t.Errorf("keymap lacks %q", m)
		}
	}
}

func TestWLKeymapUnicodeReuse(t *testing.T) {
	k := newWLKeymap()
	spare := len(k.spare)
	if spare < 32 {
		t.Fatalf("only %d spare keycodes for UNICODE input", spare)
	}
	first, changed := k.unicodeKey(0xe9)
	if !changed {
		t.Fatal("a new character did not change the keymap")
	}
	if again, changed := k.unicodeKey(0xe9); again != first || changed {
		t.Fatalf("the same character again: keycode %d changed=%v, want %d unchanged", again, changed, first)
	}
	// Exhaust the spares: the oldest character's keycode is reused.
	for i := 1; i < spare; i++ {
		k.unicodeKey(0x01000000 | uint32(0x400+i))
	}
	code, changed := k.unicodeKey(0x01000000 | 0x4ff0)
	if code != first || !changed {
		t.Fatalf("after %d characters the next got keycode %d, want the oldest's %d", spare, code, first)
	}
	if _, ok := k.uniCode[0xe9]; ok {
		t.Fatal("the evicted character still maps to a keycode")
	}
	if code > wlMaxKeycode {
		t.Fatalf("keycode %d above %d", code, wlMaxKeycode)
	}
}

func TestDiscoverWayland(t *testing.T) {
	dir := t.TempDir()
	old := runUserRoot
	runUserRoot = dir
	oldUID := consoleUID
	consoleUID = func() string { return "" }
	t.Cleanup(func() { runUserRoot, consoleUID = old, oldUID })
	t.Setenv("WAYLAND_DISPLAY", "")
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/77")
	listen := func(p string) {
		os.MkdirAll(filepath.Dir(p), 0o700)
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
	}
	listen(filepath.Join(dir, "1000", "wayland-0"))
	time.Sleep(20 * time.Millisecond)
	listen(filepath.Join(dir, "1001", "wayland-1"))
	os.WriteFile(filepath.Join(dir, "1000", "wayland-0.lock"), nil, 0o600)
	os.WriteFile(filepath.Join(dir, "1000", "wayland-9"), nil, 0o600) // not a socket
	got := discoverWayland(Options{WaylandDisplay: "wayland-5"})
	var paths []string
	for _, g := range got {
		paths = append(paths, g.path+" "+g.source)
	}
	want := []string{
		"/run/user/77/wayland-5 options",
		filepath.Join(dir, "1001", "wayland-1") + " runtime-dir", // newest first
		filepath.Join(dir, "1000", "wayland-0") + " runtime-dir",
	}
	if strings.Join(paths, "\n") != strings.Join(want, "\n") {
		t.Fatalf("discovered\n%s\nwant\n%s", strings.Join(paths, "\n"), strings.Join(want, "\n"))
	}
	// The console user's socket comes before newer ones of other users.
	consoleUID = func() string { return "1000" }
	if got := discoverWayland(Options{}); len(got) < 2 || got[0].path != filepath.Join(dir, "1000", "wayland-0") || got[0].source != "console-user" {
		t.Fatalf("console user's socket not first: %+v", got)
	}
	t.Setenv("WAYLAND_DISPLAY", "/abs/wl")
	if got := discoverWayland(Options{}); len(got) == 0 || got[0].path != "/abs/wl" || got[0].source != "env" {
		t.Fatalf("WAYLAND_DISPLAY not first: %+v", got)
	}
}
