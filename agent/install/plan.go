// Package install computes and carries out the installation of the agent as
// an operating-system service on Linux (systemd), macOS (launchd) and
// Windows (service control manager), laid out the way MeshCentral's C agent
// lays itself out, so that MeshCentral's install scripts and the habits of
// its administrators keep working with our binary:
//
//	Linux, macOS: /usr/local/mesh_services/<service>/meshagent (+ meshagent.msh)
//	Windows:      %ProgramFiles%\<service>\MeshAgent.exe (+ MeshAgent.msh)
//
// The settings file and the data directory (identity, state, log) sit beside
// the binary, as cmd/meshagent expects by default.
//
// The work is split in two so that it can be tested on any machine: NewPlan
// is pure and says what would be written where, with what content;
// Installer executes a plan against a root directory (the real "/" or a
// temporary directory in tests) and a Manager that talks to the service
// manager (systemctl, launchctl or the Windows SCM).
package install

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"strings"
	"time"
)

// Target operating systems.
const (
	Linux   = "linux"
	Darwin  = "darwin"
	Windows = "windows"
)

// RunCommand is the cmd/meshagent subcommand the service definitions start:
// it runs the agent under the service manager (kardianos/service run loop).
const RunCommand = "service-run"

// Defaults shared with the C agent. The C agent names its Windows service
// "Mesh Agent" and its Unix service "meshagent"; MeshCentral's .msh may
// override them with meshServiceName/companyName/displayName.
const (
	DefaultUnixServiceName    = "meshagent"
	DefaultWindowsServiceName = "Mesh Agent"
	DefaultDisplayName        = "MeshCentral Agent"
	DefaultDescription        = "MeshCentral remote management agent"
	// DefaultMemoryMax caps the agent's cgroup (the agent and the shells
	// and tools its sessions start). C agent installations grow MemoryMax=
	// lines by hand after leaks; with a cap a runaway agent is killed and
	// restarted by systemd instead of pushing the host into its global OOM
	// killer. 1G leaves room for desktop sessions and for large commands run
	// from a remote terminal, which share the cgroup.
	DefaultMemoryMax = "1G"
	// DefaultRestartDelay is how long the service manager waits before
	// restarting a failed agent: long enough not to spin on a broken
	// configuration, short enough that a crash costs little presence.
	DefaultRestartDelay = 5 * time.Second
)

// Files the agent itself creates in its data directory (see agent/core:
// IdentityFile, the state, pushed-core and tag files) and the log files
// this package's RotatingFile writes. A full uninstall removes exactly
// these, so that anything else an administrator put there survives.
var agentDataFiles = []string{
	"meshagent.identity",
	"meshagent.state",
	"meshagent.core",
	"meshagent.tag",
}

// Options describe one installation. Zero values pick the C agent's
// defaults for the target OS.
type Options struct {
	// OS is the target: Linux, Darwin or Windows (default runtime.GOOS).
	OS string
	// ServiceName is the service's name (--meshServiceName): the systemd
	// unit name, launchd label or SCM service name.
	ServiceName string
	// CompanyName (--companyName) adds a directory level to the default
	// install path, as the C agent does.
	CompanyName string
	// DisplayName and Description are shown by the service manager.
	DisplayName string
	Description string
	// InstallPath (--installPath) is the directory for the binary, its
	// settings and its data. Default: /usr/local/mesh_services/[company/]service
	// on Unix, %ProgramFiles%\[company\]service on Windows.
	InstallPath string
	// ProgramFiles is the Windows %ProgramFiles% directory (default
	// C:\Program Files); only used to compute the default InstallPath.
	ProgramFiles string
	// SourceBinary is the binary to copy (normally the running executable).
	SourceBinary string
	// SourceMSH is the settings file to copy ("" for none: an existing
	// installed .msh is kept).
	SourceMSH string
	// InPlace registers the service for SourceBinary where it is and copies
	// nothing: for packagers who lay the files out themselves.
	InPlace bool
	// MemoryMax is systemd's MemoryMax= (default DefaultMemoryMax;
	// "infinity" removes the cap).
	MemoryMax string
	// NoNewPrivileges sets systemd's NoNewPrivileges=yes. It is off by
	// default because it is not compatible with what the agent does: its
	// terminal sessions start shells as logged-in users, and NoNewPrivileges
	// is inherited, so sudo, su, passwd or ping in such a shell would fail.
	// Turn it on for hosts where only root terminal sessions are used.
	NoNewPrivileges bool
	// RestartDelay overrides DefaultRestartDelay.
	RestartDelay time.Duration
	// ServiceArgs are extra arguments for the service's RunCommand
	// (for example --log-level=debug).
	ServiceArgs []string
}

// Dir is a directory the installation creates.
type Dir struct {
	Path string
	Mode fs.FileMode
	// Private asks for owner-only access beyond the mode: on Windows the
	// directory's ACL is limited to SYSTEM and Administrators.
	Private bool
}

// File is a file the installation writes: copied from Source or written
// with Content.
type File struct {
	Path    string
	Mode    fs.FileMode
	Source  string
	Content []byte
	// Role says what it is: "binary", "settings" or "service".
	Role string
	// KeepExisting leaves an existing file alone when Source is missing.
	KeepExisting bool
}

// WindowsService is the SCM configuration of the Windows service.
type WindowsService struct {
	Name        string
	DisplayName string
	Description string
	Executable  string
	Args        []string
	StartType   string // "automatic"
	// Recovery actions, in order, for the first, second and later failures;
	// the failure count is reset after ResetPeriod without failures.
	RecoveryActions []string
	RecoveryDelay   time.Duration
	ResetPeriod     time.Duration
	// FailureActionsOnNonCrash also counts a stop with a non-zero exit code
	// as a failure, not only a crash.
	FailureActionsOnNonCrash bool
}

// Plan is what an installation writes and registers. Paths are those of the
// target system (Installer prefixes them with its root).
type Plan struct {
	OS          string
	ServiceName string
	DisplayName string
	Description string
	InstallDir  string // binary, settings and data
	DataDir     string // same as InstallDir, like the C agent
	Binary      string
	MSH         string
	// ServiceFile is the systemd unit or launchd plist ("" on Windows).
	ServiceFile string
	// Exec is the command line the service manager starts.
	Exec []string
	Dirs []Dir
	// Files are written in order; the service definition comes last.
	Files   []File
	Windows *WindowsService
	// DataFiles are files the running agent creates in DataDir (identity,
	// state, logs); a full uninstall removes them.
	DataFiles []string
	// InPlace means nothing is copied: Binary and MSH are the sources.
	InPlace bool
}

// NewPlan computes the installation plan for o. It touches nothing.
func NewPlan(o Options) (*Plan, error) {
	if o.OS == "" {
		o.OS = runtime.GOOS
	}
	switch o.OS {
	case Linux, Darwin, Windows:
	default:
		return nil, fmt.Errorf("install: unsupported OS %q (linux, darwin or windows)", o.OS)
	}
	p := &Plan{OS: o.OS, InPlace: o.InPlace}
	p.ServiceName = strings.TrimSpace(o.ServiceName)
	if p.ServiceName == "" {
		p.ServiceName = DefaultUnixServiceName
		if o.OS == Windows {
			p.ServiceName = DefaultWindowsServiceName
		}
	}
	if err := checkName(o.OS, p.ServiceName); err != nil {
		return nil, err
	}
	if o.CompanyName != "" {
		if err := checkPathElement("company name", o.CompanyName); err != nil {
			return nil, err
		}
	}
	p.DisplayName = firstNonEmpty(o.DisplayName, DefaultDisplayName)
	p.Description = firstNonEmpty(o.Description, DefaultDescription)
	if strings.ContainsAny(p.DisplayName+p.Description, "\r\n") {
		return nil, errors.New("install: display name and description must be one line")
	}

	join, clean, isAbs := path.Join, path.Clean, path.IsAbs
	if o.OS == Windows {
		join, clean, isAbs = winJoin, winClean, winIsAbs
	}
	binName, mshName := "meshagent", "meshagent.msh"
	if o.OS == Windows {
		binName, mshName = "MeshAgent.exe", "MeshAgent.msh"
	}

	switch {
	case o.InPlace:
		if o.SourceBinary == "" || !isAbs(o.SourceBinary) {
			return nil, fmt.Errorf("install: in-place install needs the binary's absolute path, got %q", o.SourceBinary)
		}
		p.Binary = clean(o.SourceBinary)
		p.InstallDir = winOrUnixDir(o.OS, p.Binary)
		base := strings.TrimSuffix(p.Binary, ".exe")
		if o.OS == Windows {
			base = strings.TrimSuffix(strings.TrimSuffix(p.Binary, ".exe"), ".EXE")
		}
		p.MSH = base + ".msh"
	default:
		dir := o.InstallPath
		if dir == "" {
			if o.OS == Windows {
				pf := firstNonEmpty(o.ProgramFiles, `C:\Program Files`)
				dir = join(pf, o.CompanyName, p.ServiceName)
			} else {
				dir = join("/usr/local/mesh_services", o.CompanyName, p.ServiceName)
			}
		}
		if !isAbs(dir) {
			return nil, fmt.Errorf("install: install path %q is not absolute", dir)
		}
		p.InstallDir = clean(dir)
		p.Binary = join(p.InstallDir, binName)
		p.MSH = join(p.InstallDir, mshName)
	}
	p.DataDir = p.InstallDir
	p.Exec = append([]string{p.Binary, RunCommand}, o.ServiceArgs...)
	for _, a := range p.Exec {
		if strings.ContainsAny(a, "\r\n\x00") {
			return nil, fmt.Errorf("install: argument %q contains a line break", a)
		}
	}

	for _, f := range agentDataFiles {
		p.DataFiles = append(p.DataFiles, join(p.DataDir, f))
	}
	for _, f := range logFileNames(LogFileName, LogBackups) {
		p.DataFiles = append(p.DataFiles, join(p.DataDir, f))
	}

	if !o.InPlace {
		// Owner-only: the directory holds the agent's private key.
		p.Dirs = append(p.Dirs, Dir{Path: p.InstallDir, Mode: 0o700, Private: true})
		if o.SourceBinary == "" {
			return nil, errors.New("install: no source binary")
		}
		p.Files = append(p.Files, File{Path: p.Binary, Mode: 0o755, Source: o.SourceBinary, Role: "binary"})
		p.Files = append(p.Files, File{Path: p.MSH, Mode: 0o600, Source: o.SourceMSH, Role: "settings", KeepExisting: true})
	}

	restart := o.RestartDelay
	if restart <= 0 {
		restart = DefaultRestartDelay
	}
	switch o.OS {
	case Linux:
		mem := firstNonEmpty(o.MemoryMax, DefaultMemoryMax)
		if err := checkMemoryMax(mem); err != nil {
			return nil, err
		}
		p.ServiceFile = "/etc/systemd/system/" + p.ServiceName + ".service"
		p.Files = append(p.Files, File{Path: p.ServiceFile, Mode: 0o644, Role: "service",
			Content: []byte(systemdUnit(p, mem, o.NoNewPrivileges, restart))})
	case Darwin:
		p.ServiceFile = "/Library/LaunchDaemons/" + p.ServiceName + ".plist"
		p.Files = append(p.Files, File{Path: p.ServiceFile, Mode: 0o644, Role: "service",
			Content: []byte(launchdPlist(p, restart))})
	case Windows:
		p.Windows = &WindowsService{
			Name: p.ServiceName, DisplayName: p.DisplayName, Description: p.Description,
			Executable: p.Binary, Args: p.Exec[1:], StartType: "automatic",
			RecoveryActions:          []string{"restart", "restart", "restart"},
			RecoveryDelay:            restart,
			ResetPeriod:              24 * time.Hour,
			FailureActionsOnNonCrash: true,
		}
	}
	return p, nil
}

// checkName rejects service names that would break out of the unit or plist
// file name or the quoting of the service definition.
func checkName(goos, name string) error {
	if goos == Windows {
		if strings.ContainsAny(name, `/\"`+"\r\n\x00") || len(name) > 256 {
			return fmt.Errorf("install: invalid Windows service name %q", name)
		}
		return nil
	}
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)
		if !ok {
			return fmt.Errorf("install: invalid service name %q (letters, digits, - _ . : only)", name)
		}
	}
	if name == "." || name == ".." || strings.HasPrefix(name, "-") {
		return fmt.Errorf("install: invalid service name %q", name)
	}
	return nil
}

func checkPathElement(what, s string) error {
	if s == "." || s == ".." || strings.ContainsAny(s, `/\`+"\r\n\x00") {
		return fmt.Errorf("install: invalid %s %q", what, s)
	}
	return nil
}

// checkMemoryMax accepts what systemd accepts for MemoryMax= in the forms
// administrators use: a byte count with an optional K/M/G/T suffix, a
// percentage, or "infinity".
func checkMemoryMax(s string) error {
	if s == "infinity" {
		return nil
	}
	num := strings.TrimRight(s, "KMGTkmgt%")
	if len(s)-len(num) > 1 || num == "" {
		return fmt.Errorf("install: invalid MemoryMax %q", s)
	}
	for _, r := range num {
		if r < '0' || r > '9' {
			return fmt.Errorf("install: invalid MemoryMax %q", s)
		}
	}
	return nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func winOrUnixDir(goos, p string) string {
	if goos == Windows {
		i := strings.LastIndexAny(p, `\/`)
		if i <= 0 {
			return p
		}
		if i == 2 && p[1] == ':' { // C:\x
			return p[:3]
		}
		return p[:i]
	}
	return path.Dir(p)
}

// Windows path helpers that work on any host, so plans for Windows can be
// computed and tested on Linux.
func winIsAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/') || strings.HasPrefix(p, `\\`)
}

func winClean(p string) string {
	p = strings.ReplaceAll(p, "/", `\`)
	for strings.Contains(p[2:], `\\`) {
		p = p[:2] + strings.ReplaceAll(p[2:], `\\`, `\`)
	}
	if len(p) > 3 {
		p = strings.TrimRight(p, `\`)
	}
	return p
}

func winJoin(elem ...string) string {
	var parts []string
	for _, e := range elem {
		if e != "" {
			parts = append(parts, strings.Trim(e, `\/`))
		}
	}
	if len(parts) > 0 && len(parts[0]) == 2 && parts[0][1] == ':' {
		parts[0] += `\`
		return winClean(parts[0] + strings.Join(parts[1:], `\`))
	}
	return winClean(strings.Join(parts, `\`))
}

// RecoveryError is returned by a Manager's Register when the service was
// registered but a restart-on-failure setting could not be applied (wine
// 8's SCM answers "Invalid level" to SERVICE_CONFIG_FAILURE_ACTIONS_FLAG).
// The installer logs it and goes on: the service runs, it only restarts
// less eagerly after a failure.
type RecoveryError struct{ Err error }

func (e *RecoveryError) Error() string { return "recovery settings: " + e.Err.Error() }
func (e *RecoveryError) Unwrap() error { return e.Err }
