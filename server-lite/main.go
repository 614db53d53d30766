// Command server-lite is a lean MeshCentral-compatible server: agent.ashx
// for the C MeshAgent and ours, core push, meshrelay.ashx, .msh files, and
// (from the admin API packages) control.ashx for meshctrl.
//
//	go run ./server-lite [flags]            run the server
//	go run ./server-lite <subcommand> ...   admin CLI (server-lite/cli)
//
// It binds 127.0.0.1 only.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/adminapi"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/app"
	"github.com/meshgo/meshagent/server-lite/cli"
)

func main() {
	if len(os.Args) > 1 && !strings.HasPrefix(os.Args[1], "-") {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(run())
}

func run() int {
	dataDir := flag.String("data", "./server-lite-data", "data directory (certificates, database, .msh); created 0700")
	listen := flag.String("listen", "127.0.0.1:4443", "address to serve HTTPS/WSS on (loopback only)")
	coreFile := flag.String("core", "", "JavaScript file pushed to agents as their core (default: a small built-in core)")
	localAgent := flag.String("local-agent", "", `start a local agent pointed at this server: "go" builds and runs ./cmd/meshagent, any other value is an agent binary (the C agent is run as "<path> run" in its own directory)`)
	verbose := flag.Bool("v", false, "debug logging")
	eventDays := flag.Int("event-days", 20, "days the event log keeps entries (MeshCentral's default is 20); 0 keeps them forever")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file until shutdown (for load measurements)")
	memProfile := flag.String("memprofile", "", "write a heap profile to this file on each SIGUSR1 (for load measurements)")
	loginFailures := flag.Int("login-failures", adminapi.DefaultLoginAddrFailures, "failed logins from one address within --login-window before its logins are refused; -1: no limit")
	loginAccountFailures := flag.Int("login-account-failures", adminapi.DefaultLoginAccountFailures, "failed logins for one account within --login-window before its password logins are refused; -1: no limit")
	loginWindow := flag.Duration("login-window", adminapi.DefaultLoginWindow, "window of the login limits (MeshCentral's default: 10m)")
	pendingPerAddr := flag.Int("handshakes-per-address", agentconn.DefaultMaxPendingPerAddr, "agent.ashx handshakes one address may have pending; -1: no limit")
	pendingAll := flag.Int("handshakes-pending", agentconn.DefaultMaxPending, "agent.ashx handshakes pending in all before the oldest is dropped; -1: no limit")
	flag.Parse()
	if *memProfile != "" {
		runtime.MemProfileRate = 1 // every allocation: the profile is for counting bytes per agent
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "server-lite: %v\n", err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	retention := time.Duration(*eventDays) * 24 * time.Hour
	if *eventDays <= 0 {
		retention = -1 // forever
	}
	a, err := app.New(app.Config{DataDir: *dataDir, Listen: *listen, CoreFile: *coreFile, Logger: log, EventRetention: retention,
		Agent: agentconn.Config{MaxPendingPerAddr: *pendingPerAddr, MaxPending: *pendingAll}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "server-lite: %v\n", err)
		return 1
	}
	a.API.SetLoginLimits(adminapi.LoginLimits{AddrFailures: *loginFailures, AccountFailures: *loginAccountFailures, Window: *loginWindow})
	a.Start()
	printWelcome(a)
	if a.FirstAdmin != nil {
		fmt.Print(adminapi.LoginHelp(a.FirstAdmin, "wss://"+a.Addr()))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go memoryReportOnSignal(log, *memProfile)
	if *localAgent != "" {
		cmd, err := startLocalAgent(*localAgent, a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "server-lite: local agent: %v\n", err)
		} else {
			defer stopLocalAgent(cmd)
		}
	}
	<-ctx.Done()
	log.Info("shutting down")
	a.Close()
	return 0
}

func printWelcome(a *app.App) {
	abs, _ := filepath.Abs(a.MshPath)
	first := ""
	if a.FirstStart {
		first = " (new identity created)"
	}
	fmt.Printf(`server-lite is running%s
  URL:          %s
  agent URL:    %s
  ServerID:     %s
  TLS cert:     sha384 %s
  device group: %s (%s)
  .msh file:    %s
                also at %s/meshsettings?id=%s
Start an agent:
  our agent:    go run ./cmd/meshagent run --msh %s
  C agent:      copy meshagent_x86-64 to a directory as meshagent, put the .msh beside it
                as meshagent.msh, then run ./meshagent run there
`, first, a.URL(), a.AgentURL(), a.Certs.ServerIDHex(), a.Certs.WebCertHashHex(),
		a.DefaultGroup.Name, a.DefaultGroup.ID, abs, a.URL(), strings.TrimPrefix(a.DefaultGroup.ID, handshake.MeshIDPrefix), abs)
}

// startLocalAgent starts an agent connected to this server, for the README
// quick start.
func startLocalAgent(spec string, a *app.App) (*exec.Cmd, error) {
	var cmd *exec.Cmd
	if spec == "go" {
		// Our agent keeps its identity in --data; give it its own directory
		// beside the server's data so restarts keep the same device.
		dir := filepath.Join(filepath.Dir(a.MshPath), "local-agent-go")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		// Built, then run directly: a `go run` child would stand between
		// the server and the agent, and the agent would outlive a killed
		// server (issue 20, finding 9).
		exe := filepath.Join(dir, "meshagent")
		b := exec.Command("go", "build", "-o", exe+".new", "./cmd/meshagent")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return nil, fmt.Errorf("build the Go agent: %w", err)
		}
		if err := os.Rename(exe+".new", exe); err != nil {
			return nil, err
		}
		cmd = exec.Command(exe, "run", "--msh", a.MshPath, "--data", dir)
	} else {
		bin, err := filepath.Abs(spec)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(filepath.Dir(a.MshPath), "local-agent")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			return nil, err
		}
		// Written beside and renamed over: the old binary may still be
		// running (an agent of a server that was killed), and writing it
		// in place fails with "text file busy".
		exe := filepath.Join(dir, "meshagent")
		if err := os.WriteFile(exe+".new", b, 0o700); err != nil {
			return nil, err
		}
		if err := os.Rename(exe+".new", exe); err != nil {
			return nil, err
		}
		m, err := os.ReadFile(a.MshPath)
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(exe+".msh", m, 0o600); err != nil {
			return nil, err
		}
		cmd = exec.Command(exe, "run")
		cmd.Dir = dir
	}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	ownProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	slog.Info("local agent started", "pid", cmd.Process.Pid, "cmd", strings.Join(cmd.Args, " "))
	return cmd, nil
}
