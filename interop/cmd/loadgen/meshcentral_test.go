//go:build linux

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meshgo/meshagent/internal/mctest"
)

// TestLoadMeshCentral runs the same load against the real MeshCentral
// 1.1.55, for figures side by side with server-lite's. It is a measuring
// program dressed as a test (so it can use internal/mctest), not a check:
// it runs only when LOADGEN_MESHCENTRAL is set to the number of agents.
//
//	LOADGEN_MESHCENTRAL=1000 go test ./interop/cmd/loadgen -run MeshCentral -v -timeout 60m
//
// LOADGEN_ANNOUNCE=1 adds what -announce does: agents send coreinfo,
// netinfo and sysinfo as a real core would.
func TestLoadMeshCentral(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("LOADGEN_MESHCENTRAL"))
	if n <= 0 {
		t.Skip("set LOADGEN_MESHCENTRAL=<agents> to measure MeshCentral")
	}
	srv := mctest.Start(t, mctest.Options{})
	meshID := srv.AddDeviceGroup(t, "load")
	msh := filepath.Join(t.TempDir(), "meshagent.msh")
	if err := os.WriteFile(msh, srv.MSH(t, meshID), 0o600); err != nil {
		t.Fatal(err)
	}
	pid := meshCentralPID(srv.DataDir())
	if pid == 0 {
		t.Fatal("MeshCentral process not found")
	}
	// MeshCentral allows agents from 127.0.0.1 and ::1 only (mctest config).
	err := run(config{n: n, conc: 32, keysDir: filepath.Join(os.TempDir(), "meshgo-loadgen-keys"), mshPath: msh, pid: pid, oneSource: true,
		announce: os.Getenv("LOADGEN_ANNOUNCE") != ""})
	if err != nil {
		t.Fatal(err)
	}
}

// meshCentralPID finds the parent "node meshcentral.js --datapath DIR"
// process; its descendants (the --launch worker and its helpers) are
// measured with it.
func meshCentralPID(dataDir string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		cmd := strings.Join(args, " ")
		if strings.Contains(cmd, "meshcentral.js") && strings.Contains(cmd, dataDir) && !strings.Contains(cmd, "--launch") {
			return pid
		}
	}
	return 0
}
