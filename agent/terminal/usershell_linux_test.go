package terminal

import (
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/meshgo/meshagent/agent/osuser"
	"github.com/meshgo/meshagent/proto/session"
)

// Protocol 8 runs the shell as the console user (here "nobody", standing in
// for logind's active user), on a terminal that user owns.
func TestUserShellRunsAsConsoleUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("switching users needs root")
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no nobody user")
	}
	seat := filepath.Join(t.TempDir(), "seat0")
	os.WriteFile(seat, []byte("IS_SEAT0=1\nACTIVE=c1\nACTIVE_UID="+u.Uid+"\n"), 0o644)
	old := consoleUser
	consoleUser = (&osuser.Detector{SeatFile: seat}).Console
	t.Cleanup(func() { consoleUser = old })

	info := adminInfo("")
	info.Protocol = session.ProtoUserShell
	c := startTerm(t, pipeTransport, info)
	c.send(true, "echo uid=$(id -u) ttyowner=$(stat -c %u $(tty)) home=$HOME\n")
	m := c.waitOutput(regexp.MustCompile(`uid=(\d+) ttyowner=(\d+) home=(\S*)`))
	if m[1] != u.Uid || m[2] != u.Uid || m[3] != u.HomeDir {
		t.Fatalf("got uid=%s tty owner=%s home=%s, want %s/%s/%s", m[1], m[2], m[3], u.Uid, u.Uid, u.HomeDir)
	}
}
