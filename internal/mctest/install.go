package mctest

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/npmcache"
)

// Version is the MeshCentral release the harness installs and runs.
const Version = "1.1.55"

// DirEnv names the environment variable that, when set, overrides the
// directory into which MeshCentral is installed (the directory that holds
// node_modules).
const DirEnv = "MESHGO_MESHCENTRAL_DIR"

// CacheDir returns the directory the harness installs MeshCentral into: $MESHGO_MESHCENTRAL_DIR
// when set, otherwise $(os.UserCacheDir())/meshgo/meshcentral-1.1.55. .ci/run
// pre-installs into the same place.
func CacheDir() (string, error) {
	d, err := npmcache.CacheDir(DirEnv, "meshcentral", Version)
	if err != nil {
		return "", fmt.Errorf("mctest: %w", err)
	}
	return d, nil
}

// Install makes sure npm meshcentral@1.1.55 is installed in CacheDir and
// returns the path of its node_modules/meshcentral directory. It installs it
// with npm when missing (about 30 s). Concurrent test binaries are serialised
// with a file lock, and an install only becomes visible once complete
// (installed in a temporary directory, then renamed). It fails the test when
// node or npm is missing or the install fails.
func Install(t testing.TB) string {
	t.Helper()
	p, err := install(t.Logf)
	if err != nil {
		t.Fatalf("mctest: %v", err)
	}
	return p
}

// EnsureInstalled is Install for use outside tests (the CI pre-install):
// it returns the node_modules/meshcentral path or an error, logging progress
// with logf.
func EnsureInstalled(logf func(format string, args ...any)) (string, error) {
	p, err := install(logf)
	if err != nil {
		return "", fmt.Errorf("mctest: %w", err)
	}
	return p, nil
}

func install(logf func(string, ...any)) (string, error) {
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node (Node.js >= 16) is required to run MeshCentral but was not found in PATH: %w", err)
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	_, fromEnv := os.LookupEnv(DirEnv)
	return npmcache.Ensure(npmcache.Package{
		Name: "meshcentral", Version: Version, Dir: dir, UserDir: fromEnv,
		ProjectName: "meshgo-meshcentral", Timeout: 10 * time.Minute, LogPrefix: "mctest",
	}, logf)
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
