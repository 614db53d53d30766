package main

// Service subcommands: install, uninstall, start, stop, restart, status and
// the service run loop, with the C agent's spellings (-install,
// -fullinstall, -uninstall, -fulluninstall, -state, --installPath=...,
// --meshServiceName=...) so that MeshCentral's install scripts, which run
// "./meshagent -fullinstall --copy-msh=1" and "./meshagent -fulluninstall",
// work with this binary in place of the C agent.

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kardianos/service"

	"github.com/meshgo/meshagent/agent/core"
	"github.com/meshgo/meshagent/agent/install"
)

// RootEnv names an environment variable that prefixes every path the
// installer touches, like DESTDIR: for packaging and for tests, which must
// never write to the real /usr/local or /etc. It is an environment variable
// rather than only a flag because MeshCentral's install script runs the
// agent with fixed arguments.
const RootEnv = "MESHAGENT_INSTALL_ROOT"

// serviceFlags are the options the service subcommands take, keyed in lower
// case (the C agent's are camel-cased: --installPath, --meshServiceName).
var (
	serviceStringFlags = map[string]string{
		"installpath":     "directory for the binary, settings and data (default /usr/local/mesh_services/<service>, %ProgramFiles%\\<service>)",
		"meshservicename": "service name (default from the .msh, else meshagent; \"Mesh Agent\" on Windows)",
		"companyname":     "adds a directory level to the default install path",
		"displayname":     "service display name",
		"description":     "service description",
		"msh":             "settings file to install (default: beside this binary)",
		"root":            "prefix for every path touched (packaging, tests); also $" + RootEnv,
		"target":          "OS to plan for with --dry-run: linux, darwin, windows",
		"memory-max":      "systemd MemoryMax= (default " + install.DefaultMemoryMax + "; infinity for none)",
		"log-level":       "log level of the installed service: debug, info, warn, error",
	}
	serviceBoolFlags = map[string]string{
		"dry-run":           "print the plan and change nothing",
		"in-place":          "register the service for this binary where it is; copy nothing",
		"no-start":          "register the service but do not start it",
		"files-only":        "lay out the files even if no service manager runs here",
		"no-new-privileges": "systemd NoNewPrivileges=yes (breaks sudo in user terminal sessions)",
	}
	// The C agent's and MeshCentral's options that need nothing from us.
	serviceIgnoredFlags = map[string]bool{
		"copy-msh": true, "no-embedded": true, "disableupdate": true, "agentcapabilities": true,
		"lang": true, "webproxy": true,
	}
)

// parseServiceArgs reads "-key", "--key=value", "--key value" arguments.
// Values may come wrapped in literal double quotes: meshinstall-linux.js
// passes --installPath="/path" through execFile, with no shell to remove
// them.
func parseServiceArgs(args []string, stderr io.Writer) (map[string]string, error) {
	kv := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return nil, fmt.Errorf("unexpected argument %q", a)
		}
		key, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		key = strings.ToLower(key)
		switch {
		case serviceStringFlags[key] != "":
			if !hasVal {
				if i+1 >= len(args) {
					return nil, fmt.Errorf("--%s needs a value", key)
				}
				i++
				val = args[i]
			}
		case serviceBoolFlags[key] != "":
			if !hasVal {
				val = "1"
			}
		case serviceIgnoredFlags[key]:
			if key == "webproxy" && val != "" {
				fmt.Fprintf(stderr, "meshagent: --WebProxy is not applied by the installer; set WebProxy= in the .msh\n")
			}
			continue
		default:
			fmt.Fprintf(stderr, "meshagent: ignoring unknown option %q\n", a)
			continue
		}
		if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
			val = val[1 : len(val)-1]
		}
		kv[key] = val
	}
	return kv, nil
}

func truthy(s string) bool {
	switch strings.ToLower(s) {
	case "", "0", "false", "no", "off":
		return false
	}
	return true
}

func serviceUsage(w io.Writer) {
	fmt.Fprint(w, "service options (for install, -fullinstall, uninstall, -fulluninstall, start, stop, restart, status):\n")
	var keys []string
	for k := range serviceStringFlags {
		keys = append(keys, k)
	}
	for k := range serviceBoolFlags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if h, ok := serviceStringFlags[k]; ok {
			fmt.Fprintf(w, "  --%s=VALUE\t%s\n", k, h)
		} else {
			fmt.Fprintf(w, "  --%s\t%s\n", k, serviceBoolFlags[k])
		}
	}
}

// servicePlan builds the plan from the arguments, the settings file and
// the running executable. Names not given on the command line come from the
// .msh (meshServiceName, companyName, displayName), as with the C agent.
//
// With locate (uninstall and control commands), an install directory not
// given with --installPath is taken from the installed service definition.
func servicePlan(kv map[string]string, stderr io.Writer, locate bool) (*install.Plan, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", fmt.Errorf("locate executable: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	root := kv["root"]
	if root == "" {
		root = os.Getenv(RootEnv)
	}
	if root != "" {
		if root, err = filepath.Abs(root); err != nil {
			return nil, "", fmt.Errorf("--root: %w", err)
		}
	}
	msh := kv["msh"]
	if msh == "" {
		if c := strings.TrimSuffix(exe, ".exe") + ".msh"; fileExists(c) {
			msh = c
		}
	}
	o := install.Options{
		OS:              kv["target"],
		ServiceName:     kv["meshservicename"],
		CompanyName:     kv["companyname"],
		DisplayName:     kv["displayname"],
		Description:     kv["description"],
		InstallPath:     kv["installpath"],
		ProgramFiles:    os.Getenv("ProgramFiles"),
		SourceBinary:    exe,
		SourceMSH:       msh,
		InPlace:         truthy(kv["in-place"]),
		MemoryMax:       kv["memory-max"],
		NoNewPrivileges: truthy(kv["no-new-privileges"]),
	}
	if l := kv["log-level"]; l != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(l)); err != nil {
			return nil, "", fmt.Errorf("--log-level: %w", err)
		}
		o.ServiceArgs = append(o.ServiceArgs, "--log-level="+l)
	}
	if msh != "" {
		s, err := core.ReadMSH(msh)
		if err != nil {
			return nil, "", fmt.Errorf("settings %s: %w", msh, err)
		}
		o.ServiceName = firstSet(o.ServiceName, s.Get(core.MSHServiceName))
		o.CompanyName = firstSet(o.CompanyName, s.Get("companyName"))
		o.DisplayName = firstSet(o.DisplayName, s.Get(core.MSHDisplayName))
	}
	p, err := install.NewPlan(o)
	if err != nil {
		return nil, "", err
	}
	if locate && o.InstallPath == "" && !o.InPlace {
		if dir, ok := install.InstalledDir(p, root); ok && dir != p.InstallDir {
			o.InstallPath = dir
			if p, err = install.NewPlan(o); err != nil {
				return nil, "", err
			}
		}
	}
	if !p.InPlace && msh == "" {
		if _, err := os.Stat(rootedPath(root, p.MSH)); err != nil {
			fmt.Fprintf(stderr, "meshagent: warning: no settings file beside %s and none installed at %s; the agent will not connect until one is there\n", exe, p.MSH)
		}
	}
	return p, root, nil
}

func rootedPath(root, p string) string {
	if root == "" {
		return p
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}

// serviceManager finds the service manager for p, or explains why none.
// Under a root, none is not an error: that is a packaging or test run.
func serviceManager(p *install.Plan, root string, kv map[string]string) (install.Manager, error) {
	if p.OS != runtime.GOOS {
		return nil, fmt.Errorf("this binary runs on %s; plans for %s can only be printed (--dry-run)", runtime.GOOS, p.OS)
	}
	m, err := install.DetectManager(p, root, nil)
	if err != nil && (root != "" || truthy(kv["files-only"])) {
		return nil, nil
	}
	return m, err
}

func cliLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
}

// cmdInstall implements install, -install, -fullinstall and -finstall: like
// the C agent, all of them copy the binary and its .msh into the install
// path, register the service and start it.
func cmdInstall(cmd string, args []string, stdout, stderr io.Writer) int {
	kv, err := parseServiceArgs(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		serviceUsage(stderr)
		return exitUsage
	}
	p, root, err := servicePlan(kv, stderr, false)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		return exitConfig
	}
	if truthy(kv["dry-run"]) {
		p.Describe(stdout)
		return exitOK
	}
	m, err := serviceManager(p, root, kv)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v (use --files-only to lay out the files anyway)\n", cmd, err)
		return exitFail
	}
	in := &install.Installer{Plan: p, Root: root, Manager: m, Logger: cliLogger(stderr), NoStart: truthy(kv["no-start"])}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := in.Install(ctx); err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		return exitFail
	}
	if m == nil {
		fmt.Fprintf(stdout, "%s installed in %s (files only; no service manager registered). Run it with: %s\n",
			p.ServiceName, in.Real(p.InstallDir), strings.Join(append([]string{in.Real(p.Binary)}, p.Exec[1:]...), " "))
		return exitOK
	}
	fmt.Fprintf(stdout, "%s installed in %s and %s.\n", p.ServiceName, p.InstallDir, map[bool]string{true: "registered", false: "started"}[in.NoStart])
	return exitOK
}

// cmdUninstall implements uninstall/-uninstall (service and binary; the
// settings and identity stay, so a reinstall keeps the device) and
// -fulluninstall/-funinstall (everything the installation and the agent
// put in the install directory, and nothing else).
func cmdUninstall(cmd string, args []string, stdout, stderr io.Writer) int {
	full := cmd == "fulluninstall" || cmd == "funinstall"
	kv, err := parseServiceArgs(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		serviceUsage(stderr)
		return exitUsage
	}
	p, root, err := servicePlan(kv, io.Discard, true)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		return exitConfig
	}
	if truthy(kv["dry-run"]) {
		p.Describe(stdout)
		return exitOK
	}
	m, err := serviceManager(p, root, kv)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v; removing files only\n", cmd, err)
		m = nil
	}
	in := &install.Installer{Plan: p, Root: root, Manager: m, Logger: cliLogger(stderr)}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := in.Uninstall(ctx, full); err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		return exitFail
	}
	fmt.Fprintf(stdout, "%s uninstalled.\n", p.ServiceName)
	return exitOK
}

// cmdControl implements start, stop, restart and status (-state).
func cmdControl(cmd string, args []string, stdout, stderr io.Writer) int {
	kv, err := parseServiceArgs(args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		return exitUsage
	}
	p, root, err := servicePlan(kv, io.Discard, true)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		return exitConfig
	}
	m, err := install.DetectManager(p, root, nil)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	switch cmd {
	case "start":
		err = m.Start(ctx, p)
	case "stop":
		err = m.Stop(ctx, p)
	case "restart":
		err = m.Restart(ctx, p)
	default:
		var st install.Status
		st, err = m.Status(ctx, p)
		if err == nil {
			fmt.Fprintf(stdout, "%s: %s\n", p.ServiceName, st)
			if st != install.StatusRunning {
				return 3 // like systemctl is-active and LSB status: not running
			}
			return exitOK
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshagent %s: %v\n", cmd, err)
		return exitFail
	}
	return exitOK
}

// agentService runs the agent under kardianos/service: Start must return
// quickly, so it loads the settings and identity (errors reach the service
// manager) and runs the agent in a goroutine; Stop cancels it and waits.
type agentService struct {
	o   options
	log *slog.Logger

	mu       sync.Mutex
	cancel   context.CancelFunc
	done     chan struct{}
	stopping bool
	cleanup  func()
}

func (a *agentService) Start(service.Service) error {
	run, cleanup, err := prepareAgent(a.o, a.log)
	if err != nil {
		a.log.Error("cannot start the agent", "err", err)
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.mu.Lock()
	a.cancel, a.done, a.cleanup = cancel, make(chan struct{}), cleanup
	a.mu.Unlock()
	go func() {
		defer close(a.done)
		err := run(ctx)
		a.mu.Lock()
		stopping := a.stopping
		a.mu.Unlock()
		if !stopping {
			// The agent ended by itself: exit non-zero so the service
			// manager's restart-on-failure brings it back.
			a.log.Error("agent stopped unexpectedly; exiting for the service manager to restart it", "err", err)
			cleanup()
			os.Exit(exitFail)
		}
	}()
	return nil
}

func (a *agentService) Stop(service.Service) error {
	a.mu.Lock()
	a.stopping = true
	cancel, done, cleanup := a.cancel, a.done, a.cleanup
	a.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		a.log.Warn("agent did not stop within 10 s")
	}
	cleanup()
	a.log.Info("meshagent stopped")
	return nil
}

// prepareAgent does what runAgent does up to agent.Run, with a context the
// caller controls (the Windows SCM stops a service without a signal).
func prepareAgent(o options, log *slog.Logger) (run func(context.Context) error, cleanup func(), err error) {
	b, err := buildAgent(o, false, log)
	if err != nil {
		return nil, nil, err
	}
	log.Info("meshagent starting as a service", "version", version, "node_id", b.identity.NodeIDString(),
		"settings", o.msh, "data", o.data, "group", b.settings.Get(core.MSHMeshName))
	var once sync.Once
	return b.agent.Run, func() { once.Do(b.close) }, nil
}

// cmdServiceRun is what the service definitions start. It logs to the
// platform's log (stderr, which systemd sends to the journal; the Event
// Log on Windows; syslog, i.e. the unified log, on macOS) and to a rotating
// meshagent.log in the data directory.
func cmdServiceRun(args []string, stdout, stderr io.Writer) int {
	o, err := parseOptions(install.RunCommand, args, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meshagent: %v\n", err)
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		fmt.Fprintf(stderr, "meshagent: --log-level: %v\n", err)
		return exitUsage
	}
	name := serviceNameFor(o.msh)
	runningAsService = name
	prog := &agentService{o: o}
	svc, err := service.New(prog, &service.Config{Name: name})
	if err != nil {
		fmt.Fprintf(stderr, "meshagent: %v\n", err)
		return exitFail
	}

	var handlers []slog.Handler
	if runtime.GOOS == "linux" || service.Interactive() {
		handlers = append(handlers, slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	} else if pl, err := svc.Logger(nil); err == nil {
		handlers = append(handlers, install.NewPlatformHandler(pl, level))
	} else {
		handlers = append(handlers, slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	}
	if f, err := install.OpenRotatingFile(filepath.Join(o.data, install.LogFileName), 0, -1); err == nil {
		defer f.Close()
		handlers = append(handlers, slog.NewTextHandler(f, &slog.HandlerOptions{Level: level}))
	} else {
		fmt.Fprintf(stderr, "meshagent: %v\n", err)
	}
	prog.log = slog.New(slog.NewMultiHandler(handlers...))

	if ran, err := runUnderSCM(name, prog); ran {
		if err != nil {
			prog.log.Error("service run", "err", err)
			return exitConfig
		}
		return exitOK
	}
	if err := svc.Run(); err != nil {
		prog.log.Error("service run", "err", err)
		return exitConfig
	}
	return exitOK
}

// runningAsService is the service this process runs as, set by
// cmdServiceRun before the agent is built ("" in the foreground); the
// core's console `service status|restart` acts on it.
var runningAsService string

// serviceNameFor names the service for the platform log (Event Log source,
// syslog tag) the way the installer named it.
func serviceNameFor(msh string) string {
	if s, err := core.ReadMSH(msh); err == nil && s.Get(core.MSHServiceName) != "" {
		return s.Get(core.MSHServiceName)
	}
	if runtime.GOOS == "windows" {
		return install.DefaultWindowsServiceName
	}
	return install.DefaultUnixServiceName
}
