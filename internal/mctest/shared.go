package mctest

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

// GeoDomain is a domain of the Shared server (Domain(t, GeoDomain)) with
// IP location on: MeshCentral asks each agent that connects there for its
// public IP location ("iplocation") and keeps and shows it
// ("geolocation"). It is a domain of its own so that agents of other
// tests are never asked: they would ask a service on the Internet.
const GeoDomain = "geo"

// sharedOptions are the Shared server's.
var sharedOptions = Options{SSH: true, Domains: map[string]map[string]any{
	GeoDomain: {"ipLocation": true, "geoLocation": true},
}}

var shared struct {
	mu      sync.Mutex
	inMain  bool
	srv     *Server
	root    string
	err     error
	started bool
}

// Main runs the package's tests and then stops the server Shared started,
// if any. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(mctest.Main(m)) }
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		if err := shared.srv.stop(); err != nil {
			fmt.Fprintf(os.Stderr, "mctest: stop shared MeshCentral: %v\n", err)
		}
		if code != 0 {
			fmt.Fprintf(os.Stderr, "mctest: shared MeshCentral log tail (%s):\n%s\n", shared.srv.logPath, shared.srv.LogTail(60))
		}
	}
	if shared.root != "" {
		os.RemoveAll(shared.root)
	}
	return code
}

// Shared returns one MeshCentral server (started on the first call with
// default Options and SSH, so the device page offers Web-SSH, and the
// extra domain GeoDomain) that all
// tests of the package share; it is stopped by Main,
// which the package's TestMain must call (Shared fails the test otherwise).
// Tests sharing it should create their own device groups. If the test
// fails, the server's log tail is printed.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatalf("mctest: Shared needs the package's TestMain to call mctest.Main(m)")
	}
	if !shared.started {
		shared.started = true
		shared.err = func() error {
			mcDir, err := install(t.Logf)
			if err != nil {
				return err
			}
			root, err := os.MkdirTemp("", "mctest-shared-")
			if err != nil {
				return fmt.Errorf("create shared data dir: %w", err)
			}
			shared.root = root
			shared.srv, err = start(mcDir, root, sharedOptions, t.Logf)
			return err
		}()
	}
	if shared.err != nil {
		t.Fatalf("mctest: shared MeshCentral: %v", shared.err)
	}
	s := shared.srv
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mctest: shared MeshCentral log tail (%s):\n%s", s.logPath, s.LogTail(40))
		}
	})
	return s
}
