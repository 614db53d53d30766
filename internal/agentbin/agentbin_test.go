package agentbin

import (
	"os"
	"testing"
)

func TestBuildOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	defer Cleanup()
	p := MustBuild(t)
	st, err := os.Stat(p)
	if err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("built %s: %v %v", p, st, err)
	}
	if q, err := Build(); q != p || err != nil {
		t.Fatalf("second Build = %q, %v; want %q", q, err, p)
	}
}
