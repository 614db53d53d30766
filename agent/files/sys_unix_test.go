//go:build !windows

package files

import (
	"os"
	"syscall"
	"testing"
)

func mkfifo(t testing.TB, p string) {
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
}

func countFDs(t testing.TB) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}
