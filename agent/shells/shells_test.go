package shells

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/meshgo/meshagent/internal/winetest"
)

// pe returns the first bytes of a PE file with stub at offset 0x40.
func pe(stub string) []byte {
	b := make([]byte, 0x80)
	copy(b, "MZ")
	copy(b[0x40:], stub)
	return b
}

func TestIsWineBuiltin(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"wine builtin", pe("Wine builtin DLL"), true},
		{"wine placeholder", pe("Wine placeholder DLL"), true},
		{"real DOS stub", pe("\x0e\x1f\xba\x0e\x00\xb4\x09\xcd\x21This program cannot be run in DOS mode."), false},
		{"not a PE file", append([]byte("ELF"), pe("Wine builtin DLL")[3:]...), false},
		{"short", []byte("MZ"), false},
		{"empty", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := isWineBuiltin(bytes.NewReader(tc.in)); got != tc.want {
				t.Errorf("isWineBuiltin = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckNotWineStub(t *testing.T) {
	dir := t.TempDir()
	stub := filepath.Join(dir, "powershell.exe")
	os.WriteFile(stub, pe("Wine builtin DLL"), 0o755)
	if err := checkNotWineStub(stub); !errors.Is(err, ErrNoPowerShell) {
		t.Errorf("wine stub: %v, want ErrNoPowerShell", err)
	}
	real := filepath.Join(dir, "real.exe")
	os.WriteFile(real, pe("\x0e\x1f\xba\x0e"), 0o755)
	if err := checkNotWineStub(real); err != nil {
		t.Errorf("real PE: %v", err)
	}
	if err := checkNotWineStub(filepath.Join(dir, "missing.exe")); !errors.Is(err, ErrNoPowerShell) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNoPowerShell and ErrNotExist", err)
	}
}

// Under wine the installed powershell.exe is wine's stub: PowerShell must
// refuse it. On real Windows it must find Windows PowerShell.
func TestPowerShellHere(t *testing.T) {
	if runtime.GOOS != "windows" {
		t.Skip("Windows PowerShell is a Windows program")
	}
	p, err := PowerShell()
	if winetest.Version() != "" {
		if !errors.Is(err, ErrNoPowerShell) {
			t.Fatalf("under wine: PowerShell() = %q, %v; want ErrNoPowerShell", p, err)
		}
		t.Logf("under wine: %v", err)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
}
