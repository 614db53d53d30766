package sysinfo

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// MemoryDevice is one SMBIOS type 17 (Memory Device) structure: a DIMM
// slot, installed or empty.
type MemoryDevice struct {
	Locator      string // "DIMM 0", "ChannelA-DIMM0"
	BankLocator  string // "BANK 0"
	Manufacturer string
	PartNumber   string
	SerialNumber string
	// SizeMB is the module's size in MiB; 0 means no module is installed,
	// -1 that the size is unknown.
	SizeMB int64
	// SpeedMTs is the maximum speed in MT/s (0: unknown).
	SpeedMTs int
}

// Installed reports whether a module sits in the slot.
func (d MemoryDevice) Installed() bool { return d.SizeMB != 0 }

// SizeText is dmidecode's wording of the size, which MeshCentral's web UI
// shows as it is ("8 GB", "512 MB", "No Module Installed", "Unknown").
func (d MemoryDevice) SizeText() string {
	switch {
	case d.SizeMB == 0:
		return "No Module Installed"
	case d.SizeMB < 0:
		return "Unknown"
	case d.SizeMB%1024 == 0:
		return fmt.Sprintf("%d GB", d.SizeMB/1024)
	}
	return fmt.Sprintf("%d MB", d.SizeMB)
}

// ParseSMBIOSMemory returns the memory devices (type 17) of an SMBIOS
// structure table: the bytes of /sys/firmware/dmi/tables/DMI on Linux, or
// the table inside GetSystemFirmwareTable('RSMB') on Windows. The table
// comes from firmware, so it is treated as untrusted: a truncated or
// malformed structure ends the walk, and what was read before it is kept.
func ParseSMBIOSMemory(table []byte) []MemoryDevice {
	var out []MemoryDevice
	for len(table) >= 4 {
		typ, n := table[0], int(table[1])
		if n < 4 || n > len(table) {
			break
		}
		formatted := table[:n]
		// The string set follows the formatted area and ends with two NULs
		// (just two NULs when there are no strings).
		rest := table[n:]
		end := strings.Index(string(rest), "\x00\x00")
		if end < 0 {
			break
		}
		strs := strings.Split(string(rest[:end]), "\x00")
		table = rest[end+2:]
		if typ == 127 { // end-of-table
			break
		}
		if typ != 17 || n < 0x15 {
			continue
		}
		str := func(off int) string {
			if off >= n {
				return ""
			}
			i := int(formatted[off])
			if i == 0 || i > len(strs) {
				return ""
			}
			return clip(strings.TrimSpace(strs[i-1]))
		}
		d := MemoryDevice{Locator: str(0x10), BankLocator: str(0x11)}
		switch size := binary.LittleEndian.Uint16(formatted[0x0C:]); {
		case size == 0xFFFF:
			d.SizeMB = -1
		case size == 0x7FFF && n >= 0x20:
			d.SizeMB = int64(binary.LittleEndian.Uint32(formatted[0x1C:]) & 0x7FFFFFFF)
		case size&0x8000 != 0: // in KiB
			d.SizeMB = int64(size&0x7FFF) / 1024
			if d.SizeMB == 0 {
				d.SizeMB = -1 // under a MiB: not a real module size
			}
		default:
			d.SizeMB = int64(size)
		}
		if n >= 0x17 {
			d.SpeedMTs = int(binary.LittleEndian.Uint16(formatted[0x15:]))
			if d.SpeedMTs == 0xFFFF && n >= 0x58 { // extended speed (SMBIOS 3.3)
				d.SpeedMTs = int(binary.LittleEndian.Uint32(formatted[0x54:]) & 0x7FFFFFFF)
			}
		}
		if n >= 0x1B {
			d.Manufacturer, d.SerialNumber, d.PartNumber = str(0x17), str(0x18), str(0x1A)
		}
		out = append(out, d)
	}
	return out
}

// undefinedSMBIOS are placeholder strings firmware puts in empty fields.
func undefinedSMBIOS(s string) bool {
	switch strings.ToLower(s) {
	case "", "unknown", "not specified", "undefined", "none", "to be filled by o.e.m.":
		return true
	}
	return false
}
