package core

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/meshgo/meshagent/proto/handshake"
)

// DefaultAgentID returns the agent type number of the C agent this build
// replaces, so MeshCentral picks the right UI, paths and runcommands shell
// (control.md §8). Unknown platforms report 0.
func DefaultAgentID() uint32 {
	switch runtime.GOOS + "/" + runtime.GOARCH {
	case "linux/amd64":
		return handshake.AgentIDLinuxX64
	case "linux/arm64":
		return handshake.AgentIDLinuxARM64
	case "windows/amd64":
		return handshake.AgentIDWindowsService64
	case "darwin/amd64":
		return handshake.AgentIDMacX64
	case "darwin/arm64":
		return handshake.AgentIDMacARM64
	case "freebsd/amd64":
		return handshake.AgentIDFreeBSDX64
	}
	return 0
}

// DetectPlatformType guesses the device icon: virtual machine, laptop (a
// battery is present) or desktop, as the C agent does (control.md §4.11).
// Only Linux is probed; elsewhere it reports a desktop.
func DetectPlatformType() uint32 {
	if runtime.GOOS != "linux" {
		return handshake.PlatformDesktop
	}
	if isVirtualMachine() {
		return handshake.PlatformVM
	}
	if bats, _ := filepath.Glob("/sys/class/power_supply/BAT*"); len(bats) > 0 {
		return handshake.PlatformLaptop
	}
	return handshake.PlatformDesktop
}

func isVirtualMachine() bool {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "flags") {
			return strings.Contains(line, " hypervisor")
		}
	}
	return false
}

// DetectHostInfo returns "<OS name> - <arch>" for message 31: the
// os-release PRETTY_NAME on Linux and the BSDs, the product name, release
// and build from the registry and RtlGetVersion on Windows (osName).
func DetectHostInfo() string {
	name := osName()
	arch := map[string]string{"amd64": "x64", "386": "x86", "arm64": "arm64"}[runtime.GOARCH]
	if arch == "" {
		arch = runtime.GOARCH
	}
	return name + " - " + arch
}

// windowsName formats what Windows says about itself: the registry's
// ProductName ("Windows 10 Pro") and DisplayVersion ("23H2"), and the
// version RtlGetVersion reports (the registry's CurrentVersion stays 6.3
// for compatibility). Windows 11 still has "Windows 10" in ProductName;
// its build number, 22000 or later, is what tells them apart.
func windowsName(product, display string, major, minor, build uint32) string {
	name := strings.TrimSpace(product)
	if name == "" {
		name = "Windows"
	}
	if major == 10 && build >= 22000 {
		if rest, ok := strings.CutPrefix(name, "Windows 10"); ok {
			name = "Windows 11" + rest
		}
	}
	if display = strings.TrimSpace(display); display != "" {
		name += " " + display
	}
	return fmt.Sprintf("%s (%d.%d.%d)", name, major, minor, build)
}
