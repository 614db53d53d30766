package sysinfo

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
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

// fillExtras adds the batteries (the AppleSmartBattery services ioreg
// lists) and the display adapters (system_profiler), in the shapes
// MeshCentral's web UI reads (hardware.battery, identifiers.gpu_name). A
// Mac has no TPM and no pending-reboot flag the C agent reads, so, as the
// C agent does, neither key is sent. A tool that is missing, fails or
// prints what we cannot read leaves its field out.
func fillExtras(hw, ident, data map[string]any) {
	if out, err := runTool("/usr/sbin/ioreg", "-r", "-c", "AppleSmartBattery", "-a"); err == nil && len(bytes.TrimSpace(out)) > 0 {
		if b, err := MacBatteries(out); err == nil && len(b) > 0 {
			hw["battery"] = b
		}
	}
	if out, err := runTool("/usr/sbin/system_profiler", "SPDisplaysDataType", "-json"); err == nil {
		if names, err := MacGPUNames(out); err == nil && len(names) > 0 {
			gn := make([]any, len(names))
			for i, n := range names {
				gn[i] = n
			}
			ident["gpu_name"] = gn
		}
	}
}

// runTool runs a system tool with a bound (system_profiler can take
// seconds; a sysinfo must not hang on it) and returns its stdout.
func runTool(name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 2 * time.Second
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return out, nil
}
