package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/meshgo/meshagent/internal/winres"
)

// The committed .syso is what the generator makes for main.version now,
// so a changed generator or version cannot ship a stale resource.
func TestWindowsResourceCurrent(t *testing.T) {
	got, err := os.ReadFile("rsrc_windows_amd64.syso")
	if err != nil {
		t.Fatal(err)
	}
	want, err := winres.Agent(version)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("rsrc_windows_amd64.syso is stale: run go generate ./cmd/meshagent")
	}
}
