//go:build linux

package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

// The update commands against our agent run in the foreground (not as a
// service, as servertest starts it): the version is listed, and a rollout
// offers nothing to it (nothing would restart it) and says why; with the
// very binary it runs in the builds directory it is "already current".
func TestUpdateCommandsForegroundAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a real agent")
	}
	bin, err := os.ReadFile(agentbin.MustBuild(t))
	if err != nil {
		t.Fatal(err)
	}
	dist := t.TempDir()
	served := filepath.Join(dist, "meshagent-linux-amd64")
	os.WriteFile(served, append(bin, []byte("another build")...), 0o755)
	srv := servertest.Start(t, servertest.Options{Configure: func(c *app.Config) { c.Downloads.Dir = dist }})
	srv.StartAgent(nil)
	node := srv.WaitCore(60 * time.Second).NodeID
	e := &liveEnv{t: t, app: srv, url: srv.URL, pass: srv.AdminPass, nodeID: node}

	var out string
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out, node+"\t") || !strings.HasSuffix(strings.TrimSpace(out), "\t0.1.0-dev") {
		if time.Now().After(deadline) {
			t.Fatalf("devices does not show the agent's version:\n%s", out)
		}
		time.Sleep(200 * time.Millisecond)
		out, _, _ = e.plain("devices")
	}

	out, errs, code := e.cli("update-agents", "--wait")
	if code != 0 || !strings.Contains(out, "skipped\tnot updatable: not running as a service") || !strings.Contains(out, "0 updated, 1 skipped") {
		t.Fatalf("update-agents: %d\n%s%s", code, out, errs)
	}
	out, _, _ = e.plain("updates")
	if !strings.Contains(out, "rollout") || !strings.Contains(out, "done") {
		t.Errorf("updates:\n%s", out)
	}
	os.WriteFile(served, bin, 0o755)
	out, errs, code = e.cli("update-agents", "--wait")
	if code != 0 || !strings.Contains(out, "done\talready on 0.1.0-dev") {
		t.Fatalf("update-agents with the running build: %d\n%s%s", code, out, errs)
	}
	evs, _, _ := e.cli("events")
	for _, want := range []string{"agent update skipped", "agent update already current"} {
		if !strings.Contains(evs, want) {
			t.Errorf("events lack %q:\n%s", want, evs)
		}
	}
	// A builds directory named by the request is for site administrators
	// only; the first administrator is one, so an empty one is refused
	// for having no builds, not for rights.
	if _, errs, code := e.cli("update-agents", "--dir", t.TempDir()); code == 0 || !strings.Contains(errs, "no agent builds") {
		t.Errorf("empty --dir: %d %s", code, errs)
	}
}

// plain runs a subcommand without --id.
func (e *liveEnv) plain(args ...string) (string, string, int) {
	e.t.Helper()
	var out, errb strings.Builder
	full := append([]string{args[0], "--url", e.url, "--pass", e.pass}, args[1:]...)
	code := run(context.Background(), full, &out, &errb)
	return out.String(), errb.String(), code
}
