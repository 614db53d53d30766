//go:build !windows

package core

import (
	"os"
	"testing"
)

// checkOwnerOnly fails t unless only the owner may read or write path.
func checkOwnerOnly(t *testing.T, path string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		t.Errorf("%s is %v, want owner-only", path, st.Mode().Perm())
	}
}
