package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// fakeManager records calls and keeps a status, as a service manager would.
type fakeManager struct {
	calls  []string
	status Status
	fail   string // call that fails
}

func (f *fakeManager) Name() string { return "fake" }
func (f *fakeManager) do(c string, p *Plan) error {
	f.calls = append(f.calls, c)
	if c == f.fail {
		return errors.New("fake failure")
	}
	return nil
}
func (f *fakeManager) Register(_ context.Context, p *Plan) error {
	if err := f.do("register", p); err != nil {
		return err
	}
	f.status = StatusStopped
	return nil
}
func (f *fakeManager) Unregister(_ context.Context, p *Plan) error {
	f.status = StatusNotInstalled
	return f.do("unregister", p)
}
func (f *fakeManager) Start(_ context.Context, p *Plan) error {
	if err := f.do("start", p); err != nil {
		return err
	}
	f.status = StatusRunning
	return nil
}
func (f *fakeManager) Stop(_ context.Context, p *Plan) error {
	f.status = StatusStopped
	return f.do("stop", p)
}
func (f *fakeManager) Restart(_ context.Context, p *Plan) error { return f.do("restart", p) }
func (f *fakeManager) Status(_ context.Context, p *Plan) (Status, error) {
	f.calls = append(f.calls, "status")
	return f.status, nil
}

// layout writes a source binary and .msh and returns a plan installing them
// under a fresh root.
func layout(t *testing.T) (root string, p *Plan) {
	t.Helper()
	src := t.TempDir()
	bin := filepath.Join(src, "meshagent")
	os.WriteFile(bin, []byte("binary v1"), 0o700)
	os.WriteFile(bin+".msh", []byte("MeshServer=wss://127.0.0.1:1/agent.ashx\n"), 0o644)
	p, err := NewPlan(Options{OS: Linux, SourceBinary: bin, SourceMSH: bin + ".msh"})
	if err != nil {
		t.Fatal(err)
	}
	return t.TempDir(), p
}

func mode(t *testing.T, path string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

func TestInstallUninstall(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix plan")
	}
	root, p := layout(t)
	m := &fakeManager{status: StatusNotInstalled}
	in := &Installer{Plan: p, Root: root, Manager: m}
	ctx := context.Background()
	if err := in.Install(ctx); err != nil {
		t.Fatal(err)
	}
	dir := in.Real(p.InstallDir)
	for path, want := range map[string]fs.FileMode{
		dir: 0o700, in.Real(p.Binary): 0o755, in.Real(p.MSH): 0o600, in.Real(p.ServiceFile): 0o644,
	} {
		if got := mode(t, path); got != want {
			t.Errorf("%s mode %v, want %v", path, got, want)
		}
	}
	if b, _ := os.ReadFile(in.Real(p.Binary)); string(b) != "binary v1" {
		t.Errorf("installed binary %q", b)
	}
	if !slices.Equal(m.calls, []string{"status", "register", "start"}) {
		t.Errorf("manager calls %q", m.calls)
	}

	// The agent runs and creates its identity and log; an administrator
	// leaves a file of their own.
	os.WriteFile(filepath.Join(dir, "meshagent.identity"), []byte("key"), 0o600)
	os.WriteFile(filepath.Join(dir, "meshagent.log"), []byte("log"), 0o600)
	os.WriteFile(filepath.Join(dir, "meshagent.log.1"), []byte("log"), 0o600)

	// Update: a new binary, no new .msh. The running service is stopped
	// first, the installed .msh and the identity are kept.
	os.WriteFile(p.Files[0].Source, []byte("binary v2"), 0o700)
	os.Remove(p.Files[1].Source)
	m.calls = nil
	if err := in.Install(ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.calls, []string{"status", "stop", "register", "start"}) {
		t.Errorf("update: manager calls %q", m.calls)
	}
	if b, _ := os.ReadFile(in.Real(p.Binary)); string(b) != "binary v2" {
		t.Errorf("updated binary %q", b)
	}
	if b, _ := os.ReadFile(in.Real(p.MSH)); !bytes.HasPrefix(b, []byte("MeshServer=")) {
		t.Errorf("installed .msh lost: %q", b)
	}

	// -uninstall: service and binary go; settings and identity stay.
	m.calls = nil
	if err := in.Uninstall(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(m.calls, []string{"status", "stop", "unregister"}) {
		t.Errorf("uninstall: manager calls %q", m.calls)
	}
	for _, f := range []string{p.Binary, p.ServiceFile} {
		if _, err := os.Stat(in.Real(f)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s survived uninstall", f)
		}
	}
	for _, f := range []string{"meshagent.msh", "meshagent.identity"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("uninstall removed %s: %v", f, err)
		}
	}

	// -fulluninstall: everything installed or created by the agent goes,
	// a foreign file stays, and so does the directory holding it.
	in.Install(ctx)
	os.WriteFile(filepath.Join(dir, "admin-notes.txt"), []byte("mine"), 0o644)
	if err := in.Uninstall(ctx, true); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if !slices.Equal(left, []string{"admin-notes.txt"}) {
		t.Errorf("after full uninstall %s holds %q, want only the foreign file", dir, left)
	}
	// Without the foreign file the directory goes too.
	os.Remove(filepath.Join(dir, "admin-notes.txt"))
	in.Install(ctx)
	if err := in.Uninstall(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("install directory survived a full uninstall: %v", err)
	}
	// Nothing else under the root but empty parents.
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("left behind: %s", path)
		}
		return nil
	})
}

func TestInstallFailures(t *testing.T) {
	t.Run("no settings anywhere", func(t *testing.T) {
		root, p := layout(t)
		os.Remove(p.Files[1].Source)
		err := (&Installer{Plan: p, Root: root}).Install(context.Background())
		if err == nil || !strings.Contains(err.Error(), "settings") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("register fails", func(t *testing.T) {
		root, p := layout(t)
		m := &fakeManager{status: StatusNotInstalled, fail: "register"}
		err := (&Installer{Plan: p, Root: root, Manager: m}).Install(context.Background())
		if err == nil || !strings.Contains(err.Error(), "register") {
			t.Fatalf("err = %v", err)
		}
		if slices.Contains(m.calls, "start") {
			t.Error("started after a failed registration")
		}
	})
	t.Run("no start", func(t *testing.T) {
		root, p := layout(t)
		m := &fakeManager{status: StatusNotInstalled}
		if err := (&Installer{Plan: p, Root: root, Manager: m, NoStart: true}).Install(context.Background()); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(m.calls, "start") {
			t.Errorf("calls %q", m.calls)
		}
	})
	t.Run("reinstall from the installed copy", func(t *testing.T) {
		root, p := layout(t)
		in := &Installer{Plan: p, Root: root}
		if err := in.Install(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Now the source is the installed binary itself.
		p2, err := NewPlan(Options{OS: Linux, SourceBinary: in.Real(p.Binary), SourceMSH: in.Real(p.MSH)})
		if err != nil {
			t.Fatal(err)
		}
		in2 := &Installer{Plan: p2, Root: root}
		if in2.Real(p2.Binary) != in.Real(p.Binary) {
			t.Skip("paths differ")
		}
		if err := in2.Install(context.Background()); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(in.Real(p.Binary)); string(b) != "binary v1" {
			t.Errorf("binary %q", b)
		}
	})
}

// recorder is a Runner that records command lines and answers from a table.
type recorder struct {
	calls   []string
	answers map[string]string // command line -> output; prefix "!" = fail
}

func (r *recorder) run(_ context.Context, name string, args ...string) (string, error) {
	line := name + " " + strings.Join(args, " ")
	r.calls = append(r.calls, line)
	if out, ok := r.answers[line]; ok {
		if s, fail := strings.CutPrefix(out, "!"); fail {
			return s, fmt.Errorf("%s: exit status 3", line)
		}
		return out, nil
	}
	return "", nil
}

func TestSystemdCommands(t *testing.T) {
	root, p := layout(t)
	rec := &recorder{answers: map[string]string{"systemctl is-active meshagent.service": "!inactive\n"}}
	sd := &Systemd{Run: rec.run, Root: root}
	in := &Installer{Plan: p, Root: root, Manager: sd}
	ctx := context.Background()
	if err := in.Install(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"systemctl daemon-reload", "systemctl enable meshagent.service", "systemctl restart meshagent.service"}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("install calls %q, want %q", rec.calls, want)
	}
	if st, err := sd.Status(ctx, p); st != StatusStopped || err != nil {
		t.Errorf("status %v %v", st, err)
	}
	rec.answers["systemctl is-active meshagent.service"] = "active\n"
	if st, _ := sd.Status(ctx, p); st != StatusRunning {
		t.Errorf("status %v", st)
	}
	rec.calls = nil
	if err := in.Uninstall(ctx, true); err != nil {
		t.Fatal(err)
	}
	want = []string{"systemctl is-active meshagent.service", "systemctl stop meshagent.service",
		"systemctl disable meshagent.service", "systemctl daemon-reload"}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("uninstall calls %q, want %q", rec.calls, want)
	}
	if st, _ := sd.Status(ctx, p); st != StatusNotInstalled {
		t.Errorf("status after uninstall %v", st)
	}
}

func TestLaunchdCommands(t *testing.T) {
	root := t.TempDir()
	p, err := NewPlan(Options{OS: Darwin, SourceBinary: "/tmp/x"})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{answers: map[string]string{"launchctl print system/meshagent": "!Could not find service"}}
	l := &Launchd{Run: rec.run, Root: root}
	ctx := context.Background()
	if st, _ := l.Status(ctx, p); st != StatusNotInstalled {
		t.Errorf("status %v", st)
	}
	os.MkdirAll(filepath.Join(root, "Library/LaunchDaemons"), 0o755)
	os.WriteFile(filepath.Join(root, p.ServiceFile), []byte("x"), 0o644)
	if st, _ := l.Status(ctx, p); st != StatusStopped {
		t.Errorf("status %v", st)
	}
	l.Start(ctx, p)
	rec.answers["launchctl print system/meshagent"] = "system/meshagent = {\n\tstate = running\n\tpid = 42\n}\n"
	if st, _ := l.Status(ctx, p); st != StatusRunning {
		t.Errorf("status %v", st)
	}
	l.Restart(ctx, p)
	l.Stop(ctx, p)
	want := []string{"launchctl print system/meshagent", "launchctl print system/meshagent", "launchctl bootstrap system /Library/LaunchDaemons/meshagent.plist",
		"launchctl print system/meshagent", "launchctl print system/meshagent", "launchctl kickstart -k system/meshagent", "launchctl bootout system/meshagent"}
	if !slices.Equal(rec.calls, want) {
		t.Errorf("calls\n%q\nwant\n%q", rec.calls, want)
	}
}

func TestDetectManager(t *testing.T) {
	root := t.TempDir()
	p, _ := NewPlan(Options{OS: Linux, SourceBinary: "/tmp/x"})
	if _, err := DetectManager(p, root, nil); !errors.Is(err, ErrNoServiceManager) {
		t.Errorf("empty root: %v", err)
	}
	if _, err := exec.LookPath("systemctl"); err != nil {
		t.Skip("no systemctl on PATH")
	}
	os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
	m, err := DetectManager(p, root, nil)
	if err != nil || m.Name() != "systemd" {
		t.Errorf("root with run/systemd/system: %v %v", m, err)
	}
	pd, _ := NewPlan(Options{OS: Darwin, SourceBinary: "/tmp/x"})
	if m, err := DetectManager(pd, root, nil); err != nil || m.Name() != "launchd" {
		t.Errorf("darwin: %v %v", m, err)
	}
}

func TestRotatingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", LogFileName)
	r, err := OpenRotatingFile(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	line := bytes.Repeat([]byte("x"), 39)
	line = append(line, '\n') // 40 bytes
	for i := range 10 {
		line[0] = byte('0' + i)
		if _, err := r.Write(line); err != nil {
			t.Fatal(err)
		}
	}
	r.Close()
	// Windows has no POSIX modes: the log inherits the data directory's
	// DACL (agent/core restricts a data directory it creates).
	if runtime.GOOS != "windows" && mode(t, path) != 0o600 {
		t.Errorf("log mode %v", mode(t, path))
	}
	read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
	// 2 lines per file: writes 8,9 in the file, 6,7 in .1, 4,5 in .2; the
	// rest dropped.
	for p, first := range map[string]byte{path: '8', path + ".1": '6', path + ".2": '4'} {
		got := read(p)
		if len(got) != 80 || got[0] != first {
			t.Errorf("%s: %d bytes starting %q, want 80 starting %q", filepath.Base(p), len(got), got[:1], first)
		}
	}
	if _, err := os.Stat(path + ".3"); err == nil {
		t.Error("more backups than asked")
	}
	// Reopening appends and counts the existing size.
	r, _ = OpenRotatingFile(path, 100, 2)
	r.Write(line)
	r.Close()
	if got := read(path); len(got) != 40 {
		t.Errorf("reopen did not rotate a full file: %d bytes", len(got))
	}
	// Writes after Close fail rather than panic.
	if _, err := r.Write(line); err == nil {
		t.Error("write after close succeeded")
	}
}

func TestInstalledDir(t *testing.T) {
	for _, goos := range []string{Linux, Darwin} {
		for _, dir := range []string{"/opt/mesh", "/opt/a&b 100%"} {
			root := t.TempDir()
			src := filepath.Join(t.TempDir(), "meshagent")
			os.WriteFile(src, []byte("bin"), 0o755)
			os.WriteFile(src+".msh", []byte("x=y"), 0o644)
			p, err := NewPlan(Options{OS: goos, SourceBinary: src, SourceMSH: src + ".msh", InstallPath: dir})
			if err != nil {
				t.Fatal(err)
			}
			def, _ := NewPlan(Options{OS: goos, SourceBinary: src})
			if _, ok := InstalledDir(def, root); ok {
				t.Errorf("%s: found an installation in an empty root", goos)
			}
			if err := (&Installer{Plan: p, Root: root}).Install(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got, ok := InstalledDir(def, root); !ok || got != dir {
				t.Errorf("%s: InstalledDir = %q %v, want %q", goos, got, ok, dir)
			}
		}
	}
}
