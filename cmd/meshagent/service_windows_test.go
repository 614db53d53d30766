package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// helperArg marks the test binary started by the SCM as the service.
const helperArg = "-meshagent-service-helper"

// TestServiceHelper is the service process: the SCM starts this test
// binary with -test.run=^TestServiceHelper$ and helperArg, and it runs the
// agent's service command exactly as meshagent.exe service-run would.
func TestServiceHelper(t *testing.T) {
	args := os.Args
	for i, a := range args {
		if a == helperArg {
			os.Exit(cmdServiceRun(args[i+1:], os.Stdout, os.Stderr))
		}
	}
	t.Skip("only the SCM runs this (TestServiceThroughSCM)")
}

// TestServiceThroughSCM registers the agent's service command with the
// real service control manager, starts it, waits for RUNNING (which the
// agent reports itself, svc.Run), stops it and deletes it.
func TestServiceThroughSCM(t *testing.T) {
	m, err := mgr.Connect()
	if err != nil {
		t.Skipf("no access to the SCM (needs an administrator): %v", err)
	}
	defer m.Disconnect()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	msh := filepath.Join(dir, "meshagent.msh")
	// A server that refuses connections: the agent keeps retrying, which
	// is all a running service needs to do here.
	os.WriteFile(msh, []byte("MeshServer=wss://127.0.0.1:1/agent.ashx\nServerID="+strings.Repeat("A", 96)+"\nMeshID=0x"+strings.Repeat("B", 96)+"\n"), 0o600)
	data := filepath.Join(dir, "data")
	name := fmt.Sprintf("meshgotest%d", os.Getpid())
	s, err := m.CreateService(name, exe, mgr.Config{DisplayName: name, StartType: mgr.StartManual},
		"-test.run=^TestServiceHelper$", "--", helperArg, "--msh", msh, "--data", data)
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	defer func() {
		s.Control(svc.Stop)
		s.Delete()
		s.Close()
	}()
	if err := s.Start(); err != nil {
		t.Fatalf("start: %v", err)
	}
	waitState(t, s, svc.Running)
	if _, err := s.Control(svc.Stop); err != nil {
		t.Fatalf("stop: %v", err)
	}
	waitState(t, s, svc.Stopped)
	if st, _ := s.Query(); st.Win32ExitCode != 0 && st.Win32ExitCode != uint32(windows.ERROR_SERVICE_SPECIFIC_ERROR) {
		t.Errorf("exit code %d", st.Win32ExitCode)
	} else if st.Win32ExitCode != 0 {
		t.Errorf("service-specific exit code %d", st.ServiceSpecificExitCode)
	}
	if log, err := os.ReadFile(filepath.Join(data, "meshagent.log")); err != nil || !strings.Contains(string(log), "meshagent stopped") {
		t.Errorf("agent log (%v):\n%s", err, log)
	}
}

func waitState(t *testing.T, s *mgr.Service, want svc.State) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := s.Query()
		if err != nil {
			t.Fatalf("query: %v", err)
		}
		if st.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("service state %d after 30 s, want %d", st.State, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
