package install

import (
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestPlanLayout(t *testing.T) {
	tests := []struct {
		name                           string
		o                              Options
		dir, bin, msh, svcFile, svcNam string
	}{
		{"linux default", Options{OS: Linux, SourceBinary: "/tmp/meshagent"},
			"/usr/local/mesh_services/meshagent", "/usr/local/mesh_services/meshagent/meshagent",
			"/usr/local/mesh_services/meshagent/meshagent.msh", "/etc/systemd/system/meshagent.service", "meshagent"},
		{"linux company and name", Options{OS: Linux, SourceBinary: "/tmp/meshagent", CompanyName: "Acme", ServiceName: "acmeagent"},
			"/usr/local/mesh_services/Acme/acmeagent", "/usr/local/mesh_services/Acme/acmeagent/meshagent",
			"/usr/local/mesh_services/Acme/acmeagent/meshagent.msh", "/etc/systemd/system/acmeagent.service", "acmeagent"},
		{"linux installPath", Options{OS: Linux, SourceBinary: "/tmp/meshagent", InstallPath: "/opt/mesh/"},
			"/opt/mesh", "/opt/mesh/meshagent", "/opt/mesh/meshagent.msh", "/etc/systemd/system/meshagent.service", "meshagent"},
		{"linux in place", Options{OS: Linux, SourceBinary: "/srv/agent/bin/meshagent", InPlace: true},
			"/srv/agent/bin", "/srv/agent/bin/meshagent", "/srv/agent/bin/meshagent.msh", "/etc/systemd/system/meshagent.service", "meshagent"},
		{"darwin default", Options{OS: Darwin, SourceBinary: "/tmp/meshagent"},
			"/usr/local/mesh_services/meshagent", "/usr/local/mesh_services/meshagent/meshagent",
			"/usr/local/mesh_services/meshagent/meshagent.msh", "/Library/LaunchDaemons/meshagent.plist", "meshagent"},
		{"windows default", Options{OS: Windows, SourceBinary: `C:\Users\a\Downloads\meshagent.exe`},
			`C:\Program Files\Mesh Agent`, `C:\Program Files\Mesh Agent\MeshAgent.exe`, `C:\Program Files\Mesh Agent\MeshAgent.msh`, "", "Mesh Agent"},
		{"windows company, ProgramFiles", Options{OS: Windows, SourceBinary: `C:\x.exe`, CompanyName: "Acme", ProgramFiles: `D:\Apps\`},
			`D:\Apps\Acme\Mesh Agent`, `D:\Apps\Acme\Mesh Agent\MeshAgent.exe`, `D:\Apps\Acme\Mesh Agent\MeshAgent.msh`, "", "Mesh Agent"},
		{"windows installPath", Options{OS: Windows, SourceBinary: `C:\x.exe`, InstallPath: `E:/agents/mesh`},
			`E:\agents\mesh`, `E:\agents\mesh\MeshAgent.exe`, `E:\agents\mesh\MeshAgent.msh`, "", "Mesh Agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlan(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{p.InstallDir, p.Binary, p.MSH, p.ServiceFile, p.ServiceName}
			want := []string{tt.dir, tt.bin, tt.msh, tt.svcFile, tt.svcNam}
			if !slices.Equal(got, want) {
				t.Errorf("got  %q\nwant %q", got, want)
			}
			if p.DataDir != p.InstallDir {
				t.Errorf("data dir %q, want the install dir (C agent layout)", p.DataDir)
			}
			if !slices.Equal(p.Exec, []string{tt.bin, RunCommand}) {
				t.Errorf("exec %q", p.Exec)
			}
			// Files: binary, settings, service definition (not on Windows),
			// or only the service definition in place.
			var roles []string
			for _, f := range p.Files {
				roles = append(roles, f.Role)
			}
			want = []string{"binary", "settings", "service"}
			switch {
			case tt.o.InPlace:
				want = []string{"service"}
			case tt.o.OS == Windows:
				want = want[:2]
			}
			if !slices.Equal(roles, want) {
				t.Errorf("file roles %q, want %q", roles, want)
			}
			for _, f := range p.Files {
				if f.Role == "binary" && f.Mode != 0o755 || f.Role == "settings" && f.Mode != 0o600 || f.Role == "service" && f.Mode != 0o644 {
					t.Errorf("%s %s mode %v", f.Role, f.Path, f.Mode)
				}
			}
			if !tt.o.InPlace && (len(p.Dirs) != 1 || p.Dirs[0].Path != tt.dir || p.Dirs[0].Mode != 0o700 || !p.Dirs[0].Private) {
				t.Errorf("dirs %+v, want the install dir owner-only", p.Dirs)
			}
			if (tt.o.OS == Windows) != (p.Windows != nil) {
				t.Errorf("Windows SCM config %+v", p.Windows)
			}
			if !slices.ContainsFunc(p.DataFiles, func(s string) bool { return strings.HasSuffix(s, "meshagent.identity") }) {
				t.Errorf("data files %q lack the identity", p.DataFiles)
			}
		})
	}
}

func TestPlanRejects(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"unknown OS", Options{OS: "plan9", SourceBinary: "/x"}},
		{"slash in name", Options{OS: Linux, SourceBinary: "/x", ServiceName: "../etc/passwd"}},
		{"space in unix name", Options{OS: Linux, SourceBinary: "/x", ServiceName: "mesh agent"}},
		{"newline in name", Options{OS: Windows, SourceBinary: `C:\x`, ServiceName: "a\nb"}},
		{"dot-dot company", Options{OS: Linux, SourceBinary: "/x", CompanyName: ".."}},
		{"relative install path", Options{OS: Linux, SourceBinary: "/x", InstallPath: "mesh"}},
		{"relative windows path", Options{OS: Windows, SourceBinary: `C:\x`, InstallPath: `mesh`}},
		{"bad MemoryMax", Options{OS: Linux, SourceBinary: "/x", MemoryMax: "1G; rm -rf"}},
		{"newline in display name", Options{OS: Linux, SourceBinary: "/x", DisplayName: "a\n[Service]"}},
		{"newline in argument", Options{OS: Linux, SourceBinary: "/x", ServiceArgs: []string{"a\nExecStartPre=/bin/sh"}}},
		{"in place, relative", Options{OS: Linux, SourceBinary: "meshagent", InPlace: true}},
		{"no source binary", Options{OS: Linux}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := NewPlan(tt.o); err == nil {
				t.Fatalf("accepted: %+v", p)
			}
		})
	}
}

func unitLines(t *testing.T, p *Plan) []string {
	t.Helper()
	for _, f := range p.Files {
		if f.Role == "service" {
			return strings.Split(string(f.Content), "\n")
		}
	}
	t.Fatal("no service file in plan")
	return nil
}

func TestSystemdUnit(t *testing.T) {
	tests := []struct {
		name       string
		o          Options
		want, deny []string
	}{
		{"defaults", Options{},
			[]string{"ExecStart=/usr/local/mesh_services/meshagent/meshagent service-run", "WorkingDirectory=/usr/local/mesh_services/meshagent",
				"Restart=on-failure", "RestartSec=5", "MemoryMax=1G", "After=network-online.target", "Wants=network-online.target",
				"WantedBy=multi-user.target", "SyslogIdentifier=meshagent", "Type=simple", "Description=MeshCentral Agent"},
			[]string{"NoNewPrivileges=yes", "Restart=always"}},
		{"options", Options{MemoryMax: "256M", NoNewPrivileges: true, RestartDelay: 30 * time.Second, ServiceName: "acme", DisplayName: "Acme 100% Agent"},
			[]string{"MemoryMax=256M", "NoNewPrivileges=yes", "RestartSec=30", "SyslogIdentifier=acme", "Description=Acme 100%% Agent"}, nil},
		{"no cap", Options{MemoryMax: "infinity"}, []string{"MemoryMax=infinity"}, nil},
		{"quoting", Options{InstallPath: "/opt/my agent/$HOME%n", ServiceArgs: []string{"--log-level=debug"}},
			[]string{`ExecStart="/opt/my agent/$$HOME%%n/meshagent" service-run --log-level=debug`, `WorkingDirectory=/opt/my agent/$HOME%%n`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.OS, tt.o.SourceBinary = Linux, "/tmp/meshagent"
			p, err := NewPlan(tt.o)
			if err != nil {
				t.Fatal(err)
			}
			lines := unitLines(t, p)
			for _, w := range tt.want {
				if !slices.Contains(lines, w) {
					t.Errorf("unit lacks %q:\n%s", w, strings.Join(lines, "\n"))
				}
			}
			for _, d := range tt.deny {
				if slices.Contains(lines, d) {
					t.Errorf("unit has %q", d)
				}
			}
		})
	}
}

// TestSystemdUnitVerifies has systemd's own parser check the unit, where
// systemd-analyze is installed (it needs no running systemd).
func TestSystemdUnitVerifies(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "opt", "mesh agent", "meshagent")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755)
	for _, o := range []Options{
		{InstallPath: filepath.Dir(bin), NoNewPrivileges: true, ServiceArgs: []string{"--log-level=debug"}},
		{InstallPath: filepath.Dir(bin), MemoryMax: "infinity", ServiceName: "acme-agent"},
	} {
		o.OS, o.SourceBinary = Linux, "/tmp/x"
		p, err := NewPlan(o)
		if err != nil {
			t.Fatal(err)
		}
		unit := filepath.Join(dir, p.ServiceName+".service")
		os.WriteFile(unit, []byte(strings.Join(unitLines(t, p), "\n")), 0o644)
		out, err := exec.Command(sa, "verify", "--man=no", unit).CombinedOutput()
		// Without a running systemd, verify may complain about the
		// environment (no bus, no default target); only complaints about
		// our file's syntax count.
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, unit) && (strings.Contains(line, "Unknown") || strings.Contains(line, "Invalid") ||
				strings.Contains(line, "Failed to parse") || strings.Contains(line, "Missing") || strings.Contains(line, "ignoring")) {
				t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
				break
			}
		}
		t.Logf("systemd-analyze verify %s: err=%v\n%s", p.ServiceName, err, out)
	}
}

func TestLaunchdPlist(t *testing.T) {
	p, err := NewPlan(Options{OS: Darwin, SourceBinary: "/tmp/meshagent", InstallPath: "/opt/a&b <c>", ServiceName: "com.acme.agent",
		ServiceArgs: []string{"--log-level=debug"}})
	if err != nil {
		t.Fatal(err)
	}
	var content []byte
	for _, f := range p.Files {
		if f.Role == "service" {
			content = f.Content
		}
	}
	if p.ServiceFile != "/Library/LaunchDaemons/com.acme.agent.plist" {
		t.Errorf("plist path %q", p.ServiceFile)
	}
	// Decode the plist's top dict generically: key, then a value element.
	type elem struct {
		XMLName xml.Name
		Text    string `xml:",chardata"`
		Inner   []elem `xml:",any"`
	}
	var doc struct {
		Dict elem `xml:"dict"`
	}
	if err := xml.Unmarshal(content, &doc); err != nil {
		t.Fatalf("plist is not XML: %v\n%s", err, content)
	}
	got := map[string]elem{}
	items := doc.Dict.Inner
	for i := 0; i+1 < len(items); i += 2 {
		if items[i].XMLName.Local != "key" {
			t.Fatalf("expected a key at %d, got %s", i, items[i].XMLName.Local)
		}
		got[items[i].Text] = items[i+1]
	}
	if got["Label"].Text != "com.acme.agent" {
		t.Errorf("Label %q", got["Label"].Text)
	}
	var args []string
	for _, s := range got["ProgramArguments"].Inner {
		args = append(args, s.Text)
	}
	if want := []string{"/opt/a&b <c>/meshagent", "service-run", "--log-level=debug"}; !slices.Equal(args, want) {
		t.Errorf("ProgramArguments %q, want %q", args, want)
	}
	if got["WorkingDirectory"].Text != "/opt/a&b <c>" {
		t.Errorf("WorkingDirectory %q", got["WorkingDirectory"].Text)
	}
	if got["RunAtLoad"].XMLName.Local != "true" {
		t.Errorf("RunAtLoad %v", got["RunAtLoad"].XMLName.Local)
	}
	ka := got["KeepAlive"]
	if ka.XMLName.Local != "dict" || len(ka.Inner) != 2 || ka.Inner[0].Text != "SuccessfulExit" || ka.Inner[1].XMLName.Local != "false" {
		t.Errorf("KeepAlive should restart on failure only: %+v", ka)
	}
	if got["ThrottleInterval"].Text != "5" {
		t.Errorf("ThrottleInterval %q", got["ThrottleInterval"].Text)
	}
	if _, ok := got["StandardErrorPath"]; ok {
		t.Error("plist sets StandardErrorPath (an unbounded log file)")
	}
}

func TestWindowsService(t *testing.T) {
	p, err := NewPlan(Options{OS: Windows, SourceBinary: `C:\dl\meshagent.exe`, ServiceName: "Acme Agent",
		DisplayName: "Acme", RestartDelay: 10 * time.Second, ServiceArgs: []string{"--log-level=warn"}})
	if err != nil {
		t.Fatal(err)
	}
	ws := p.Windows
	if ws.Name != "Acme Agent" || ws.DisplayName != "Acme" || ws.StartType != "automatic" {
		t.Errorf("service %+v", ws)
	}
	if ws.Executable != `C:\Program Files\Acme Agent\MeshAgent.exe` || !slices.Equal(ws.Args, []string{RunCommand, "--log-level=warn"}) {
		t.Errorf("command %q %q", ws.Executable, ws.Args)
	}
	if !slices.Equal(ws.RecoveryActions, []string{"restart", "restart", "restart"}) || ws.RecoveryDelay != 10*time.Second ||
		ws.ResetPeriod != 24*time.Hour || !ws.FailureActionsOnNonCrash {
		t.Errorf("recovery %+v", ws)
	}
	if p.ServiceFile != "" {
		t.Errorf("service file %q on Windows", p.ServiceFile)
	}
}
