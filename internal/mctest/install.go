package mctest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the MeshCentral release the harness installs and runs.
const Version = "1.1.55"

// DirEnv names the environment variable that, when set, overrides the
// directory into which MeshCentral is installed (the directory that holds
// node_modules).
const DirEnv = "MESHGO_MESHCENTRAL_DIR"

// completeMarker is written into the install directory once npm has finished
// and the result has been checked; only then is the directory used.
const completeMarker = ".meshgo-install-complete"

var (
	installMu   sync.Mutex
	installPath string
)

// CacheDir returns the directory the harness installs MeshCentral into: $MESHGO_MESHCENTRAL_DIR
// when set, otherwise $(os.UserCacheDir())/meshgo/meshcentral-1.1.55. .ci/run
// pre-installs into the same place.
func CacheDir() (string, error) {
	if d := os.Getenv(DirEnv); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("mctest: user cache dir: %w", err)
	}
	return filepath.Join(base, "meshgo", "meshcentral-"+Version), nil
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
	installMu.Lock()
	defer installMu.Unlock()
	if installPath != "" {
		return installPath, nil
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", fmt.Errorf("node (Node.js >= 16) is required to run MeshCentral but was not found in PATH: %w", err)
	}
	dir, err := CacheDir()
	if err != nil {
		return "", err
	}
	_, fromEnv := os.LookupEnv(DirEnv)
	mcDir := filepath.Join(dir, "node_modules", "meshcentral")
	if installComplete(dir, fromEnv) {
		installPath = mcDir
		return mcDir, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("npm is required to install meshcentral@%s into %s but was not found in PATH: %w", Version, dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("create cache parent: %w", err)
	}
	unlock, err := lockFile(dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	// Another process may have finished the install while we waited.
	if installComplete(dir, fromEnv) {
		installPath = mcDir
		return mcDir, nil
	}
	if _, err := os.Stat(dir); err == nil && fromEnv {
		// A directory chosen by the user: install in place, never delete it.
		if err := npmInstall(dir, logf); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, completeMarker), []byte(Version+"\n"), 0o644); err != nil {
			return "", fmt.Errorf("write install marker: %w", err)
		}
		installPath = mcDir
		return mcDir, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("clean %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", tmp, err)
	}
	if err := npmInstall(tmp, logf); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, completeMarker), []byte(Version+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write install marker: %w", err)
	}
	// Anything left at dir is an incomplete install from an older run: we hold the lock.
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("remove incomplete install %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("move install into place: %w", err)
	}
	if !installComplete(dir, fromEnv) {
		return "", fmt.Errorf("meshcentral@%s install in %s is incomplete after npm install", Version, dir)
	}
	installPath = mcDir
	return mcDir, nil
}

// installComplete reports whether dir holds a finished install of Version.
// A directory named by DirEnv is trusted without the marker so that an
// existing npm install can be reused as is.
func installComplete(dir string, trustWithoutMarker bool) bool {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "meshcentral", "package.json"))
	if err != nil {
		return false
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &pkg) != nil || pkg.Version != Version {
		return false
	}
	if trustWithoutMarker {
		return true
	}
	_, err = os.Stat(filepath.Join(dir, completeMarker))
	return err == nil
}

func npmInstall(dir string, logf func(string, ...any)) error {
	pkgJSON := filepath.Join(dir, "package.json")
	if _, err := os.Stat(pkgJSON); errors.Is(err, os.ErrNotExist) {
		// Without a package.json npm would look for a project root in parent directories.
		if err := os.WriteFile(pkgJSON, []byte(`{"name":"meshgo-meshcentral","private":true}`+"\n"), 0o644); err != nil {
			return fmt.Errorf("write package.json: %w", err)
		}
	}
	logf("mctest: installing meshcentral@%s into %s with npm (about 30 s)", Version, dir)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "meshcentral@"+Version)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm install meshcentral@%s in %s: %w\n%s", Version, dir, err, tail(string(out), 40))
	}
	logf("mctest: npm install done in %s", time.Since(start).Round(time.Second))
	return nil
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
