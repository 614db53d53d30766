package agentflags

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTagsLeaveOutHTTP2 checks that the go tool accepts Tags for the
// agent's package and that, built with them, the agent has no HTTP/2 code
// (net/http's bundled HTTP/2 is what pulls in hpack).
func TestTagsLeaveOutHTTP2(t *testing.T) {
	if Tags == "" || strings.ContainsAny(Tags, " \t\n") {
		t.Fatalf("Tags = %q", Tags)
	}
	out, err := exec.Command("go", "list", "-deps", "-tags", Tags, "github.com/meshgo/meshagent/cmd/meshagent").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -tags %s: %v\n%s", Tags, err, out)
	}
	if strings.Contains(string(out), "/http2/hpack") {
		t.Fatalf("built with -tags %s the agent still links HTTP/2 (hpack)", Tags)
	}
}
