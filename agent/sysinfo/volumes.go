package sysinfo

import (
	"context"
	"sort"
	"strings"

	"github.com/shirou/gopsutil/v4/disk"
)

// volume is one mounted file system, platform-neutral.
type volume struct {
	Device, Mount, FSType string
	Total, Used, Free     uint64
}

// pseudoFS are file systems that hold no user data; listing them would
// flood the UI's "Storage Volumes" section (the C agent filters tmpfs the
// same way with df -x).
var pseudoFS = map[string]bool{"tmpfs": true, "devtmpfs": true, "efivarfs": true, "proc": true,
	"sysfs": true, "cgroup": true, "cgroup2": true, "devpts": true, "mqueue": true, "squashfs": true,
	"autofs": true, "debugfs": true, "tracefs": true, "securityfs": true, "pstore": true, "bpf": true,
	"configfs": true, "fusectl": true, "hugetlbfs": true, "binfmt_misc": true, "nsfs": true, "devfs": true,
	"rpc_pipefs": true, "nfsd": true, "ramfs": true}

func volumes(ctx context.Context) []volume {
	parts, err := disk.PartitionsWithContext(ctx, false)
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	var out []volume
	for _, p := range parts {
		if pseudoFS[p.Fstype] || seen[p.Mountpoint] || strings.HasPrefix(p.Mountpoint, "/var/lib/docker/") {
			continue
		}
		seen[p.Mountpoint] = true
		u, err := disk.UsageWithContext(ctx, p.Mountpoint)
		if err != nil || u.Total == 0 {
			continue
		}
		out = append(out, volume{Device: p.Device, Mount: p.Mountpoint, FSType: p.Fstype, Total: u.Total, Used: u.Used, Free: u.Free})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Mount < out[j].Mount })
	return out
}

// storageFromVolumes is the fallback for storage_devices when the platform
// exposes no physical-disk list: one entry per backing device.
func storageFromVolumes(vs []volume) []any {
	var out []any
	seen := map[string]bool{}
	for _, v := range vs {
		if seen[v.Device] {
			continue
		}
		seen[v.Device] = true
		out = append(out, map[string]any{"Caption": v.Device, "Model": v.FSType + " volume", "Size": float64(v.Total)})
	}
	return out
}
