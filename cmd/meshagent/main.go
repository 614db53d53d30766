// Command meshagent is a drop-in replacement for MeshCentral's MeshAgent.
//
//	meshagent run      [--msh FILE] [--data DIR]   connect in the foreground
//	meshagent connect  [--msh FILE] [--data DIR]   same, as a temporary device
//	meshagent -nodeid  [--msh FILE] [--data DIR]   print the node id
//	meshagent -info                                print build and platform
//	meshagent --version
//
// The settings file defaults to the executable's path with ".msh" (as the
// C agent: /usr/local/mesh_services/meshagent/meshagent.msh); the data
// directory, which holds the identity, defaults to the settings file's.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/meshgo/meshagent/agent/core"
	"github.com/meshgo/meshagent/agent/sessionworker"
	"github.com/meshgo/meshagent/internal/memtrim"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure
	exitUsage  = 2 // bad command line
	exitConfig = 3 // unusable settings or identity
)

// Set at build time with -ldflags "-X main.version=... -X main.commitDate=...".
var (
	version    = "0.1.0-dev"
	commitDate = "2026-Nov-23 00:00:00+0000"
)

func main() {
	tuneGC()
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// tuneGC sets the collector for the script runtime's allocation pattern
// unless GOGC or GOMEMLIMIT say otherwise: GOGC=400 brings goja's string
// building and JSON level with the C agent's Duktape (agent/script's
// jsbench). At 400 the heap would grow to at least 16 MiB before any
// collection, and a file transfer's garbage filled that headroom (peak RSS
// 28-41 MB against the C agent's 12, interop BenchmarkSessions), so a
// soft memory limit follows the live heap instead (memtrim.Govern): 8 MiB
// while the heap is small, GOGC's ratio above that, and at most 32 MiB,
// the fixed limit it replaces (16 MiB made the collector run 20-80 times
// a second during a desktop session, whose previous-frame copy alone is
// 8 MB at 1080p; the ceiling still bounds that case the same way).
// GOGC=400 pays only while the core runs JS, so once the script host
// exists the governor sets a low GOGC (memtrim's leanPercent) for a
// small heap whenever the core is quiet (memGovernor.LeanWhen, wired in
// newScriptHost).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		memGovernor = memtrim.Govern(memFloor, memCeiling)
	}
}

// memGovernor is the running memory policy, nil when GOMEMLIMIT is set.
var memGovernor *memtrim.Governor

// The agent's soft memory limit range (see tuneGC).
const (
	memFloor   = 8 << 20
	memCeiling = 32 << 20
)

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	cmd, rest := strings.TrimLeft(args[0], "-"), args[1:]
	switch cmd {
	case "version":
		fmt.Fprintf(stdout, "meshagent %s (%s, %s/%s, %s)\n", version, commitDate, runtime.GOOS, runtime.GOARCH, runtime.Version())
		return exitOK
	case "info":
		fmt.Fprintf(stdout, "version: %s\ncommit date: %s\nplatform: %s/%s\nagent id: %d\nhost: %s\n",
			version, commitDate, runtime.GOOS, runtime.GOARCH, core.DefaultAgentID(), core.DetectHostInfo())
		return exitOK
	case "run", "connect", "nodeid":
		return runAgent(cmd, rest, stdout, stderr)
	case "help", "h":
		usage(stdout)
		return exitOK
	case "install", "fullinstall", "finstall":
		return cmdInstall(cmd, rest, stdout, stderr)
	case "uninstall", "fulluninstall", "funinstall":
		return cmdUninstall(cmd, rest, stdout, stderr)
	case "start", "stop", "restart", "status", "state":
		return cmdControl(cmd, rest, stdout, stderr)
	case "service-run":
		return cmdServiceRun(rest, stdout, stderr)
	case WatchdogCommand:
		return cmdWatchdog(rest, stdout, stderr)
	case sessionworker.WorkerCommand:
		// Hidden: the service starts this in a user's Windows session.
		return runSessionWorker(rest, stderr)
	}
	fmt.Fprintf(stderr, "meshagent: unknown command %q\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  meshagent run     [--msh FILE] [--data DIR] [--log-level debug|info|warn|error]
  meshagent connect [--msh FILE] [--data DIR]   run as a temporary device
  meshagent -nodeid [--msh FILE] [--data DIR]   print this agent's node id
  meshagent -info | --version
  meshagent -install | -fullinstall [--installPath=DIR] [--meshServiceName=NAME] [--dry-run]   install as a service
  meshagent -uninstall | -fulluninstall   remove the service (full: also its settings, identity and logs)
  meshagent start | stop | restart | status   control the installed service
`)
}

type options struct {
	msh, data, logLevel string
	handshakeTimeout    time.Duration
}

func parseOptions(cmd string, args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("meshagent "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.msh, "msh", "", "settings file (default: the executable's path with .msh)")
	fs.StringVar(&o.data, "data", "", "data directory for identity and state (default: the settings file's directory)")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.DurationVar(&o.handshakeTimeout, "handshake-timeout", 30*time.Second, "give up on a server that has not authenticated within this time")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.msh == "" {
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("locate executable: %w", err)
		}
		o.msh = strings.TrimSuffix(exe, ".exe") + ".msh"
		// A download from MeshCentral (or server-lite) may carry the
		// group's .msh appended to the binary: written out beside it on
		// first start, as the C agent does. A settings file there wins.
		if wrote, err := core.ExtractEmbeddedMSH(exe, o.msh); err != nil {
			fmt.Fprintf(stderr, "meshagent: settings appended to the executable not used: %v\n", err)
		} else if wrote {
			fmt.Fprintf(stderr, "meshagent: wrote %s from the settings appended to the executable\n", o.msh)
		}
	}
	if o.data == "" {
		o.data = filepath.Dir(o.msh)
	}
	return o, nil
}

func runAgent(cmd string, args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(cmd, args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintf(stderr, "meshagent: %v\n", err)
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "meshagent: --log-level: %v\n", err)
		return exitUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	if cmd == "nodeid" {
		id, err := core.LoadIdentity(o.data)
		if err != nil {
			fmt.Fprintf(stderr, "meshagent: %v\n", err)
			return exitConfig
		}
		fmt.Fprintln(stdout, id.NodeIDString())
		return exitOK
	}

	b, err := buildAgent(o, cmd == "connect", log)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent: %v\n", err)
		if errors.Is(err, errConfig) {
			return exitConfig
		}
		return exitFail
	}
	defer b.close()
	log.Info("meshagent starting", "version", version, "node_id", b.identity.NodeIDString(), "settings", o.msh, "group", b.settings.Get(core.MSHMeshName))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b.agent.Run(ctx)
	log.Info("meshagent stopped")
	return exitOK
}
