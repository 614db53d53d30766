package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshgo/meshagent/internal/atomicfile"
)

// Status is what the service manager says about the service.
type Status int

const (
	StatusUnknown Status = iota
	StatusNotInstalled
	StatusStopped
	StatusRunning
)

func (s Status) String() string {
	switch s {
	case StatusNotInstalled:
		return "not installed"
	case StatusStopped:
		return "stopped"
	case StatusRunning:
		return "running"
	}
	return "unknown"
}

// Manager talks to the service manager about one planned service. Register
// is called after the plan's files are written (reload, enable, create the
// SCM entry); Unregister before they are removed.
type Manager interface {
	Name() string
	Register(ctx context.Context, p *Plan) error
	Unregister(ctx context.Context, p *Plan) error
	Start(ctx context.Context, p *Plan) error
	Stop(ctx context.Context, p *Plan) error
	Restart(ctx context.Context, p *Plan) error
	Status(ctx context.Context, p *Plan) (Status, error)
}

// ErrNoServiceManager is returned when no supported service manager runs on
// this machine.
var ErrNoServiceManager = errors.New("no supported service manager (systemd, launchd or the Windows SCM) on this machine")

// Installer carries out a Plan under Root.
type Installer struct {
	Plan *Plan
	// Root prefixes every path of the plan: "" or "/" is the real system,
	// a temporary directory in tests. Unix plans only.
	Root string
	// Manager registers and controls the service; nil means files only
	// (the caller starts nothing).
	Manager Manager
	// Logger receives the steps taken; nil discards them.
	Logger *slog.Logger
	// NoStart leaves the service registered but not started.
	NoStart bool
}

func (in *Installer) log() *slog.Logger {
	if in.Logger != nil {
		return in.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// Real maps a plan path to the path on this machine.
func (in *Installer) Real(p string) string {
	if in.Root == "" || in.Root == "/" {
		return p
	}
	return filepath.Join(in.Root, filepath.FromSlash(p))
}

// Install writes the plan's directories and files, registers the service
// and starts it. Reinstalling over an existing installation (an update)
// stops the running service first and keeps an installed .msh when there
// is no new one; the identity is never touched.
func (in *Installer) Install(ctx context.Context) error {
	p, log := in.Plan, in.log()
	if in.Manager != nil {
		if st, err := in.Manager.Status(ctx, p); err == nil && st == StatusRunning {
			log.Info("stopping the running service before updating it", "service", p.ServiceName)
			if err := in.Manager.Stop(ctx, p); err != nil {
				return fmt.Errorf("stop %s: %w", p.ServiceName, err)
			}
		}
	}
	for _, d := range p.Dirs {
		real := in.Real(d.Path)
		if err := os.MkdirAll(real, d.Mode); err != nil {
			return fmt.Errorf("create %s: %w", real, err)
		}
		if err := os.Chmod(real, d.Mode); err != nil {
			return fmt.Errorf("chmod %s: %w", real, err)
		}
		if d.Private {
			if err := restrictDir(real); err != nil {
				return fmt.Errorf("restrict %s: %w", real, err)
			}
		}
		log.Info("directory", "path", real, "mode", d.Mode)
	}
	for _, f := range p.Files {
		real := in.Real(f.Path)
		if err := in.writeFile(f, real); err != nil {
			return err
		}
	}
	if in.Manager == nil {
		return nil
	}
	if err := in.Manager.Register(ctx, p); err != nil {
		var re *RecoveryError
		if !errors.As(err, &re) {
			return fmt.Errorf("register %s with %s: %w", p.ServiceName, in.Manager.Name(), err)
		}
		// Registered, but without every restart-on-failure setting
		// (wine's SCM rejects some): the service still runs.
		log.Warn("service registered without all its recovery settings", "service", p.ServiceName, "err", err)
	}
	log.Info("service registered", "service", p.ServiceName, "manager", in.Manager.Name())
	if in.NoStart {
		return nil
	}
	start := in.Manager.Start
	if _, ok := in.Manager.(*Systemd); ok {
		// "restart" starts a stopped unit and also replaces a process of
		// the same unit name still running an older binary, such as a C
		// agent whose unit in /lib/systemd/system ours now overrides;
		// "start" would leave that one running.
		start = in.Manager.Restart
	}
	if err := start(ctx, p); err != nil {
		return fmt.Errorf("start %s: %w", p.ServiceName, err)
	}
	log.Info("service started", "service", p.ServiceName)
	return nil
}

func (in *Installer) writeFile(f File, real string) error {
	log := in.log()
	var content []byte
	switch {
	case f.Content != nil:
		content = f.Content
	case f.Source == "":
		if _, err := os.Stat(real); err == nil && f.KeepExisting {
			log.Info("keeping the installed file", "path", real)
			return nil
		}
		return fmt.Errorf("no %s file to install at %s", f.Role, real)
	default:
		src, err := filepath.Abs(f.Source)
		if err != nil {
			return fmt.Errorf("install %s: %w", f.Source, err)
		}
		if same, _ := sameFile(src, real); same {
			// Installing from the installed copy (a reinstall): the file
			// is already where it belongs.
			log.Info("already in place", "path", real)
			return os.Chmod(real, f.Mode)
		}
		content, err = os.ReadFile(src)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && f.KeepExisting {
				if _, err := os.Stat(real); err == nil {
					log.Info("keeping the installed file", "path", real)
					return nil
				}
			}
			return fmt.Errorf("read %s: %w", f.Source, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(real), 0o755); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(real), err)
	}
	if err := replaceFile(real, content, f.Mode); err != nil {
		return fmt.Errorf("write %s: %w", real, err)
	}
	log.Info("file", "path", real, "role", f.Role, "mode", f.Mode, "bytes", len(content))
	return nil
}

// replaceFile writes content to a temporary file beside path and renames it
// over path: readers never see half a file, and a running binary can be
// replaced (overwriting it in place fails with "text file busy").
func replaceFile(path string, content []byte, mode fs.FileMode) error {
	return atomicfile.WriteWith(path, content, mode, atomicfile.Options{Rename: renameOver})
}

func sameFile(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}

// Uninstall stops and unregisters the service and removes what Install
// wrote: the service definition and the binary; with full, also the
// settings, the files the agent created in its data directory (identity,
// state, logs) and then the install directory if nothing else is left in
// it. Files it did not create are never removed. Without full, the
// settings and identity stay, so a later install keeps the device's
// identity in MeshCentral.
func (in *Installer) Uninstall(ctx context.Context, full bool) error {
	p, log := in.Plan, in.log()
	var errs []error
	if in.Manager != nil {
		st, err := in.Manager.Status(ctx, p)
		if err != nil {
			log.Warn("service status", "err", err)
		}
		if st == StatusRunning {
			if err := in.Manager.Stop(ctx, p); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", p.ServiceName, err))
			}
		}
		if st != StatusNotInstalled {
			if err := in.Manager.Unregister(ctx, p); err != nil {
				errs = append(errs, fmt.Errorf("unregister %s: %w", p.ServiceName, err))
			}
		}
	}
	var remove []string
	if p.ServiceFile != "" {
		remove = append(remove, p.ServiceFile)
	}
	if !p.InPlace {
		remove = append(remove, p.Binary)
		if full {
			remove = append(remove, p.MSH)
		}
	}
	if full {
		remove = append(remove, p.DataFiles...)
	}
	for _, f := range remove {
		real := in.Real(f)
		err := removeFile(real)
		switch {
		case err == nil:
			log.Info("removed", "path", real)
		case errors.Is(err, fs.ErrNotExist):
		default:
			errs = append(errs, fmt.Errorf("remove %s: %w", real, err))
		}
	}
	if in.Manager != nil && p.ServiceFile != "" {
		// Let systemd forget the unit now that its file is gone.
		if r, ok := in.Manager.(interface {
			Reload(context.Context) error
		}); ok {
			if err := r.Reload(ctx); err != nil {
				log.Warn("reload service manager", "err", err)
			}
		}
	}
	if full && !p.InPlace {
		for _, d := range p.Dirs {
			real := in.Real(d.Path)
			if err := os.Remove(real); err != nil && !errors.Is(err, fs.ErrNotExist) {
				if isNotEmpty(real) {
					log.Info("leaving the install directory: it holds files the agent did not install", "path", real, "files", listDir(real))
					continue
				}
				errs = append(errs, fmt.Errorf("remove %s: %w", real, err))
			} else if err == nil {
				log.Info("removed", "path", real)
			}
		}
	}
	return errors.Join(errs...)
}

func isNotEmpty(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err != io.EOF
}

func listDir(dir string) string {
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return strings.Join(names, ", ")
}

// Describe renders the plan for humans (install --dry-run).
func (p *Plan) Describe(w io.Writer) {
	fmt.Fprintf(w, "target:        %s\n", p.OS)
	fmt.Fprintf(w, "service:       %s (%s)\n", p.ServiceName, p.DisplayName)
	fmt.Fprintf(w, "install dir:   %s\n", p.InstallDir)
	fmt.Fprintf(w, "data dir:      %s\n", p.DataDir)
	fmt.Fprintf(w, "binary:        %s\n", p.Binary)
	fmt.Fprintf(w, "settings:      %s\n", p.MSH)
	fmt.Fprintf(w, "command:       %q\n", p.Exec)
	for _, d := range p.Dirs {
		fmt.Fprintf(w, "mkdir %s %s\n", d.Mode, d.Path)
	}
	for _, f := range p.Files {
		switch {
		case f.Content != nil:
			fmt.Fprintf(w, "write %s %s:\n%s\n", f.Mode, f.Path, indent(string(f.Content)))
		case f.Source != "":
			fmt.Fprintf(w, "copy  %s %s <- %s\n", f.Mode, f.Path, f.Source)
		default:
			fmt.Fprintf(w, "keep  %s (no new %s)\n", f.Path, f.Role)
		}
	}
	if ws := p.Windows; ws != nil {
		fmt.Fprintf(w, "SCM service %q: display %q, start %s, command %q %q\n", ws.Name, ws.DisplayName, ws.StartType, ws.Executable, ws.Args)
		fmt.Fprintf(w, "  recovery: %v after %s, failure count reset after %s, non-crash failures count: %v\n",
			ws.RecoveryActions, ws.RecoveryDelay, ws.ResetPeriod, ws.FailureActionsOnNonCrash)
		fmt.Fprintf(w, "  event log source %q; install directory ACL: SYSTEM and Administrators only\n", ws.Name)
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
