package sysinfo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/host"
	"golang.org/x/sys/windows"
)

// isRoot reports an elevated token (SYSTEM or admin), the Windows meaning of
// coreinfo.root.
func isRoot() bool { return windows.GetCurrentProcessToken().IsElevated() }

func platformOSDesc(ctx context.Context) string {
	hi, err := host.InfoWithContext(ctx)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(hi.Platform + " - " + hi.PlatformVersion)
}

func fillIdentifiers(ctx context.Context, ident map[string]any) {
	if hi, err := host.InfoWithContext(ctx); err == nil && hi.HostID != "" {
		ident["product_uuid"] = strings.ToUpper(hi.HostID)
	}
}

// fillMemory: the UI prints Capacity/1024/1024 "Mb" per bank.
func fillMemory(plat map[string]any, total uint64) {
	plat["memory"] = []any{map[string]any{"BankLabel": "System memory", "Capacity": float64(total)}}
}

// fillBootTime: in hardware.windows.osinfo, where MeshCentral's web UI
// (default.handlebars, "Last Boot Up Time") and meshcore.js read it, in
// WMI's CIM_DATETIME form (wmiTime).
func fillBootTime(plat map[string]any, t time.Time) {
	os, _ := plat["osinfo"].(map[string]any)
	if os == nil {
		os = map[string]any{}
		plat["osinfo"] = os
	}
	os["LastBootUpTime"] = wmiTime(t.Local())
}

func fillPlatform(ctx context.Context, plat map[string]any, ident map[string]any) {
	os, _ := plat["osinfo"].(map[string]any)
	if os == nil {
		os = map[string]any{}
		plat["osinfo"] = os
	}
	if hi, err := host.InfoWithContext(ctx); err == nil {
		os["Caption"] = hi.Platform
		os["Version"] = hi.PlatformVersion
		switch hi.KernelArch {
		case "x86_64", "amd64", "arm64":
			os["OSArchitecture"] = "64-bit"
		default:
			os["OSArchitecture"] = "32-bit"
		}
	}
	// Win32_OperatingSystem.Version is major.minor.build, which
	// RtlGetVersion reports without the compatibility shims.
	if v := windows.RtlGetVersion(); v.MajorVersion != 0 {
		os["Version"] = fmt.Sprintf("%d.%d.%d", v.MajorVersion, v.MinorVersion, v.BuildNumber)
	}
	vs := volumes(ctx)
	vols := map[string]any{}
	for _, v := range vs {
		letter := strings.TrimSuffix(strings.TrimSuffix(v.Mount, "\\"), ":")
		if len(letter) != 1 {
			continue
		}
		vols[letter] = map[string]any{"name": "", "type": v.FSType, "size": float64(v.Total), "sizeremaining": float64(v.Free)}
	}
	if len(vols) > 0 {
		plat["volumes"] = vols
	}
	if ds := storageFromVolumes(vs); ds != nil {
		ident["storage_devices"] = ds
	}
}
