// Package npmcache installs one pinned npm package into its own cache
// directory, safely shared by concurrent processes: installs are
// serialised with a file lock, built in a temporary directory and renamed
// into place, and only used once a completion marker has been written.
package npmcache

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
	"time"
)

// Marker is the file written into an install directory once npm has
// finished and the result has been checked.
const Marker = ".meshgo-install-complete"

// Package says what to install and where.
type Package struct {
	// Name and Version are the npm package, e.g. "meshcentral", "1.1.55".
	Name, Version string
	// Dir is the directory that holds node_modules.
	Dir string
	// UserDir means Dir was chosen by the user: an install of Version
	// there is trusted without the marker, and an existing Dir is
	// installed into in place and never deleted.
	UserDir bool
	// ProjectName is the name in the package.json written to a new
	// directory (without one npm looks for a project in parent
	// directories).
	ProjectName string
	// NPMArgs are extra arguments to `npm install`; Env is extra
	// environment for npm.
	NPMArgs, Env []string
	// Timeout bounds npm install (default 10 minutes).
	Timeout time.Duration
	// LogPrefix starts the progress lines passed to logf.
	LogPrefix string
}

var (
	mu   sync.Mutex
	done = map[string]string{}
)

// CacheDir returns $envVar when set (made absolute), otherwise
// $(os.UserCacheDir())/meshgo/<name>-<version>.
func CacheDir(envVar, name, version string) (string, error) {
	if d := os.Getenv(envVar); d != "" {
		return filepath.Abs(d)
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("user cache dir: %w", err)
	}
	return filepath.Join(base, "meshgo", name+"-"+version), nil
}

// Ensure makes sure p is installed in p.Dir, installing it with npm when
// missing, and returns its node_modules/<name> directory. A result is
// remembered for the life of the process.
func Ensure(p Package, logf func(string, ...any)) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	key := p.Dir + "\x00" + p.Name + "@" + p.Version
	if m, ok := done[key]; ok {
		return m, nil
	}
	m, err := ensure(p, logf)
	if err == nil {
		done[key] = m
	}
	return m, err
}

func ensure(p Package, logf func(string, ...any)) (string, error) {
	dir := p.Dir
	mod := filepath.Join(dir, "node_modules", p.Name)
	if Complete(p) {
		return mod, nil
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("npm is required to install %s@%s into %s but was not found in PATH: %w", p.Name, p.Version, dir, err)
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
	if Complete(p) {
		return mod, nil
	}
	if _, err := os.Stat(dir); err == nil && p.UserDir {
		// A directory chosen by the user: install in place, never delete it.
		if err := npmInstall(p, dir, logf); err != nil {
			return "", err
		}
		if err := writeMarker(p, dir); err != nil {
			return "", err
		}
		return mod, nil
	}
	tmp := fmt.Sprintf("%s.tmp-%d", dir, os.Getpid())
	if err := os.RemoveAll(tmp); err != nil {
		return "", fmt.Errorf("clean %s: %w", tmp, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", tmp, err)
	}
	defer os.RemoveAll(tmp)
	if err := npmInstall(p, tmp, logf); err != nil {
		return "", err
	}
	if err := writeMarker(p, tmp); err != nil {
		return "", err
	}
	// Anything left at dir is an incomplete install from an older run: we hold the lock.
	if err := os.RemoveAll(dir); err != nil {
		return "", fmt.Errorf("remove incomplete install %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("move %s install into place: %w", p.Name, err)
	}
	if !Complete(p) {
		return "", fmt.Errorf("%s@%s install in %s is incomplete after npm install", p.Name, p.Version, dir)
	}
	return mod, nil
}

// Complete reports whether p.Dir holds a finished install of p.Version:
// node_modules/<name>/package.json names the version and the marker is
// there (not needed when p.UserDir).
func Complete(p Package) bool {
	b, err := os.ReadFile(filepath.Join(p.Dir, "node_modules", p.Name, "package.json"))
	if err != nil {
		return false
	}
	var pkg struct {
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &pkg) != nil || pkg.Version != p.Version {
		return false
	}
	if p.UserDir {
		return true
	}
	_, err = os.Stat(filepath.Join(p.Dir, Marker))
	return err == nil
}

func writeMarker(p Package, dir string) error {
	if err := os.WriteFile(filepath.Join(dir, Marker), []byte(p.Version+"\n"), 0o644); err != nil {
		return fmt.Errorf("write install marker: %w", err)
	}
	return nil
}

func npmInstall(p Package, dir string, logf func(string, ...any)) error {
	pkgJSON := filepath.Join(dir, "package.json")
	if _, err := os.Stat(pkgJSON); errors.Is(err, os.ErrNotExist) {
		b, _ := json.Marshal(map[string]any{"name": p.ProjectName, "private": true})
		if err := os.WriteFile(pkgJSON, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write package.json: %w", err)
		}
	}
	logf("%s: installing %s@%s into %s with npm", p.LogPrefix, p.Name, p.Version, dir)
	start := time.Now()
	timeout := p.Timeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append([]string{"install", "--no-audit", "--no-fund"}, p.NPMArgs...)
	cmd := exec.CommandContext(ctx, "npm", append(args, p.Name+"@"+p.Version)...)
	cmd.Dir = dir
	if len(p.Env) > 0 {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("npm install %s@%s in %s: %w\n%s", p.Name, p.Version, dir, err, tail(string(out), 40))
	}
	logf("%s: npm install of %s@%s done in %s", p.LogPrefix, p.Name, p.Version, time.Since(start).Round(time.Second))
	return nil
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
