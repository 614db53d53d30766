package sysinfo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeSys lays out the sysfs, /var/run and pci.ids files SysInfo reads.
func fakeSys(t *testing.T, files map[string]string, links map[string]string) {
	t.Helper()
	root := t.TempDir()
	for p, v := range files {
		f := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.WriteFile(f, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range links {
		f := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(f), 0o755)
		if err := os.Symlink(target, f); err != nil {
			t.Fatal(err)
		}
	}
	old := sysRoot
	sysRoot = root
	t.Cleanup(func() { sysRoot = old })
}

func TestLinuxHardwareDetails(t *testing.T) {
	dimm := smbiosStruct(17, 0x28, map[int][]byte{0x0C: u16(16384), 0x10: {1}, 0x11: {2}, 0x15: u16(3200), 0x17: {3}, 0x1A: {4}},
		"ChannelA-DIMM0", "BANK 0", "Kingston", "KF432C16BB/16")
	empty := smbiosStruct(17, 0x28, map[int][]byte{0x0C: u16(0), 0x10: {1}, 0x17: {2}}, "ChannelB-DIMM0", "Not Specified")
	fakeSys(t, map[string]string{
		"sys/firmware/dmi/tables/DMI":                          string(concat(dimm, empty, smbiosStruct(127, 4, nil))),
		"sys/class/power_supply/AC/type":                       "Mains\n",
		"sys/class/power_supply/BAT0/type":                     "Battery\n",
		"sys/class/power_supply/BAT0/model_name":               "5B10W13930\n",
		"sys/class/power_supply/BAT0/manufacturer":             "SMP\n",
		"sys/class/power_supply/BAT0/technology":               "Li-poly\n",
		"sys/class/power_supply/BAT0/status":                   "Discharging\n",
		"sys/class/power_supply/BAT0/cycle_count":              "87\n",
		"sys/class/power_supply/BAT0/energy_full":              "50240000\n",
		"sys/class/power_supply/BAT0/energy_full_design":       "57000000\n",
		"sys/class/power_supply/BAT0/energy_now":               "31000000\n",
		"sys/class/power_supply/BAT0/voltage_now":              "11830000\n",
		"sys/class/power_supply/BAT0/power_now":                "6954000\n",
		"sys/devices/pci0000:00/0000:00:02.0/vendor":           "0x8086\n",
		"sys/devices/pci0000:00/0000:00:02.0/device":           "0x9a49\n",
		"sys/devices/pci0000:00/0000:01:00.0/vendor":           "0x10de\n",
		"sys/devices/pci0000:00/0000:01:00.0/device":           "0x1f99\n",
		"sys/class/tpm/tpm0/tpm_version_major":                 "2\n",
		"var/run/reboot-required":                              "*** System restart required ***\n",
		"var/run/reboot-required.pkgs":                         "linux-image-6.1.0-18-amd64\nlibc6\n",
		"usr/share/misc/pci.ids":                               "# comment\n8086  Intel Corporation\n\t9a40  Other\n\t9a49  TigerLake-LP GT2 [Iris Xe Graphics]\n\t\t1028 0991  subsystem\n10de  NVIDIA Corporation\n\t1f95  TU117M\n",
		"sys/devices/platform/simple-framebuffer.0/uevent":     "DRIVER=simple-framebuffer\n",
		"sys/devices/pci0000:00/0000:00:02.0/drm/card0/uevent": "",
	}, map[string]string{
		"sys/class/drm/card0":                                  "../../devices/pci0000:00/0000:00:02.0/drm/card0",
		"sys/class/drm/card0-eDP-1":                            "../../devices/pci0000:00/0000:00:02.0/drm/card0",
		"sys/devices/pci0000:00/0000:00:02.0/drm/card0/device": "../../../0000:00:02.0",
		"sys/devices/pci0000:00/0000:00:02.0/driver":           "../../../bus/pci/drivers/i915",
		"sys/class/drm/card1":                                  "../../devices/pci0000:00/0000:01:00.0/drm/card1",
		"sys/devices/pci0000:00/0000:01:00.0/drm/card1/device": "../../../0000:01:00.0",
	})
	d, err := SysInfo(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(d)
	var got struct {
		PendingReboot string `json:"pendingReboot"`
		Hardware      struct {
			Identifiers struct {
				GPU []string `json:"gpu_name"`
			} `json:"identifiers"`
			Linux struct {
				Memory struct {
					Devices []map[string]any `json:"Memory_Device"`
				} `json:"memory"`
			} `json:"linux"`
			Battery []map[string]any `json:"battery"`
			TPM     map[string]any   `json:"tpm"`
		} `json:"hardware"`
	}
	json.Unmarshal(b, &got)
	mem := got.Hardware.Linux.Memory.Devices
	if len(mem) != 2 || mem[0]["Locator"] != "ChannelA-DIMM0" || mem[0]["Size"] != "16 GB" || mem[0]["Speed"] != "3200 MT/s" ||
		mem[0]["Manufacturer"] != "Kingston" || mem[0]["PartNumber"] != "KF432C16BB/16" || mem[0]["Bank_Locator"] != "BANK 0" ||
		mem[1]["Size"] != "No Module Installed" || mem[1]["Manufacturer"] != nil {
		t.Errorf("memory %v", mem)
	}
	if g := strings.Join(got.Hardware.Identifiers.GPU, "|"); g != "Intel Corporation TigerLake-LP GT2 [Iris Xe Graphics] (i915)|NVIDIA Corporation" {
		t.Errorf("gpu_name %q", g)
	}
	bat := got.Hardware.Battery
	if len(bat) != 1 || bat[0]["DeviceName"] != "5B10W13930" || bat[0]["ManufactureName"] != "SMP" || bat[0]["Chemistry"] != "Li-poly" ||
		bat[0]["CycleCount"] != float64(87) || bat[0]["FullChargedCapacity"] != float64(50240) || bat[0]["DesignedCapacity"] != float64(57000) ||
		bat[0]["RemainingCapacity"] != float64(31000) || bat[0]["Voltage"] != float64(11830) || bat[0]["DischargeRate"] != float64(6954) ||
		bat[0]["Discharging"] != true || bat[0]["Charging"] != false {
		t.Errorf("battery %v", bat)
	}
	if got.Hardware.TPM["SpecVersion"] != "2.0" {
		t.Errorf("tpm %v", got.Hardware.TPM)
	}
	if got.PendingReboot != "Package updates: linux-image-6.1.0-18-amd64, libc6" {
		t.Errorf("pendingReboot %q", got.PendingReboot)
	}
}

// Without a readable SMBIOS table (not root, no firmware tables), one
// entry carries the total; nothing else is made up.
func TestLinuxHardwareNone(t *testing.T) {
	fakeSys(t, map[string]string{"sys/firmware/dmi/tables/DMI": "\x11\x02"}, nil)
	d, err := SysInfo(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	hw := d["hardware"].(map[string]any)
	mem := hw["linux"].(map[string]any)["memory"].(map[string]any)["Memory_Device"].([]any)
	if len(mem) != 1 || mem[0].(map[string]any)["Locator"] != "System memory" {
		t.Errorf("memory %v", mem)
	}
	for _, k := range []string{"battery", "tpm"} {
		if hw[k] != nil {
			t.Errorf("%s reported: %v", k, hw[k])
		}
	}
	if d["pendingReboot"] != nil || hw["identifiers"].(map[string]any)["gpu_name"] != nil {
		t.Errorf("pendingReboot %v gpu %v", d["pendingReboot"], hw["identifiers"].(map[string]any)["gpu_name"])
	}
}
