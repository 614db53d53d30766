package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/meshgo/meshagent/agent/core"
)

func TestExitCodesAndErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := t.TempDir()
	os.WriteFile(filepath.Join(corrupt, core.IdentityFile), []byte("garbage"), 0o600)
	goodMSH := filepath.Join(dir, "good.msh")
	os.WriteFile(goodMSH, []byte("MeshServer=wss://127.0.0.1:1/agent.ashx\nServerID="+strings.Repeat("A", 96)+"\nMeshID=0x"+strings.Repeat("B", 96)+"\n"), 0o600)
	badMSH := filepath.Join(dir, "bad.msh")
	os.WriteFile(badMSH, []byte("CoreModule=evil\n"), 0o600)
	tests := []struct {
		args []string
		code int
		want string // a regexp matched against stdout and stderr
	}{
		{nil, exitUsage, "usage"},
		{[]string{"--version"}, exitOK, "meshagent "},
		{[]string{"-version"}, exitOK, "meshagent "},
		{[]string{"-info"}, exitOK, "agent id:"},
		{[]string{"frobnicate"}, exitUsage, "unknown command"},
		{[]string{"run", "--no-such-flag"}, exitUsage, "flag provided but not defined"},
		{[]string{"run", "--msh", filepath.Join(dir, "missing.msh")}, exitConfig, "(?i)no such file|cannot find the file|file not found"}, // Linux, Windows, wine
		{[]string{"run", "--msh", badMSH}, exitConfig, "not allowed"},
		{[]string{"run", "--msh", goodMSH, "--data", corrupt}, exitConfig, "corrupt"},
		{[]string{"-nodeid", "--data", dir}, exitConfig, "no agent identity"},
		{[]string{"run", "--msh", goodMSH, "--log-level", "loud"}, exitUsage, "log-level"},
	}
	for _, tc := range tests {
		var out, errOut bytes.Buffer
		code := run(tc.args, &out, &errOut)
		if code != tc.code || !regexp.MustCompile(tc.want).MatchString(out.String()+errOut.String()) {
			t.Errorf("meshagent %v: exit %d, want %d; output %q, want it to contain %q", tc.args, code, tc.code, out.String()+errOut.String(), tc.want)
		}
	}
	// The corrupt identity was left alone.
	if b, _ := os.ReadFile(filepath.Join(corrupt, core.IdentityFile)); string(b) != "garbage" {
		t.Fatal("corrupt identity replaced")
	}
}
