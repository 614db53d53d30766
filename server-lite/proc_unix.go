//go:build unix

package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/meshgo/meshagent/server-lite/app"
)

// ownProcessGroup starts cmd in its own process group, so that stopping
// it signals whatever it started too. On Linux the child is also killed
// when the server dies, even by SIGKILL (diesWithParent): an orphaned
// agent kept the binary busy and the restarted server could not start its
// own (issue 20, finding 9).
func ownProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	diesWithParent(cmd.SysProcAttr)
}

// stopLocalAgent interrupts the agent's process group, then kills it if it
// has not exited within 5 s.
func stopLocalAgent(cmd *exec.Cmd) {
	pgid := cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGINT)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}

// memoryReportOnSignal collects garbage and returns freed memory to the OS
// on SIGUSR1, then logs the heap figures: the load generator uses it so
// that RSS per agent reflects live memory rather than GC pacing. With a
// heapProfile path it also writes a heap profile there each time.
func memoryReportOnSignal(log *slog.Logger, heapProfile string) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	for range ch {
		debug.FreeOSMemory()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		log.Info("memory", "heapInUseMB", m.HeapInuse>>20, "stackInUseMB", m.StackInuse>>20, "goroutines", runtime.NumGoroutine())
		if heapProfile != "" {
			if err := writeHeapProfile(heapProfile); err != nil {
				log.Warn("heap profile", "err", err)
			}
		}
	}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create heap profile: %w", err)
	}
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write heap profile: %w", err)
	}
	return f.Close()
}

// reloadOnSignal reloads the administrator's web certificate on SIGHUP.
func reloadOnSignal(log *slog.Logger, a *app.App) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	for range ch {
		changed, err := a.ReloadWebCert()
		switch {
		case err != nil:
			log.Error("SIGHUP: web certificate not reloaded; the previous one is still served", "err", err)
		case !changed:
			log.Info("SIGHUP: web certificate unchanged")
		}
	}
}
