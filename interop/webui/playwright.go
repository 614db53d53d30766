//go:build unix

package webui

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
	"syscall"
	"time"
)

// PlaywrightVersion is the npm playwright-core release the tests drive
// Chromium with. Only the library is installed: browsers are never
// downloaded (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1), the tests use the
// system's /usr/bin/chromium.
const PlaywrightVersion = "1.65.1"

// PlaywrightDirEnv, when set, names the directory (holding node_modules)
// to install playwright-core into instead of the user cache.
const PlaywrightDirEnv = "MESHGO_PLAYWRIGHT_DIR"

const playwrightMarker = ".meshgo-install-complete"

var (
	pwMu   sync.Mutex
	pwPath string
)

// PlaywrightCacheDir is $MESHGO_PLAYWRIGHT_DIR, or
// $(os.UserCacheDir())/meshgo/playwright-core-<version>, beside the
// MeshCentral install of internal/mctest.
func PlaywrightCacheDir() (string, error) {
	if d := os.Getenv(PlaywrightDirEnv); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("user cache dir: %w", err)
	}
	return filepath.Join(base, "meshgo", "playwright-core-"+PlaywrightVersion), nil
}

// InstallPlaywright makes sure npm playwright-core@PlaywrightVersion is
// installed in PlaywrightCacheDir and returns its
// node_modules/playwright-core directory (for require()). Processes are
// serialised with a file lock; an install is built in a temporary
// directory and renamed into place with a completion marker, so a broken
// or concurrent install is never used.
func InstallPlaywright(logf func(string, ...any)) (string, error) {
	pwMu.Lock()
	defer pwMu.Unlock()
	if pwPath != "" {
		return pwPath, nil
	}
	dir, err := PlaywrightCacheDir()
	if err != nil {
		return "", err
	}
	mod := filepath.Join(dir, "node_modules", "playwright-core")
	if playwrightComplete(dir) {
		pwPath = mod
		return mod, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("npm is required to install playwright-core@%s into %s: %w", PlaywrightVersion, dir, err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	unlock, err := flock(dir + ".lock")
	if err != nil {
		return "", err
	}
	defer unlock()
	if playwrightComplete(dir) {
		pwPath = mod
		return mod, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	// Without a package.json npm would look for a project in parent directories.
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), []byte(`{"name":"meshgo-playwright","private":true}`+"\n"), 0o644); err != nil {
		return "", err
	}
	logf("webui: installing playwright-core@%s into %s with npm", PlaywrightVersion, dir)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "playwright-core@"+PlaywrightVersion)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("npm install playwright-core@%s: %w\n%s", PlaywrightVersion, err, lastLines(string(out), 30))
	}
	if err := os.WriteFile(filepath.Join(tmp, playwrightMarker), []byte(PlaywrightVersion+"\n"), 0o644); err != nil {
		return "", err
	}
	// Anything at dir is an incomplete install of an older run: we hold the lock.
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("move playwright-core install into place: %w", err)
	}
	if !playwrightComplete(dir) {
		return "", fmt.Errorf("playwright-core@%s install in %s is incomplete", PlaywrightVersion, dir)
	}
	logf("webui: playwright-core installed in %s", time.Since(start).Round(time.Second))
	pwPath = mod
	return mod, nil
}

func playwrightComplete(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "node_modules", "playwright-core", "package.json"))
	if err != nil {
		return false
	}
	var pkg struct{ Version string }
	if json.Unmarshal(b, &pkg) != nil || pkg.Version != PlaywrightVersion {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, playwrightMarker))
	return err == nil
}

func flock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
