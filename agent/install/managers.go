package install

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Runner runs a service-manager command and returns its combined output.
// Tests substitute one that records calls.
type Runner func(ctx context.Context, name string, args ...string) (string, error)

// ExecRunner runs commands with os/exec.
func ExecRunner(ctx context.Context, name string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Systemd controls units with systemctl.
type Systemd struct {
	Run Runner
	// Root is the Installer's root, to tell whether the unit file exists.
	Root string
}

func (s *Systemd) Name() string { return "systemd" }

func (s *Systemd) run(ctx context.Context, args ...string) (string, error) {
	r := s.Run
	if r == nil {
		r = ExecRunner
	}
	return r(ctx, "systemctl", args...)
}

func unitName(p *Plan) string { return p.ServiceName + ".service" }

// Reload makes systemd re-read unit files.
func (s *Systemd) Reload(ctx context.Context) error {
	_, err := s.run(ctx, "daemon-reload")
	return err
}

func (s *Systemd) Register(ctx context.Context, p *Plan) error {
	if err := s.Reload(ctx); err != nil {
		return err
	}
	_, err := s.run(ctx, "enable", unitName(p))
	return err
}

func (s *Systemd) Unregister(ctx context.Context, p *Plan) error {
	_, err := s.run(ctx, "disable", unitName(p))
	return err
}

func (s *Systemd) Start(ctx context.Context, p *Plan) error {
	_, err := s.run(ctx, "start", unitName(p))
	return err
}

func (s *Systemd) Stop(ctx context.Context, p *Plan) error {
	_, err := s.run(ctx, "stop", unitName(p))
	return err
}

func (s *Systemd) Restart(ctx context.Context, p *Plan) error {
	_, err := s.run(ctx, "restart", unitName(p))
	return err
}

// Status asks "systemctl is-active", which exits non-zero for anything but
// active, so its output, not its error, is the answer.
func (s *Systemd) Status(ctx context.Context, p *Plan) (Status, error) {
	if _, err := os.Stat(rooted(s.Root, p.ServiceFile)); errors.Is(err, os.ErrNotExist) {
		return StatusNotInstalled, nil
	}
	out, err := s.run(ctx, "is-active", unitName(p))
	switch strings.TrimSpace(firstLine(out)) {
	case "active", "reloading", "activating", "deactivating":
		return StatusRunning, nil
	case "inactive", "failed":
		return StatusStopped, nil
	}
	if err != nil {
		return StatusUnknown, err
	}
	return StatusUnknown, nil
}

// Launchd controls system daemons with launchctl's bootstrap/bootout/
// kickstart verbs (macOS 10.11 and later).
type Launchd struct {
	Run  Runner
	Root string
}

func (l *Launchd) Name() string { return "launchd" }

func (l *Launchd) run(ctx context.Context, args ...string) (string, error) {
	r := l.Run
	if r == nil {
		r = ExecRunner
	}
	return r(ctx, "launchctl", args...)
}

func target(p *Plan) string { return "system/" + p.ServiceName }

// Register does nothing: launchd reads the plist when it is bootstrapped
// (Start) and at every boot from /Library/LaunchDaemons.
func (l *Launchd) Register(ctx context.Context, p *Plan) error { return nil }

func (l *Launchd) Unregister(ctx context.Context, p *Plan) error {
	if st, _ := l.Status(ctx, p); st == StatusRunning || st == StatusStopped {
		_, err := l.run(ctx, "bootout", target(p))
		return err
	}
	return nil
}

// Start loads the daemon (RunAtLoad starts it) or, if it is loaded but not
// running, kicks it.
func (l *Launchd) Start(ctx context.Context, p *Plan) error {
	if _, err := l.run(ctx, "print", target(p)); err == nil {
		_, err := l.run(ctx, "kickstart", target(p))
		return err
	}
	_, err := l.run(ctx, "bootstrap", "system", p.ServiceFile)
	return err
}

// Stop unloads the daemon: with KeepAlive, a plain kill would be undone.
func (l *Launchd) Stop(ctx context.Context, p *Plan) error {
	_, err := l.run(ctx, "bootout", target(p))
	return err
}

func (l *Launchd) Restart(ctx context.Context, p *Plan) error {
	if _, err := l.run(ctx, "print", target(p)); err != nil {
		return l.Start(ctx, p)
	}
	_, err := l.run(ctx, "kickstart", "-k", target(p))
	return err
}

func (l *Launchd) Status(ctx context.Context, p *Plan) (Status, error) {
	if _, err := os.Stat(rooted(l.Root, p.ServiceFile)); errors.Is(err, os.ErrNotExist) {
		return StatusNotInstalled, nil
	}
	out, err := l.run(ctx, "print", target(p))
	if err != nil {
		return StatusStopped, nil // installed but not loaded
	}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && strings.TrimSpace(k) == "state" {
			if strings.TrimSpace(v) == "running" {
				return StatusRunning, nil
			}
			return StatusStopped, nil
		}
	}
	return StatusUnknown, nil
}

func rooted(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// DetectManager returns the manager for plan p's OS running on this
// machine, looking under root: systemd counts as running when
// root/run/systemd/system exists (sd_booted's test) and systemctl is on
// PATH; launchd always runs on macOS; the SCM always runs on Windows.
// run may be nil (os/exec).
func DetectManager(p *Plan, root string, run Runner) (Manager, error) {
	switch p.OS {
	case Linux:
		if _, err := os.Stat(rooted(root, "/run/systemd/system")); err != nil {
			return nil, fmt.Errorf("%w: systemd is not running (no /run/systemd/system)", ErrNoServiceManager)
		}
		if _, err := exec.LookPath("systemctl"); err != nil {
			return nil, fmt.Errorf("%w: systemctl not found", ErrNoServiceManager)
		}
		return &Systemd{Run: run, Root: root}, nil
	case Darwin:
		return &Launchd{Run: run, Root: root}, nil
	case Windows:
		return newSCM()
	}
	return nil, ErrNoServiceManager
}

// InstalledDir returns the install directory recorded in the installed
// service definition of p's service under root (WorkingDirectory of the
// systemd unit or launchd plist, the executable's directory in the SCM),
// so that uninstall and control commands find an installation made with
// --installPath without being told again, as the C agent does.
func InstalledDir(p *Plan, root string) (string, bool) {
	switch p.OS {
	case Linux:
		b, err := os.ReadFile(rooted(root, p.ServiceFile))
		if err != nil {
			return "", false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "WorkingDirectory="); ok && v != "" {
				return strings.ReplaceAll(v, "%%", "%"), true
			}
		}
	case Darwin:
		b, err := os.ReadFile(rooted(root, p.ServiceFile))
		if err != nil {
			return "", false
		}
		s := string(b)
		if _, after, ok := strings.Cut(s, "<key>WorkingDirectory</key>"); ok {
			if _, v, ok := strings.Cut(after, "<string>"); ok {
				if v, _, ok := strings.Cut(v, "</string>"); ok {
					return xmlUnescape(v), true
				}
			}
		}
	case Windows:
		return scmInstalledDir(p.ServiceName)
	}
	return "", false
}

func xmlUnescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&#34;", `"`, "&#39;", "'", "&#x9;", "\t", "&#xA;", "\n", "&#xD;", "\r", "&amp;", "&").Replace(s)
}
