package sysinfo

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// sysRoot is where /sys, /var/run and /usr/share are read from; tests
// point it at a fake tree.
var sysRoot = "/"

func rootPath(p string) string { return filepath.Join(sysRoot, p) }

// fillMemory gives MeshCentral's hardware.linux.memory.Memory_Device the
// DIMM slots of the SMBIOS table when it is readable (root, real
// firmware), in dmidecode's wording as the C agent sends it; otherwise one
// entry with the total, since the UI needs a non-empty array.
func fillMemory(plat map[string]any, total uint64) {
	var devs []any
	if table, err := os.ReadFile(rootPath("sys/firmware/dmi/tables/DMI")); err == nil {
		for _, d := range ParseSMBIOSMemory(table) {
			devs = append(devs, linuxMemoryEntry(d))
		}
	}
	if len(devs) == 0 {
		devs = []any{map[string]any{"Locator": "System memory", "Size": fmtSize(total)}}
	}
	plat["memory"] = map[string]any{"Memory_Device": devs}
}

func linuxMemoryEntry(d MemoryDevice) map[string]any {
	e := map[string]any{"Locator": d.Locator, "Size": d.SizeText()}
	if d.Locator == "" {
		e["Locator"] = "Unknown"
	}
	if d.BankLocator != "" {
		e["Bank_Locator"] = d.BankLocator
	}
	if d.SpeedMTs > 0 {
		e["Speed"] = fmt.Sprintf("%d MT/s", d.SpeedMTs)
	}
	for k, v := range map[string]string{"Manufacturer": d.Manufacturer, "PartNumber": d.PartNumber, "Serial_Number": d.SerialNumber} {
		if !undefinedSMBIOS(v) {
			e[k] = v
		}
	}
	return e
}

// fillExtras adds what the sysfs tells about batteries, GPUs, the TPM and
// a pending reboot, in the shapes MeshCentral's web UI reads
// (hardware.battery, identifiers.gpu_name, hardware.tpm; pendingReboot as
// meshcore.js sends it on Windows).
func fillExtras(hw, ident, data map[string]any) {
	if b := batteries(); len(b) > 0 {
		hw["battery"] = b
	}
	if g := gpuNames(); len(g) > 0 {
		ident["gpu_name"] = g
	}
	if t := tpmInfo(); t != nil {
		hw["tpm"] = t
	}
	if r := pendingReboot(); r != "" {
		data["pendingReboot"] = r
	}
}

// batteries reads /sys/class/power_supply/*/ of type Battery. The kernel
// gives energy in µWh, power in µW and voltage in µV; the UI prints mWh,
// mW and Voltage/1000 V.
func batteries() []any {
	dirs, _ := filepath.Glob(rootPath("sys/class/power_supply/*"))
	sort.Strings(dirs)
	var out []any
	for _, d := range dirs {
		if readTrim(filepath.Join(d, "type")) != "Battery" {
			continue
		}
		rd := func(n string) string { return readTrim(filepath.Join(d, n)) }
		milli := func(n string) (float64, bool) {
			v, err := strconv.ParseFloat(rd(n), 64)
			return v / 1000, err == nil && v > 0
		}
		b := map[string]any{"DeviceName": firstSet(rd("model_name"), filepath.Base(d))}
		for k, n := range map[string]string{"ManufactureName": "manufacturer", "SerialNumber": "serial_number", "Chemistry": "technology"} {
			if v := rd(n); v != "" && !undefinedSMBIOS(v) {
				b[k] = clip(v)
			}
		}
		if v, err := strconv.Atoi(rd("cycle_count")); err == nil && v > 0 {
			b["CycleCount"] = float64(v)
		}
		for k, n := range map[string]string{"FullChargedCapacity": "energy_full", "DesignedCapacity": "energy_full_design",
			"RemainingCapacity": "energy_now", "Voltage": "voltage_now"} {
			if v, ok := milli(n); ok {
				b[k] = float64(int64(v))
			}
		}
		status := rd("status")
		b["Charging"] = status == "Charging"
		b["Discharging"] = status == "Discharging"
		if p, ok := milli("power_now"); ok {
			if status == "Charging" {
				b["ChargeRate"] = float64(int64(p))
			} else if status == "Discharging" {
				b["DischargeRate"] = float64(int64(p))
			}
		}
		out = append(out, b)
	}
	return out
}

// gpuNames names the display adapters under /sys/class/drm/card* from
// their PCI ids, through the pci.ids database where one is installed
// (no lspci needed), else by id and driver.
func gpuNames() []any {
	cards, _ := filepath.Glob(rootPath("sys/class/drm/card*"))
	sort.Strings(cards)
	var out []any
	seen := map[string]bool{}
	for _, c := range cards {
		if strings.Contains(filepath.Base(c), "-") { // connectors: card0-HDMI-A-1
			continue
		}
		dev := filepath.Join(c, "device")
		real, err := filepath.EvalSymlinks(dev)
		if err != nil || seen[real] {
			continue
		}
		seen[real] = true
		vendor := strings.TrimPrefix(readTrim(filepath.Join(dev, "vendor")), "0x")
		device := strings.TrimPrefix(readTrim(filepath.Join(dev, "device")), "0x")
		driver := ""
		if l, err := os.Readlink(filepath.Join(dev, "driver")); err == nil {
			driver = filepath.Base(l)
		}
		var name string
		if vendor != "" && device != "" {
			name = pciName(vendor, device)
			if name == "" {
				name = fmt.Sprintf("PCI %s:%s", vendor, device)
			}
		} else {
			name = firstSet(driver, filepath.Base(c))
			driver = ""
		}
		if driver != "" {
			name += " (" + driver + ")"
		}
		out = append(out, clip(name))
	}
	return out
}

// pciName looks vendor:device up in the pci.ids database ("" when there
// is none or the id is not in it).
func pciName(vendor, device string) string {
	for _, p := range []string{"usr/share/misc/pci.ids", "usr/share/hwdata/pci.ids"} {
		if n := lookupPCIIDs(rootPath(p), vendor, device); n != "" {
			return n
		}
	}
	return ""
}

// lookupPCIIDs scans a pci.ids file: vendor lines "vvvv  Name", device
// lines under them "\tdddd  Name".
func lookupPCIIDs(path, vendor, device string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	vendor, device = strings.ToLower(vendor), strings.ToLower(device)
	sc := bufio.NewScanner(f)
	vname := ""
	for sc.Scan() {
		l := sc.Text()
		if l == "" || l[0] == '#' {
			continue
		}
		if l[0] != '\t' {
			if vname != "" {
				return vname // the vendor's device list ended without the device
			}
			if id, n, ok := strings.Cut(l, "  "); ok && strings.ToLower(id) == vendor {
				vname = strings.TrimSpace(n)
			}
			continue
		}
		if vname != "" && len(l) > 1 && l[1] != '\t' {
			if id, n, ok := strings.Cut(l[1:], "  "); ok && strings.ToLower(id) == device {
				return vname + " " + strings.TrimSpace(n)
			}
		}
	}
	return vname
}

// tpmInfo reports a TPM the kernel drives (/sys/class/tpm/tpm0) with its
// spec version where the kernel tells it; nil when there is none.
func tpmInfo() map[string]any {
	d := rootPath("sys/class/tpm/tpm0")
	if _, err := os.Stat(d); err != nil {
		return nil
	}
	t := map[string]any{"IsEnabled": true}
	if v := readTrim(filepath.Join(d, "tpm_version_major")); v != "" {
		t["SpecVersion"] = v + ".0"
	} else if caps := readTrim(filepath.Join(d, "device", "caps")); strings.Contains(caps, "TCG version: ") {
		_, v, _ := strings.Cut(caps, "TCG version: ")
		t["SpecVersion"] = strings.Fields(v)[0]
	}
	return t
}

// pendingReboot is Debian/Ubuntu's flag file, with the packages that set it.
func pendingReboot() string {
	if _, err := os.Stat(rootPath("var/run/reboot-required")); err != nil {
		return ""
	}
	pkgs := strings.Fields(readTrim(rootPath("var/run/reboot-required.pkgs")))
	if len(pkgs) == 0 {
		return "Package updates"
	}
	return clip("Package updates: " + strings.Join(pkgs, ", "))
}
