package sessionworker

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"
)

// shellCmd is a one-line shell command for this OS.
func shellCmd(line string) (string, []string) {
	if runtime.GOOS == "windows" {
		return "cmd.exe", []string{"/c", line}
	}
	return "/bin/sh", []string{"-c", line}
}

// The service's run request runs a command in the worker and returns
// its output and exit code; a command that outlives its timeout is
// reported as timed out; a missing program is an error answer.
func TestRunRequest(t *testing.T) {
	c, _ := startWorker(t, WorkerOptions{Desktop: echoDesktop("w")}, Handler{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	file, args := shellCmd("echo hello-from-worker")
	r, err := c.Run(ctx, RunRequest{File: file, Args: args, Timeout: 30 * time.Second})
	if err != nil || !strings.Contains(r.Stdout, "hello-from-worker") || r.Code != 0 {
		t.Fatalf("Run = %+v, %v", r, err)
	}
	file, args = shellCmd("exit 3")
	if r, err := c.Run(ctx, RunRequest{File: file, Args: args, Timeout: 30 * time.Second}); err != nil || r.Code != 3 {
		t.Errorf("exit 3: %+v, %v", r, err)
	}
	if runtime.GOOS != "windows" {
		file, args = shellCmd("sleep 5")
		if r, err := c.Run(ctx, RunRequest{File: file, Args: args, Timeout: 200 * time.Millisecond}); err != nil || !r.TimedOut {
			t.Errorf("sleep past the timeout: %+v, %v", r, err)
		}
	}
	if _, err := c.Run(ctx, RunRequest{File: "/no/such/program"}); err == nil {
		t.Error("a missing program ran")
	}
	if _, err := c.Run(ctx, RunRequest{}); err == nil {
		t.Error("an empty command ran")
	}
}
