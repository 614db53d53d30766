package core

import (
	"runtime"
	"strings"
	"testing"
)

func TestWindowsName(t *testing.T) {
	tests := []struct {
		product, display    string
		major, minor, build uint32
		want                string
	}{
		{"Windows 10 Pro", "22H2", 10, 0, 19045, "Windows 10 Pro 22H2 (10.0.19045)"},
		{"Windows 10 Pro", "23H2", 10, 0, 22631, "Windows 11 Pro 23H2 (10.0.22631)"},
		{"Windows Server 2022 Datacenter", "21H2", 10, 0, 20348, "Windows Server 2022 Datacenter 21H2 (10.0.20348)"},
		{"Windows 7 Professional", "", 6, 1, 7601, "Windows 7 Professional (6.1.7601)"},
		{"", "", 6, 1, 7601, "Windows (6.1.7601)"},
	}
	for _, tt := range tests {
		if got := windowsName(tt.product, tt.display, tt.major, tt.minor, tt.build); got != tt.want {
			t.Errorf("windowsName(%q, %q, %d.%d.%d) = %q, want %q", tt.product, tt.display, tt.major, tt.minor, tt.build, got, tt.want)
		}
	}
}

// TestDetectHostInfo: the OS is the one the binary runs on (under wine,
// Windows, never the Linux host's os-release).
func TestDetectHostInfo(t *testing.T) {
	hi := DetectHostInfo()
	name, arch, ok := strings.Cut(hi, " - ")
	if !ok || name == "" || arch == "" {
		t.Fatalf("DetectHostInfo() = %q, want \"<OS name> - <arch>\"", hi)
	}
	if runtime.GOOS == "windows" {
		if !strings.Contains(name, "Windows") || !strings.Contains(name, "(") {
			t.Errorf("DetectHostInfo() = %q, want the Windows product and version", hi)
		}
		for _, linux := range []string{"Linux", "Debian", "Ubuntu"} {
			if strings.Contains(name, linux) {
				t.Errorf("DetectHostInfo() = %q names the host OS, not Windows", hi)
			}
		}
	}
	t.Log(hi)
}
