package main

import (
	"bytes"
	"io"
	"maps"
	"runtime"
	"strings"
	"testing"
)

func TestServiceArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want map[string]string
		warn string
		bad  bool
	}{
		{"meshinstall-linux.sh", []string{"--copy-msh=1"}, map[string]string{}, "", false},
		// meshinstall-linux.js passes quoted values through execFile.
		{"meshinstall-linux.js", []string{"--no-embedded=1", "--copy-msh=1", `--meshServiceName="acme"`, `--displayName="Acme Agent"`, `--installPath="/opt/x y"`},
			map[string]string{"meshservicename": "acme", "displayname": "Acme Agent", "installpath": "/opt/x y"}, "", false},
		{"case and dashes", []string{"-InstallPath=/a", "---MESHSERVICENAME=b"}, map[string]string{"installpath": "/a", "meshservicename": "b"}, "", false},
		{"separate value", []string{"--msh", "/tmp/x.msh", "--dry-run"}, map[string]string{"msh": "/tmp/x.msh", "dry-run": "1"}, "", false},
		{"bool value", []string{"--no-start=0", "--in-place"}, map[string]string{"no-start": "0", "in-place": "1"}, "", false},
		{"web proxy warns", []string{"--WebProxy=http://p:3128"}, map[string]string{}, "WebProxy", false},
		{"unknown warns", []string{"--frobnicate=1"}, map[string]string{}, "unknown option", false},
		{"missing value", []string{"--installPath"}, nil, "", true},
		{"stray word", []string{"install"}, nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			kv, err := parseServiceArgs(tt.args, &stderr)
			if tt.bad {
				if err == nil {
					t.Fatalf("accepted: %v", kv)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(kv, tt.want) {
				t.Errorf("got %v, want %v", kv, tt.want)
			}
			if tt.warn == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), tt.warn) {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.warn)
			}
		})
	}
}

// TestServiceDispatch checks that run() routes the C agent's spellings to
// the service commands (dry runs only: nothing is installed).
func TestServiceDispatch(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("plans for Windows would be installable here")
	}
	for _, args := range [][]string{
		{"-fullinstall", "--dry-run", "--target=windows"},
		{"--install", "--dry-run", "--target=windows"},
		{"-finstall", "--dry-run", "--target=windows"},
		{"install", "--dry-run", "--target=windows"},
		{"-fulluninstall", "--dry-run", "--target=windows"},
	} {
		var stdout bytes.Buffer
		if code := run(args, &stdout, io.Discard); code != exitOK {
			t.Errorf("%q: exit %d", args, code)
		}
		if !strings.Contains(stdout.String(), `C:\Program Files\Mesh Agent\MeshAgent.exe`) {
			t.Errorf("%q: no Windows plan:\n%s", args, stdout.String())
		}
	}
	if code := run([]string{"-fullinstall", "--target=windows"}, io.Discard, io.Discard); code == exitOK {
		t.Error("installing a Windows plan on Linux succeeded")
	}
	if code := run([]string{"-install", "--installPath=relative/dir", "--dry-run"}, io.Discard, io.Discard); code != exitConfig {
		t.Errorf("relative install path: exit %d, want %d", code, exitConfig)
	}
}
