//go:build !windows

package osuser

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestSessionEnvIn(t *testing.T) {
	root := t.TempDir()
	write := func(pid, env string) {
		d := filepath.Join(root, pid)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "environ"), []byte(env), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("10", "HOME=/root\x00PATH=/bin\x00")
	write("11", "DISPLAY=:7\x00XAUTHORITY=/tmp/xa\x00SECRET=x\x00")
	uid := uint32(os.Getuid())
	env, err := sessionEnvIn(root, uid)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"DISPLAY=:7", "XAUTHORITY=/tmp/xa"}; !slices.Equal(env, want) {
		t.Fatalf("env = %q, want %q (only the session keys)", env, want)
	}
	if _, err := sessionEnvIn(root, uid+1); err == nil {
		t.Fatal("another uid's session found")
	}
}
