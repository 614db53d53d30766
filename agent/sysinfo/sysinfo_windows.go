package sysinfo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

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

// fillMemory gives hardware.windows.memory the installed modules of the
// SMBIOS table (GetSystemFirmwareTable, no WMI), in Win32_PhysicalMemory's
// field names that the UI reads (it prints Capacity/1024/1024 "Mb" per
// bank); otherwise one entry with the total.
func fillMemory(plat map[string]any, total uint64) {
	var mods []any
	if table, err := smbiosTable(); err == nil {
		for _, d := range ParseSMBIOSMemory(table) {
			if d.SizeMB <= 0 {
				continue // empty slot or unknown size: WMI lists installed modules only
			}
			m := map[string]any{"DeviceLocator": d.Locator, "Capacity": float64(d.SizeMB) * 1024 * 1024}
			if d.BankLocator != "" {
				m["BankLabel"] = d.BankLocator
			}
			if d.SpeedMTs > 0 {
				m["Speed"] = float64(d.SpeedMTs)
			}
			for k, v := range map[string]string{"Manufacturer": d.Manufacturer, "PartNumber": d.PartNumber, "SerialNumber": d.SerialNumber} {
				if !undefinedSMBIOS(v) {
					m[k] = v
				}
			}
			mods = append(mods, m)
		}
	}
	if len(mods) == 0 {
		mods = []any{map[string]any{"BankLabel": "System memory", "Capacity": float64(total)}}
	}
	plat["memory"] = mods
}

var procGetSystemFirmwareTable = windows.NewLazySystemDLL("kernel32.dll").NewProc("GetSystemFirmwareTable")

// smbiosTable returns the raw SMBIOS structure table: the 'RSMB' firmware
// table is a RawSMBIOSData header (4 version bytes, a DWORD length) and
// the structures.
func smbiosTable() ([]byte, error) {
	const rsmb = 'R'<<24 | 'S'<<16 | 'M'<<8 | 'B'
	if err := procGetSystemFirmwareTable.Find(); err != nil {
		return nil, err
	}
	n, _, err := procGetSystemFirmwareTable.Call(rsmb, 0, 0, 0)
	if n == 0 || n > 16<<20 {
		return nil, fmt.Errorf("GetSystemFirmwareTable: %w", err)
	}
	buf := make([]byte, n)
	got, _, err := procGetSystemFirmwareTable.Call(rsmb, 0, uintptr(unsafe.Pointer(&buf[0])), n)
	if got == 0 || got > n {
		return nil, fmt.Errorf("GetSystemFirmwareTable: %w", err)
	}
	buf = buf[:got]
	if len(buf) < 8 {
		return nil, errors.New("GetSystemFirmwareTable: short RSMB table")
	}
	l := int(binary.LittleEndian.Uint32(buf[4:8]))
	if l > len(buf)-8 {
		l = len(buf) - 8
	}
	return buf[8 : 8+l], nil
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
