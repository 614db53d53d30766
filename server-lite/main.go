// Command server-lite is a lean MeshCentral-compatible server: agent.ashx
// for the C MeshAgent and ours, core push, meshrelay.ashx, .msh files, and
// (from the admin API packages) control.ashx for meshctrl.
//
//	go run ./server-lite [flags]            run the server
//	go run ./server-lite <subcommand> ...   admin CLI (server-lite/cli)
//
// It serves 127.0.0.1:4443 unless told otherwise (--listen, --hostname,
// --cert/--key, --http-redirect, or a --config file; see README.md).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/meshgo/meshagent/build/agentflags"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/adminapi"
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
	cfg, err := parseSettings(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "server-lite: %v\n", err)
		return 2
	}
	if cfg.MemProfile != "" {
		runtime.MemProfileRate = 1 // every allocation: the profile is for counting bytes per agent
	}
	if cfg.MutexProfile != "" {
		runtime.SetMutexProfileFraction(1)
		defer writeProfile(os.Stderr, "mutex", cfg.MutexProfile)
	}
	if cfg.BlockProfile != "" {
		runtime.SetBlockProfileRate(1)
		defer writeProfile(os.Stderr, "block", cfg.BlockProfile)
	}
	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "server-lite: %v\n", err)
			return 1
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	level := slog.LevelInfo
	if cfg.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	a, err := app.New(appConfig(cfg, log))
	if err != nil {
		fmt.Fprintf(os.Stderr, "server-lite: %v\n", err)
		return 1
	}
	a.API.SetLoginLimits(adminapi.LoginLimits{AddrFailures: cfg.LoginFailures, AccountFailures: cfg.LoginAccountFailures, Window: time.Duration(cfg.LoginWindow)})
	a.Start()
	printWelcome(a)
	if a.FirstAdmin != nil {
		fmt.Print(adminapi.LoginHelp(a.FirstAdmin, "wss://"+a.Host()))
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go memoryReportOnSignal(log, cfg.MemProfile)
	go reloadOnSignal(log, a)
	if cfg.LocalAgent != "" {
		cmd, err := startLocalAgent(cfg.LocalAgent, a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "server-lite: local agent: %v\n", err)
		} else {
			defer stopLocalAgent(cmd)
		}
	}
	<-ctx.Done()
	log.Info("shutting down")
	began := time.Now()
	a.Close()
	log.Info("stopped", "seconds", fmt.Sprintf("%.3f", time.Since(began).Seconds()))
	return 0
}

func printWelcome(a *app.App) {
	abs, _ := filepath.Abs(a.MshPath)
	first, redirect := "", ""
	if r := a.RedirectAddr(); r != "" {
		redirect = " (plain HTTP on " + r + " redirects)"
	}
	if a.FirstStart {
		first = " (new identity created)"
	}
	fmt.Printf(`server-lite is running%s
  URL:          %s
  listening on: %s%s
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
`, first, a.URL(), a.Addr(), redirect, a.AgentURL(), a.Certs.ServerIDHex(), a.WebCertHashHex(),
		a.DefaultGroup.Name, a.DefaultGroup.ID, abs, a.URL(), strings.TrimPrefix(a.DefaultGroup.ID, handshake.MeshIDPrefix), abs)
}

// localAgentMsh writes the default group's .msh for the local agent, with
// an absolute path, and pointing at 127.0.0.1 when the server listens
// there: the agent runs on this machine, and the names agents elsewhere
// use (--hostname) need not resolve here.
func localAgentMsh(a *app.App) (string, error) {
	abs, err := filepath.Abs(a.MshPath)
	if err != nil {
		return "", err
	}
	host, port, _ := net.SplitHostPort(a.Addr())
	ip := net.ParseIP(host)
	if ip == nil || !(ip.IsUnspecified() || ip.IsLoopback()) || a.Hostname() == "127.0.0.1" {
		return abs, nil
	}
	m, err := a.Msh(a.DefaultGroup)
	if err != nil {
		return "", err
	}
	local := "wss://" + net.JoinHostPort("127.0.0.1", port) + "/agent.ashx"
	if ip.IsLoopback() {
		local = "wss://" + net.JoinHostPort(host, port) + "/agent.ashx"
	}
	m = bytes.Replace(m, []byte("MeshServer="+a.AgentURL()), []byte("MeshServer="+local), 1)
	p := filepath.Join(filepath.Dir(abs), "local-agent.msh")
	if err := os.WriteFile(p, m, 0o600); err != nil {
		return "", fmt.Errorf("write local agent .msh: %w", err)
	}
	return p, nil
}

// startLocalAgent starts an agent connected to this server, for the README
// quick start.
func startLocalAgent(spec string, a *app.App) (*exec.Cmd, error) {
	// The C agent runs with its directory as working directory, so every
	// path must be absolute: a relative --data would be resolved twice.
	mshPath, err := localAgentMsh(a)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if spec == "go" {
		// Our agent keeps its identity in --data; give it its own directory
		// beside the server's data so restarts keep the same device.
		dir := filepath.Join(filepath.Dir(mshPath), "local-agent-go")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		// Built, then run directly: a `go run` child would stand between
		// the server and the agent, and the agent would outlive a killed
		// server (issue 20, finding 9).
		exe := filepath.Join(dir, "meshagent")
		b := exec.Command("go", "build", "-tags", agentflags.Tags, "-o", exe+".new", "./cmd/meshagent")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return nil, fmt.Errorf("build the Go agent: %w", err)
		}
		if err := os.Rename(exe+".new", exe); err != nil {
			return nil, err
		}
		cmd = exec.Command(exe, "run", "--msh", mshPath, "--data", dir)
	} else {
		bin, err := filepath.Abs(spec)
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(filepath.Dir(mshPath), "local-agent")
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
		m, err := os.ReadFile(mshPath)
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

// writeProfile writes the named runtime/pprof profile to path, reporting a
// failure on w (the logger may be gone at that point of shutdown).
func writeProfile(w io.Writer, name, path string) {
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup(name).WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(w, "server-lite: %s profile: %v\n", name, err)
	}
}
