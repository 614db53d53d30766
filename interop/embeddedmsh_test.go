//go:build linux

package interop

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

// TestAgentReadsAppendedMsh: our agent binary with the group's .msh
// appended as MeshCentral (and server-lite's /meshagents) lay it out —
// the .msh, its length big-endian, the policy GUID — started with no
// settings file beside it, writes that file out (0600) and comes online
// in the group, as the C agent does (agentcore.c checkForEmbeddedMSH).
func TestAgentReadsAppendedMsh(t *testing.T) {
	srv := servertest.Start(t, servertest.Options{})
	dir := t.TempDir()
	bin, err := os.ReadFile(agentBin)
	if err != nil {
		t.Fatal(err)
	}
	msh := srv.Msh()
	guid, _ := hex.DecodeString("B996015880544A19B7F7E9BE44914C19")
	bin = append(bin, msh...)
	bin = binary.BigEndian.AppendUint32(bin, uint32(len(msh)))
	bin = append(bin, guid...)
	exe := filepath.Join(dir, "meshagent")
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	log := &syncBuffer{}
	cmd := exec.Command(exe, "run")
	cmd.Dir = dir
	cmd.Env = agentbin.Env()
	cmd.Stdout, cmd.Stderr = log, log
	done := agentbin.Run(t, cmd, log)
	deadline := time.Now().Add(60 * time.Second)
	for len(srv.Agents.Agents()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not come online within 60 s")
		}
		select {
		case <-done:
			t.Fatalf("the agent exited: %s", log.String())
		case <-time.After(200 * time.Millisecond):
		}
	}
	if a := srv.Agents.Agents()[0]; a.GroupID != srv.DefaultGroup.ID {
		t.Fatalf("online in group %q, want %q", a.GroupID, srv.DefaultGroup.ID)
	}
	written := filepath.Join(dir, "meshagent.msh")
	b, err := os.ReadFile(written)
	if err != nil || !bytes.Equal(b, msh) {
		t.Fatalf("written settings %q %v", b, err)
	}
	if fi, _ := os.Stat(written); fi.Mode().Perm() != 0o600 {
		t.Fatalf("settings file mode %v", fi.Mode())
	}
	if !strings.Contains(log.String(), "wrote "+written) {
		t.Errorf("the agent did not say it wrote the settings: %s", log.String())
	}
}
