//go:build linux

package install_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A real systemd, as PID 1 of its own PID, mount, UTS, IPC and cgroup
// namespaces, with only stand-in targets for unit files (the host's units
// are hidden by bind mounts, so it starts nothing but what the test
// installs), an empty /usr/local (so that an install to the default
// /usr/local/mesh_services stays in the namespace; the test sees it through
// /proc/PID/root) and the host's network, so the agent can dial loopback.
const systemdNSStart = `#!/bin/bash
set -e
mount -t tmpfs tmpfs /run
mount --bind "$NSDIR/units" /lib/systemd/system
mount --bind "$NSDIR/etc" /etc/systemd/system
mount --bind "$NSDIR/empty" /lib/systemd/system-generators
mount -t tmpfs tmpfs /usr/local
mount -t proc proc /proc
export container=other
exec "$SYSTEMD" --system --unit=default.target --log-target=console --log-level=info
`

var cgroupLeftovers = []string{"init.scope", "system.slice"}

// startSystemdNS starts systemd in namespaces and returns its PID (in this
// namespace) and the directory its /etc/systemd/system is bound to. The
// test skips when systemd cannot run that way here.
func startSystemdNS(t *testing.T) (int, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces")
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd is PID 1 here; not nesting another")
	}
	var systemd string
	for _, p := range []string{"/lib/systemd/systemd", "/usr/lib/systemd/systemd"} {
		if _, err := os.Stat(p); err == nil {
			systemd = p
		}
	}
	for _, tool := range []string{"unshare", "nsenter", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	if systemd == "" {
		t.Skip("systemd not installed")
	}
	dir := t.TempDir()
	for _, d := range []string{"units", "etc", "empty"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	// The targets a service's default dependencies and our unit name.
	for _, u := range []string{"default", "multi-user", "sysinit", "basic", "shutdown", "network", "network-online", "sockets", "paths", "timers", "slices"} {
		os.WriteFile(filepath.Join(dir, "units", u+".target"), []byte("[Unit]\nDescription="+u+" (test stand-in)\n"), 0o644)
	}
	script := filepath.Join(dir, "start.sh")
	os.WriteFile(script, []byte(systemdNSStart), 0o755)

	// Empty cgroups systemd creates in hierarchies nobody else uses here;
	// remember which existed so that only ours are removed afterwards.
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	existed := map[string]bool{}
	for _, h := range hierarchies {
		for _, c := range cgroupLeftovers {
			if _, err := os.Stat(filepath.Join(h, c)); err == nil {
				existed[filepath.Join(h, c)] = true
			}
		}
	}
	logf, _ := os.Create(filepath.Join(dir, "systemd.log"))
	cmd := exec.Command("unshare", "--fork", "--pid", "--mount", "--uts", "--ipc", "--cgroup", "--propagation", "private", script)
	cmd.Env = append(os.Environ(), "NSDIR="+dir, "SYSTEMD="+systemd)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	pid := 0
	t.Cleanup(func() {
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL) // PID 1 of its namespace: takes everything in it along
		}
		cmd.Process.Kill()
		<-done
		logf.Close()
		time.Sleep(200 * time.Millisecond)
		for _, h := range hierarchies {
			for _, c := range cgroupLeftovers {
				p := filepath.Join(h, c)
				if existed[p] {
					continue
				}
				// Depth first; rmdir only succeeds on empty cgroups.
				var dirs []string
				filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						dirs = append(dirs, path)
					}
					return nil
				})
				for i := len(dirs) - 1; i >= 0; i-- {
					syscall.Rmdir(dirs[i])
				}
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for pid == 0 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if f := strings.Fields(string(b)); len(f) > 0 {
			pid, _ = strconv.Atoi(f[0])
		}
		select {
		case <-done:
			b, _ := os.ReadFile(filepath.Join(dir, "systemd.log"))
			t.Skipf("systemd in a namespace exited at once:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Skip("systemd in a namespace did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		out, _ := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-m", "-p", "systemctl", "is-system-running").CombinedOutput()
		state := strings.TrimSpace(string(out))
		if state == "running" || state == "degraded" {
			t.Logf("systemd (host pid %d) is %s in its namespaces", pid, state)
			return pid, filepath.Join(dir, "etc")
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "systemd.log"))
			t.Skipf("systemd in a namespace is %q after 30 s:\n%s", state, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestUnderRealSystemd installs with the real systemctl talking to a real
// systemd: install (daemon-reload, enable, start), the unit's properties as
// systemd parsed them, restart after a crash (Restart=on-failure), our
// status/stop/start/restart, and -fulluninstall from the installed binary.
func TestUnderRealSystemd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts systemd")
	}
	agentBinary(t)
	sd, etc := startSystemdNS(t)
	ns := func(args ...string) (string, int) {
		return run(t, nil, "/", "nsenter", append([]string{"-t", strconv.Itoa(sd), "-m", "-p"}, args...)...)
	}
	show := func(props ...string) map[string]string {
		args := []string{"systemctl", "show", "meshagent.service"}
		for _, p := range props {
			args = append(args, "-p", p)
		}
		out, _ := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(sd), "-m", "-p"}, args...)...).Output()
		m := map[string]string{}
		for _, l := range strings.Split(string(out), "\n") {
			if k, v, ok := strings.Cut(l, "="); ok {
				m[k] = v
			}
		}
		return m
	}
	dl := download(t, deadMSH())
	inst := filepath.Join(t.TempDir(), "mesh_services", "meshagent")
	installed := filepath.Join(inst, "meshagent")

	// A C agent already runs under the same unit name from
	// /lib/systemd/system (a sleep stands in for it): installing over it
	// must replace the running process, not leave it running.
	units := filepath.Join(filepath.Dir(etc), "units")
	os.WriteFile(filepath.Join(units, "meshagent.service"),
		[]byte("[Unit]\nDescription=stand-in for a C agent\n[Service]\nExecStart=/bin/sleep 1000\n"), 0o644)
	ns("systemctl", "daemon-reload")
	ns("systemctl", "start", "meshagent")
	if st := show("ActiveState")["ActiveState"]; st != "active" {
		t.Fatalf("stand-in C agent: %s", st)
	}

	if _, code := ns(filepath.Join(dl, "meshagent"), "-fullinstall", "--copy-msh=1", "--installPath="+inst); code != 0 {
		t.Fatal("install under systemd failed")
	}
	if _, code := ns("pgrep", "-x", "sleep"); code == 0 {
		t.Error("the C agent stand-in still runs after our install")
	}
	if _, err := os.Stat(filepath.Join(etc, "meshagent.service")); err != nil {
		t.Fatalf("unit not in /etc/systemd/system: %v", err)
	}
	// A symlink to /etc/systemd/system/meshagent.service, which only
	// resolves inside the namespace.
	if _, err := os.Lstat(filepath.Join(etc, "multi-user.target.wants", "meshagent.service")); err != nil {
		t.Errorf("not enabled: %v", err)
	}
	waitFor(t, "the agent's start in its log file", 60*time.Second, func() bool {
		return fileContains(filepath.Join(inst, "meshagent.log"), "meshagent starting as a service")
	})
	p := show("ActiveState", "MainPID", "Restart", "RestartUSec", "MemoryMax", "NoNewPrivileges", "WorkingDirectory", "ExecStart", "UnitFileState")
	t.Logf("systemctl show: %v", p)
	want := map[string]string{"ActiveState": "active", "Restart": "on-failure", "RestartUSec": "5s", "MemoryMax": "1073741824",
		"NoNewPrivileges": "no", "WorkingDirectory": inst, "UnitFileState": "enabled"}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("%s=%q, want %q", k, p[k], v)
		}
	}
	if !strings.Contains(p["ExecStart"], "argv[]="+installed+" service-run") {
		t.Errorf("ExecStart %q", p["ExecStart"])
	}
	if out, code := ns(installed, "status"); code != 0 || !strings.Contains(out, "meshagent: running") {
		t.Errorf("status: %d %q", code, out)
	}

	// A crash: systemd restarts it after RestartSec.
	first := p["MainPID"]
	ns("kill", "-9", first)
	waitFor(t, "systemd to restart the killed agent", 30*time.Second, func() bool {
		p := show("ActiveState", "MainPID", "NRestarts")
		return p["ActiveState"] == "active" && p["MainPID"] != first && p["MainPID"] != "0" && p["NRestarts"] == "1"
	})

	if _, code := ns(installed, "stop"); code != 0 {
		t.Error("stop failed")
	}
	if out, code := ns(installed, "status"); code != 3 || !strings.Contains(out, "stopped") {
		t.Errorf("status after stop: %d %q", code, out)
	}
	if st := show("ActiveState")["ActiveState"]; st != "inactive" {
		t.Errorf("after stop systemd says %q (a clean stop must not count as a failure)", st)
	}
	if _, code := ns(installed, "start"); code != 0 {
		t.Error("start failed")
	}
	before := show("MainPID")["MainPID"]
	if _, code := ns(installed, "restart"); code != 0 {
		t.Error("restart failed")
	}
	if p := show("ActiveState", "MainPID"); p["ActiveState"] != "active" || p["MainPID"] == before {
		t.Errorf("after restart: %v (before pid %s)", p, before)
	}

	// -fulluninstall from the installed binary, which finds its
	// installation from the unit.
	if _, code := ns(installed, "-fulluninstall"); code != 0 {
		t.Error("fulluninstall failed")
	}
	// Our unit is gone; the C agent's, which we never touched, is what
	// systemd sees again.
	if st := show("FragmentPath", "ActiveState"); st["FragmentPath"] != "/lib/systemd/system/meshagent.service" && st["FragmentPath"] != "/usr/lib/systemd/system/meshagent.service" || st["ActiveState"] != "inactive" {
		t.Errorf("after -fulluninstall: %v", st)
	}
	if _, err := os.Stat(filepath.Join(units, "meshagent.service")); err != nil {
		t.Errorf("-fulluninstall removed the C agent's unit: %v", err)
	}
	if _, err := os.Stat(inst); err == nil {
		ents, _ := os.ReadDir(inst)
		t.Errorf("%s left behind with %d entries", inst, len(ents))
	}
	ents, _ := os.ReadDir(etc)
	for _, e := range ents {
		if e.Name() != "multi-user.target.wants" {
			t.Errorf("left in /etc/systemd/system: %s", e.Name())
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(etc, "multi-user.target.wants")); len(ents) != 0 {
		t.Errorf("enable symlink left behind")
	}
}
