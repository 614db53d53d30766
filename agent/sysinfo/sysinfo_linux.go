package sysinfo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func isRoot() bool { return os.Geteuid() == 0 }

// platformOSDesc uses os-release's PRETTY_NAME, which is what the C agent
// shows ("Ubuntu 22.04.3 LTS").
func platformOSDesc(context.Context) string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, ln := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(ln, "PRETTY_NAME="); ok {
				return strings.Trim(v, `"'`)
			}
		}
	}
	return ""
}

// dmiFields maps /sys/class/dmi/id files to MeshCentral identifier keys.
var dmiFields = [][2]string{{"bios_date", "bios_date"}, {"bios_vendor", "bios_vendor"}, {"bios_version", "bios_version"},
	{"product_serial", "bios_serial"}, {"board_name", "board_name"}, {"board_serial", "board_serial"},
	{"board_vendor", "board_vendor"}, {"board_version", "board_version"}, {"product_uuid", "product_uuid"},
	{"product_name", "product_name"}}

func fillIdentifiers(_ context.Context, ident map[string]any) {
	for _, f := range dmiFields {
		if v := readTrim("/sys/class/dmi/id/" + f[0]); v != "" && v != "None" {
			ident[f[1]] = v
		}
	}
	if ident["board_name"] == nil { // Raspberry Pi and other device-tree boards
		if m := strings.Trim(readTrim("/sys/firmware/devicetree/base/model"), "\x00"); m != "" {
			ident["board_name"] = m
		}
	}
	if st, err := os.Stat("/sys/firmware/efi"); err == nil && st.IsDir() {
		ident["bios_mode"] = "UEFI"
	} else {
		ident["bios_mode"] = "Legacy"
	}
	if ident["product_uuid"] == nil { // no DMI (containers, VMs without it): machine-id identifies the OS install
		if id := readTrim("/etc/machine-id"); len(id) == 32 {
			ident["product_uuid"] = id[0:8] + "-" + id[8:12] + "-" + id[12:16] + "-" + id[16:20] + "-" + id[20:32]
		}
	}
	if ds := blockDevices(); len(ds) > 0 {
		ident["storage_devices"] = ds
	}
}

// blockDevices lists whole disks from /sys/block, skipping loop/ram/zram.
func blockDevices() []any {
	ents, _ := os.ReadDir("/sys/block")
	var out []any
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, "loop") || strings.HasPrefix(n, "ram") || strings.HasPrefix(n, "zram") {
			continue
		}
		sectors, err := strconv.ParseUint(readTrim(filepath.Join("/sys/block", n, "size")), 10, 64)
		if err != nil || sectors == 0 {
			continue
		}
		model := readTrim(filepath.Join("/sys/block", n, "device", "model"))
		if model == "" {
			model = n
		}
		out = append(out, map[string]any{"Caption": "/dev/" + n, "Model": model, "Size": float64(sectors * 512)})
	}
	return out
}

// fillBootTime: the UI does new Date(LastBootUpTime), so an ISO string.
func fillBootTime(plat map[string]any, t time.Time) {
	plat["LastBootUpTime"] = t.UTC().Format(time.RFC3339)
}

// fillPlatform adds hardware.linux.volumes in the C agent's df shape
// (sizes in KiB as strings).
func fillPlatform(ctx context.Context, plat map[string]any, ident map[string]any) {
	vs := volumes(ctx)
	var arr []any
	for _, v := range vs {
		arr = append(arr, map[string]any{"mount_point": v.Mount, "type": v.FSType,
			"size": fmt.Sprint(v.Total >> 10), "used": fmt.Sprint(v.Used >> 10), "available": fmt.Sprint(v.Free >> 10)})
	}
	if arr != nil {
		plat["volumes"] = arr
	}
	if ident["storage_devices"] == nil {
		if ds := storageFromVolumes(vs); ds != nil {
			ident["storage_devices"] = ds
		}
	}
}
