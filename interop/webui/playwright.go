//go:build unix

package webui

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/npmcache"
)

// PlaywrightVersion is the npm playwright-core release the tests drive
// Chromium with. Only the library is installed: browsers are never
// downloaded (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1), the tests use the
// system's /usr/bin/chromium.
const PlaywrightVersion = "1.65.1"

// PlaywrightDirEnv, when set, names the directory (holding node_modules)
// to install playwright-core into instead of the user cache.
const PlaywrightDirEnv = "MESHGO_PLAYWRIGHT_DIR"

// PlaywrightCacheDir is $MESHGO_PLAYWRIGHT_DIR, or
// $(os.UserCacheDir())/meshgo/playwright-core-<version>, beside the
// MeshCentral install of internal/mctest.
func PlaywrightCacheDir() (string, error) {
	return npmcache.CacheDir(PlaywrightDirEnv, "playwright-core", PlaywrightVersion)
}

// InstallPlaywright makes sure npm playwright-core@PlaywrightVersion is
// installed in PlaywrightCacheDir and returns its
// node_modules/playwright-core directory (for require()). Processes are
// serialised with a file lock; an install is built in a temporary
// directory and renamed into place with a completion marker, so a broken
// or concurrent install is never used.
func InstallPlaywright(logf func(string, ...any)) (string, error) {
	dir, err := PlaywrightCacheDir()
	if err != nil {
		return "", err
	}
	return npmcache.Ensure(npmcache.Package{
		Name: "playwright-core", Version: PlaywrightVersion, Dir: dir,
		ProjectName: "meshgo-playwright", NPMArgs: []string{"--ignore-scripts"},
		Env: []string{"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1"}, Timeout: 5 * time.Minute, LogPrefix: "webui",
	}, logf)
}

// ChromiumPath is Debian's chromium (apt-get install chromium; listed in
// .ci/packages.txt). CHROMIUM overrides it.
func ChromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// RequireBrowserTools skips the test off linux/amd64 and fails it, saying
// what is missing, when Chromium or one of tools is not installed: in CI
// these tests must run, never skip.
func RequireBrowserTools(t testing.TB, what string, tools ...string) {
	t.Helper()
	if runtime.GOARCH != "amd64" {
		t.Skipf("%s tests run on linux/amd64 only (this is linux/%s)", what, runtime.GOARCH)
	}
	var missing []string
	if _, err := os.Stat(ChromiumPath()); err != nil {
		missing = append(missing, "chromium ("+ChromiumPath()+")")
	}
	for _, p := range tools {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("missing %s: install them from .ci/packages.txt (.ci/run does)", strings.Join(missing, ", "))
	}
}
