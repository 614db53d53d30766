package sysinfo

import (
	"context"
	"os"
	"time"

	"github.com/shirou/gopsutil/v4/host"
)

func isRoot() bool { return os.Geteuid() == 0 }

func platformOSDesc(ctx context.Context) string {
	hi, err := host.InfoWithContext(ctx)
	if err != nil || hi.PlatformVersion == "" {
		return ""
	}
	return "macOS " + hi.PlatformVersion
}

func fillIdentifiers(ctx context.Context, ident map[string]any) {
	if hi, err := host.InfoWithContext(ctx); err == nil && hi.HostID != "" {
		ident["product_uuid"] = hi.HostID
	}
	ident["bios_mode"] = "UEFI"
}

func fillMemory(plat map[string]any, total uint64) {
	plat["memory"] = []any{map[string]any{"DeviceLocator": "System memory", "Size": fmtSize(total)}}
}

// fillBootTime: the UI multiplies darwin's value by 1000, so seconds.
func fillBootTime(plat map[string]any, t time.Time) { plat["LastBootUpTime"] = float64(t.Unix()) }

func fillPlatform(ctx context.Context, plat map[string]any, ident map[string]any) {
	vs := volumes(ctx)
	var arr []any
	for _, v := range vs {
		arr = append(arr, map[string]any{"mount_point": v.Mount, "type": v.FSType,
			"size": fmtSize(v.Total), "used": fmtSize(v.Used), "available": fmtSize(v.Free)})
	}
	if arr != nil {
		plat["volumes"] = arr
	}
	if ds := storageFromVolumes(vs); ds != nil {
		ident["storage_devices"] = ds
	}
}

// fillExtras: battery, GPU, TPM and pending reboot are not read here yet.
func fillExtras(hw, ident, data map[string]any) {}
