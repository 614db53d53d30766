package update

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Child modes of this test binary: it stands in for a running agent.
const (
	envSleep = "MESHAGENT_UPDATE_TEST_SLEEP" // sleep this long, then exit
	envTouch = "MESHAGENT_UPDATE_TEST_TOUCH" // write this file, then exit
)

func TestMain(m *testing.M) {
	if p := os.Getenv(envTouch); p != "" {
		os.WriteFile(p, []byte("watchdog ran"), 0o644)
		os.Exit(0)
	}
	if d := os.Getenv(envSleep); d != "" {
		t, _ := time.ParseDuration(d)
		time.Sleep(t)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestReplaceRunningExe replaces the binary of a running process (on
// Windows the running .exe can only be renamed aside) and restores it,
// with the process still running throughout.
func TestReplaceRunningExe(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "meshagent")
	if runtime.GOOS == "windows" {
		exe += ".exe"
	}
	os.WriteFile(exe, old, 0o755)
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envSleep+"=60s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Kill()
		<-exited
	}()
	time.Sleep(500 * time.Millisecond) // let it map its image

	newer := append(bytes.Clone(old), []byte("version 2")...)
	next := tempPath(exe, "0123456789abcdef0123")
	os.WriteFile(next, newer, 0o755)
	prev := PreviousPath(exe)
	if err := Replace(exe, next, prev); err != nil {
		t.Fatalf("Replace while running: %v", err)
	}
	if b, _ := os.ReadFile(exe); !bytes.Equal(b, newer) {
		t.Error("new binary not in place")
	}
	if b, _ := os.ReadFile(prev); !bytes.Equal(b, old) {
		t.Error("previous binary not kept")
	}
	if _, err := os.Stat(next); err == nil {
		t.Error("download still there")
	}
	select {
	case err := <-exited:
		t.Fatalf("running process ended: %v", err)
	default:
	}
	// Restore while the old image (now at prev) still runs.
	if err := Restore(exe, prev); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if b, _ := os.ReadFile(exe); !bytes.Equal(b, old) {
		t.Error("previous binary not restored")
	}
	if _, err := os.Stat(prev); err == nil {
		t.Error("previous path left after the restore")
	}
	select {
	case err := <-exited:
		t.Fatalf("running process ended: %v", err)
	default:
	}
}

// TestDetach starts a process that outlives its parent's wait.
func TestDetach(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(t.TempDir(), "ran")
	t.Setenv(envTouch, marker)
	t.Setenv("INVOCATION_ID", "") // not under systemd here: no systemd-run
	if err := Detach(self, []string{"-test.run=^$"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if b, err := os.ReadFile(marker); err == nil && string(b) == "watchdog ran" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("detached process did not run")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
