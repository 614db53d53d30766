package terminal

import (
	"testing"

	"github.com/meshgo/meshagent/proto/session"
)

// Protocols 8 and 9 start cmd and PowerShell as the logged-in user
// instead of refusing. Run by a user (here, and under wine) that user is
// the agent's own account; as the service the shell gets the session
// user's token (not run here: no service session 0 under wine).
func TestUserShellStarts(t *testing.T) {
	for _, proto := range []int{session.ProtoUserShell, session.ProtoUserPS} {
		p, err := start(spawnSpec{protocol: proto, cols: 80, rows: 25})
		if err != nil {
			if proto == session.ProtoUserPS {
				t.Logf("protocol %d: %v (no PowerShell here)", proto, err)
				continue
			}
			t.Fatalf("protocol %d: %v", proto, err)
		}
		if p.Pid() <= 0 {
			t.Errorf("protocol %d: pid %d", proto, p.Pid())
		}
		p.Kill()
		p.Close()
	}
}
