package main

// Self-update wiring (agent/update): the updater for the service run, and
// the "update-watchdog" subcommand the previous binary runs during a
// new binary's trial.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/meshgo/meshagent/agent/install"
	"github.com/meshgo/meshagent/agent/update"
)

// exitRestart is the exit code after a new binary was put in place: any
// non-zero code makes the service manager restart the service (systemd
// Restart=on-failure, the SCM's recovery actions with
// FailureActionsOnNonCrash, launchd KeepAlive SuccessfulExit=false), and
// this one says why in its status.
const exitRestart = 10

// WatchdogCommand is the subcommand the previous binary runs.
const WatchdogCommand = "update-watchdog"

// newUpdater builds the updater. Outside a service it still answers the
// server's version query, and refuses offers.
func newUpdater(o options, log *slog.Logger) (*update.Updater, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	cfg := update.Config{Exe: exe, DataDir: o.data, Version: version, Logger: log, Service: runningAsService}
	if runningAsService != "" {
		cfg.WatchdogArgs = []string{WatchdogCommand, "--data=" + o.data, "--msh=" + o.msh,
			"--installPath=" + filepath.Dir(exe), "--meshServiceName=" + runningAsService}
		cfg.Restart = func() {
			log.Info("exiting for the service manager to start the new binary", "exit_code", exitRestart)
			os.Exit(exitRestart)
		}
	}
	return update.New(cfg)
}

// cmdWatchdog runs the trial watchdog (agent/update.Watch) with the
// service found from its arguments, logging to stderr (the journal under
// systemd-run) and to update-watchdog.log in the data directory.
func cmdWatchdog(args []string, stdout, stderr io.Writer) int {
	kv, err := parseServiceArgs(filterData(args), stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", WatchdogCommand, err)
		return exitUsage
	}
	data := dataArg(args)
	if data == "" {
		fmt.Fprintf(stderr, "meshagent %s: --data is required\n", WatchdogCommand)
		return exitUsage
	}
	handlers := []slog.Handler{slog.NewTextHandler(stderr, nil)}
	if f, err := os.OpenFile(filepath.Join(data, "update-watchdog.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600); err == nil {
		defer f.Close()
		handlers = append(handlers, slog.NewTextHandler(f, nil))
	}
	log := slog.New(slog.NewMultiHandler(handlers...))
	p, root, err := servicePlan(kv, io.Discard, true)
	if err != nil {
		log.Error("update watchdog: no service plan", "err", err)
		return exitConfig
	}
	m, err := install.DetectManager(p, root, nil)
	if err != nil {
		log.Error("update watchdog: no service manager", "err", err)
		return exitFail
	}
	svc := managedService{m: m, p: p}
	ctx := context.Background()
	if err := update.Watch(ctx, data, svc, log, time.Second); err != nil {
		log.Error("update watchdog failed", "err", err)
		return exitFail
	}
	return exitOK
}

// managedService adapts an install.Manager to update.Service.
type managedService struct {
	m install.Manager
	p *install.Plan
}

func (s managedService) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return s.m.Stop(ctx, s.p)
}

func (s managedService) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if _, ok := s.m.(*install.Systemd); ok {
		// A binary that crashed at every start may have hit the unit's
		// start limit; systemctl start refuses such a unit until reset.
		exec.CommandContext(ctx, "systemctl", "reset-failed", s.p.ServiceName+".service").Run()
	}
	return s.m.Start(ctx, s.p)
}

// dataArg and filterData take --data out of the service options.
func dataArg(args []string) string {
	for i, a := range args {
		if v, ok := cutFlag(a, "data"); ok {
			return v
		}
		if (a == "--data" || a == "-data") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return ""
}

func filterData(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		if _, ok := cutFlag(args[i], "data"); ok {
			continue
		}
		if args[i] == "--data" || args[i] == "-data" {
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

func cutFlag(a, name string) (string, bool) {
	for _, p := range []string{"--" + name + "=", "-" + name + "="} {
		if len(a) > len(p) && a[:len(p)] == p {
			return a[len(p):], true
		}
	}
	return "", false
}
