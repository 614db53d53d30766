// Package agentbin builds our agent binary (./cmd/meshagent) for tests, as
// a user builds it, once per test binary.
package agentbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/meshgo/meshagent/build/agentflags"
)

// Package is the import path that is built.
const Package = "github.com/meshgo/meshagent/cmd/meshagent"

// Tags are the build tags build/release.sh builds the agent with (their one
// source is build/agentflags), so tests run what ships.
var Tags = agentflags.Tags

// Build runs `go build` for Package into a new temporary directory the
// first time it is called and returns the binary's path (or the build
// error, with the compiler's output) every time. Building by import path
// works from any directory inside the module.
func Build() (string, error) {
	return native.get("go build meshagent", "meshagent-bin-", "meshagent", nil)
}

// oneBuild is one build of Package per test binary, made the first time
// it is asked for, in a temporary directory of its own that Cleanup
// removes.
type oneBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

var native, windows, release oneBuild

// get builds Package as name with env added to the environment and flags
// after the tags, the first time; what names the build in its error.
func (b *oneBuild) get(what, prefix, name string, env []string, flags ...string) (string, error) {
	b.once.Do(func() {
		b.dir, b.err = os.MkdirTemp("", prefix)
		if b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, name)
		args := append(append([]string{"build", "-tags", Tags}, flags...), "-o", b.bin, Package)
		cmd := exec.Command("go", args...)
		cmd.Env = append(os.Environ(), env...)
		if out, e := cmd.CombinedOutput(); e != nil {
			b.err = fmt.Errorf("%s: %v\n%s", what, e, out)
			return
		}
		// Write the fresh binary back to disk, as an installed one is: the
		// kernel cannot page out dirty page-cache pages, so an agent run
		// from a just-written file keeps its unused code resident and its
		// idle RSS would measure the build, not the agent.
		if f, err := os.Open(b.bin); err == nil {
			f.Sync()
			f.Close()
		}
	})
	return b.bin, b.err
}

// Env is the environment for an agent a test starts: the test's own, with
// extra appended, and HOME an empty directory. The agent's shells inherit
// it, and an interactive bash reads ~/.bashrc: this machine's root bashrc
// runs pyenv's prompt hook, seconds per prompt under load, which timed out
// every shell test there. Tests measure the agent, not the machine's
// dotfiles; the agent itself never reads HOME.
func Env(extra ...string) []string {
	env := os.Environ()
	if home, err := EmptyHome(); err == nil {
		// Go's build and module caches and the test caches (MeshCentral's
		// npm install) default to places under HOME: keep them where they
		// are, for a child that builds (server-lite's agent download).
		if c, err := os.UserCacheDir(); err == nil && os.Getenv("XDG_CACHE_HOME") == "" {
			env = append(env, "XDG_CACHE_HOME="+c)
		}
		if h, err := os.UserHomeDir(); err == nil && os.Getenv("GOPATH") == "" {
			env = append(env, "GOPATH="+filepath.Join(h, "go"))
		}
		env = append(env, "HOME="+home) // the last of a name wins for exec
	}
	return append(env, extra...)
}

// EmptyHome is the empty directory Env uses as HOME, made once per test
// binary; tests that run the agent's shells in their own process (the
// terminal package, interop/inproc) set HOME to it in TestMain.
func EmptyHome() (string, error) {
	homeOnce.Do(func() {
		home, homeErr = os.MkdirTemp("", "meshagent-home-")
	})
	return home, homeErr
}

// RunWithEmptyHome is a TestMain body for tests that run the agent's
// shells in their own process: HOME is EmptyHome and the shell start-up
// variables are unset for the whole run.
func RunWithEmptyHome(m *testing.M) int {
	home, err := EmptyHome()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(home)
	os.Setenv("HOME", home)
	for _, v := range []string{"BASH_ENV", "ENV", "PROMPT_COMMAND"} {
		os.Unsetenv(v)
	}
	return m.Run()
}

var (
	homeOnce sync.Once
	home     string
	homeErr  error
)

// MustBuild is Build for a test: it fails t if the build fails.
func MustBuild(t testing.TB) string {
	t.Helper()
	p, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BuildWindows builds Package for windows/amd64 (CGO_ENABLED=0, as the
// release is built) the first time it is called and returns the path of
// meshagent.exe every time: the tests that run the Windows agent under
// wine share one build per test binary.
func BuildWindows() (string, error) {
	return windows.get("GOOS=windows go build meshagent", "meshagent-winbin-", "meshagent.exe",
		[]string{"CGO_ENABLED=0", "GOOS=windows", "GOARCH=amd64"})
}

// BuildRelease builds Package for this platform as build/release.sh does
// (CGO_ENABLED=0, -trimpath, -ldflags "-s -w") the first time it is called
// and returns the binary's path every time. Build's binary links cgo where
// a C compiler exists (libjpeg-turbo for the desktop tests), so it maps
// libc and the dynamic loader: 1.2-1.5 MB more RssFile than what ships,
// which footprint benchmarks against the C agent must not count.
func BuildRelease() (string, error) {
	return release.get("release build of meshagent", "meshagent-relbin-", "meshagent",
		[]string{"CGO_ENABLED=0"}, "-trimpath", "-ldflags", "-s -w")
}

// Cleanup removes the binaries' directories; TestMain calls it after the
// tests have run. It does nothing if nothing was built.
func Cleanup() {
	for _, b := range []*oneBuild{&native, &windows, &release} {
		if b.dir != "" {
			os.RemoveAll(b.dir)
		}
	}
	if home != "" {
		os.RemoveAll(home)
	}
}
