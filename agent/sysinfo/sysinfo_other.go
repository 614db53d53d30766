//go:build !linux && !windows && !darwin

package sysinfo

import (
	"context"
	"fmt"
	"os"
	"time"
)

func isRoot() bool                                    { return os.Geteuid() == 0 }
func platformOSDesc(context.Context) string           { return "" }
func fillIdentifiers(context.Context, map[string]any) {}
func fillMemory(plat map[string]any, total uint64) {
	plat["memory"] = map[string]any{"Memory_Device": []any{map[string]any{"Locator": "System memory", "Size": fmtSize(total)}}}
}
func fillBootTime(plat map[string]any, t time.Time) {
	plat["LastBootUpTime"] = t.UTC().Format(time.RFC3339)
}
func fillPlatform(ctx context.Context, plat map[string]any, ident map[string]any) {
	var arr []any
	vs := volumes(ctx)
	for _, v := range vs {
		arr = append(arr, map[string]any{"mount_point": v.Mount, "type": v.FSType, "size": fmt.Sprint(v.Total >> 10), "available": fmt.Sprint(v.Free >> 10)})
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
