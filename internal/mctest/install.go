package mctest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// SSH2Version is the npm ssh2 release MeshCentral 1.1.55 requires for
// Web-SSH (meshcentral.js pushes 'ssh2@1.17.0' onto its module list when
// a domain has "ssh": true, and npm-installs it at start when missing).
const SSH2Version = "1.17.0"

// SSH2DirEnv overrides the directory ssh2 is installed into (the one that
// holds node_modules), as DirEnv does for MeshCentral.
const SSH2DirEnv = "MESHGO_SSH2_DIR"

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
// it installs MeshCentral and the ssh2 module its servers get (see
// installSSH2) and returns the node_modules/meshcentral path or an error,
// logging progress with logf.
func EnsureInstalled(logf func(format string, args ...any)) (string, error) {
	p, err := install(logf)
	if err != nil {
		return "", fmt.Errorf("mctest: %w", err)
	}
	if _, err := installSSH2(logf); err != nil {
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

// installSSH2 makes sure npm ssh2@1.17.0 is installed in its own cache
// directory ($MESHGO_SSH2_DIR or $(os.UserCacheDir())/meshgo/ssh2-1.17.0)
// and returns its node_modules directory, which servers get as NODE_PATH.
// MeshCentral would otherwise run `npm install ssh2@1.17.0` into its own
// install at start (InstallModules in meshcentral.js) whenever a domain
// has "ssh": true: a network fetch in the middle of a test, into a
// directory other test binaries are running MeshCentral from. A separate
// directory is built aside and renamed into place like MeshCentral's, so
// an existing MeshCentral cache stays untouched. Optional dependencies
// (cpu-features, a native build ssh2 only uses to pick a cipher order)
// are left out.
func installSSH2(logf func(string, ...any)) (string, error) {
	dir, err := npmcache.CacheDir(SSH2DirEnv, "ssh2", SSH2Version)
	if err != nil {
		return "", err
	}
	_, fromEnv := os.LookupEnv(SSH2DirEnv)
	mod, err := npmcache.Ensure(npmcache.Package{
		Name: "ssh2", Version: SSH2Version, Dir: dir, UserDir: fromEnv,
		ProjectName: "meshgo-ssh2", NPMArgs: []string{"--omit=optional"},
		Timeout: 5 * time.Minute, LogPrefix: "mctest",
	}, logf)
	if err != nil {
		return "", err
	}
	return filepath.Dir(mod), nil
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
