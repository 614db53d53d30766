package sessionworker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
)

// TestMain lets the test binary be its own session worker: the Manager
// under test starts os.Args[0] with the worker command, as the agent
// starts meshagent.exe.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == WorkerCommand {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		if err := RunWorker(context.Background(), os.Args[2:], os.Stderr, log); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
