package sysinfo

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf16"
)

// This file holds the byte-level decoding behind the Windows battery, TPM
// and pending-reboot details. It has no Windows dependency so that the
// decoding is table-tested and fuzzed on every platform; the calls that
// fetch the bytes are in hardware_windows.go.

// Windows battery driver constants (batclass.h).
const (
	batteryUnknown        = 0xFFFFFFFF // BATTERY_UNKNOWN_CAPACITY/_VOLTAGE/_TIME
	batteryUnknownRate    = -0x80000000
	batteryCapacityRelate = 0x40000000 // BATTERY_CAPACITY_RELATIVE: capacities are not mWh
	batteryPowerOnLine    = 0x1
	batteryDischarging    = 0x2
	batteryCharging       = 0x4
)

// WinBattery is what one Windows battery driver reports through
// IOCTL_BATTERY_QUERY_INFORMATION and IOCTL_BATTERY_QUERY_STATUS, in the
// units MeshCentral's web UI prints (mWh, mW, mV, seconds). A zero value
// means the driver did not say.
type WinBattery struct {
	Name, Manufacturer, Serial, Chemistry, ManufactureDate string
	DesignedMWh, FullMWh, RemainingMWh, VoltageMV          uint32
	ChargeMW, DischargeMW                                  uint32
	CycleCount                                             uint32
	RuntimeSeconds                                         uint32
	Charging, Discharging, StatusKnown                     bool
}

// ParseBatteryInformation decodes a BATTERY_INFORMATION (36 bytes:
// capabilities, technology, 3 reserved, 4 chemistry bytes, designed and
// full capacity, two alerts, critical bias, cycle count) into b. Capacities
// flagged relative (percent, not mWh) are left out: the UI would print
// them as mWh.
func ParseBatteryInformation(buf []byte, b *WinBattery) error {
	if len(buf) < 36 {
		return fmt.Errorf("battery information: %d bytes, want 36", len(buf))
	}
	le := binary.LittleEndian
	caps := le.Uint32(buf[0:])
	b.Chemistry = printableASCII(buf[8:12])
	if caps&batteryCapacityRelate == 0 {
		b.DesignedMWh = known(le.Uint32(buf[12:]))
		b.FullMWh = known(le.Uint32(buf[16:]))
	}
	b.CycleCount = le.Uint32(buf[32:])
	return nil
}

// ParseBatteryStatus decodes a BATTERY_STATUS (power state, capacity in
// mWh, voltage in mV, rate in mW, negative when discharging). relative is
// the capability flag of the battery's information: a relative capacity is
// a percentage and is not reported as mWh.
func ParseBatteryStatus(buf []byte, relative bool, b *WinBattery) error {
	if len(buf) < 16 {
		return fmt.Errorf("battery status: %d bytes, want 16", len(buf))
	}
	le := binary.LittleEndian
	state := le.Uint32(buf[0:])
	b.StatusKnown = true
	b.Charging = state&batteryCharging != 0
	b.Discharging = state&batteryDischarging != 0
	if !relative {
		b.RemainingMWh = known(le.Uint32(buf[4:]))
	}
	b.VoltageMV = known(le.Uint32(buf[8:]))
	if rate := int32(le.Uint32(buf[12:])); rate != batteryUnknownRate && !relative {
		switch {
		case rate > 0 && b.Charging:
			b.ChargeMW = uint32(rate)
		case rate < 0:
			b.DischargeMW = uint32(-int64(rate))
		}
	}
	return nil
}

// ParseBatteryManufactureDate decodes BATTERY_MANUFACTURE_DATE (day,
// month, 16-bit year) as YYYY-MM-DD; "" when it is not a date.
func ParseBatteryManufactureDate(buf []byte) string {
	if len(buf) < 4 {
		return ""
	}
	d, m, y := int(buf[0]), int(buf[1]), int(binary.LittleEndian.Uint16(buf[2:]))
	if d < 1 || d > 31 || m < 1 || m > 12 || y < 1970 || y > 2200 {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", y, m, d)
}

// UTF16String decodes a driver's WCHAR string (up to its first NUL; an odd
// trailing byte is dropped), trimmed and clipped to the server's limit.
func UTF16String(buf []byte) string {
	u := make([]uint16, 0, len(buf)/2)
	for i := 0; i+1 < len(buf); i += 2 {
		c := binary.LittleEndian.Uint16(buf[i:])
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return clip(strings.TrimSpace(string(utf16.Decode(u))))
}

// batteryChemistry: four ASCII bytes ("LION", "PbAc", "NiMH"), not
// NUL-terminated; anything unprintable is dropped.
func printableASCII(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		if c >= 0x20 && c < 0x7F {
			s.WriteByte(c)
		}
	}
	return strings.TrimSpace(s.String())
}

func known(v uint32) uint32 {
	if v == batteryUnknown {
		return 0
	}
	return v
}

// Entry is the battery as an entry of hardware.battery, with the key names
// MeshCentral's web UI reads (default.handlebars, "Battery" section).
func (b WinBattery) Entry() map[string]any {
	e := map[string]any{"DeviceName": firstSet(b.Name, "Battery")}
	for k, v := range map[string]string{"ManufactureName": b.Manufacturer, "SerialNumber": b.Serial,
		"Chemistry": b.Chemistry, "ManufactureDate": b.ManufactureDate} {
		if v != "" && !undefinedSMBIOS(v) {
			e[k] = clip(v)
		}
	}
	for k, v := range map[string]uint32{"DesignedCapacity": b.DesignedMWh, "FullChargedCapacity": b.FullMWh,
		"RemainingCapacity": b.RemainingMWh, "Voltage": b.VoltageMV, "ChargeRate": b.ChargeMW,
		"DischargeRate": b.DischargeMW, "CycleCount": b.CycleCount, "EstimatedRuntime": b.RuntimeSeconds} {
		if v != 0 {
			e[k] = float64(v)
		}
	}
	if b.StatusKnown {
		e["Charging"], e["Discharging"] = b.Charging, b.Discharging
	}
	return e
}

// PowerStatusBattery reads a SYSTEM_POWER_STATUS (GetSystemPowerStatus:
// AC line status, battery flag, percent, system status flag, DWORD battery
// life time in seconds, DWORD full life time) as a battery, for a machine
// whose battery driver cannot be queried directly; ok is false when the
// status says there is no battery (flag 128) or does not know (255).
func PowerStatusBattery(buf []byte) (b WinBattery, ok bool) {
	if len(buf) < 12 {
		return b, false
	}
	ac, flag := buf[0], buf[1]
	if flag == 128 || flag == 255 {
		return b, false
	}
	b.StatusKnown = true
	b.Charging = flag&8 != 0
	b.Discharging = ac == 0
	b.RuntimeSeconds = known(binary.LittleEndian.Uint32(buf[4:]))
	return b, true
}

// TPM 2.0 command and property codes (TCG TPM 2.0 Part 2).
const (
	tpmSTNoSessions     = 0x8001
	tpmCCGetCapability  = 0x0000017A
	tpmCapTPMProperties = 0x00000006
	tpmPTManufacturer   = 0x00000105
	tpmPTFirmware1      = 0x0000010B
	tpmPTFirmware2      = 0x0000010C
)

// TPM2GetCapabilityCommand is the TPM2_GetCapability command asking for
// the fixed properties from the manufacturer id through the firmware
// version (TPM_PT_MANUFACTURER .. TPM_PT_FIRMWARE_VERSION_2).
func TPM2GetCapabilityCommand() []byte {
	c := make([]byte, 22)
	be := binary.BigEndian
	be.PutUint16(c[0:], tpmSTNoSessions)
	be.PutUint32(c[2:], uint32(len(c)))
	be.PutUint32(c[6:], tpmCCGetCapability)
	be.PutUint32(c[10:], tpmCapTPMProperties)
	be.PutUint32(c[14:], tpmPTManufacturer)
	be.PutUint32(c[18:], tpmPTFirmware2-tpmPTManufacturer+1)
	return c
}

// ParseTPM2Properties decodes a TPM2_GetCapability response for
// TPM_CAP_TPM_PROPERTIES (header: tag, size, response code; then moreData,
// the capability and a counted list of property/value pairs) into the
// manufacturer id ("IFX", "NTC", "MSFT") and Win32_Tpm's
// ManufacturerVersion form of the firmware version ("7.2.3.1": the two
// 16-bit halves of each firmware word). The bytes come from a device, so
// every length is checked.
func ParseTPM2Properties(resp []byte) (manufacturer, version string, err error) {
	be := binary.BigEndian
	if len(resp) < 10 {
		return "", "", fmt.Errorf("tpm response: %d bytes", len(resp))
	}
	size := be.Uint32(resp[2:])
	if size < 10 || uint64(size) > uint64(len(resp)) {
		return "", "", fmt.Errorf("tpm response: size %d, got %d bytes", size, len(resp))
	}
	resp = resp[:size]
	if rc := be.Uint32(resp[6:]); rc != 0 {
		return "", "", fmt.Errorf("tpm response code %#x", rc)
	}
	p := resp[10:]
	if len(p) < 9 || be.Uint32(p[1:]) != tpmCapTPMProperties {
		return "", "", fmt.Errorf("tpm response: not a property list")
	}
	n := int(be.Uint32(p[5:]))
	p = p[9:]
	if n > len(p)/8 {
		return "", "", fmt.Errorf("tpm response: %d properties in %d bytes", n, len(p))
	}
	var fw1, fw2 uint32
	var haveFW bool
	for i := 0; i < n; i++ {
		prop, val := be.Uint32(p[8*i:]), be.Uint32(p[8*i+4:])
		switch prop {
		case tpmPTManufacturer:
			manufacturer = printableASCII([]byte{byte(val >> 24), byte(val >> 16), byte(val >> 8), byte(val)})
		case tpmPTFirmware1:
			fw1, haveFW = val, true
		case tpmPTFirmware2:
			fw2 = val
		}
	}
	if haveFW {
		version = fmt.Sprintf("%d.%d.%d.%d", fw1>>16, fw1&0xFFFF, fw2>>16, fw2&0xFFFF)
	}
	return manufacturer, version, nil
}

// ParseTPMDeviceInfo decodes a TPM_DEVICE_INFO (Tbsi_GetDeviceInfo: struct
// version, TPM version, interface type, implementation revision) into the
// spec version Win32_Tpm reports first ("1.2", "2.0"); "" for another.
func ParseTPMDeviceInfo(buf []byte) string {
	if len(buf) < 8 {
		return ""
	}
	switch binary.LittleEndian.Uint32(buf[4:]) {
	case 1:
		return "1.2"
	case 2:
		return "2.0"
	}
	return ""
}

// windowsPendingReboot names why Windows waits for a restart, in
// meshcore.js's words and order (win-info.js pendingReboot): servicing,
// Windows Update, a file rename queued for boot, a computer rename. ""
// when none applies.
func windowsPendingReboot(cbs, update bool, renames []string, activeName, name string) string {
	switch {
	case cbs:
		return "Component Based Servicing"
	case update:
		return "Windows Update"
	}
	for _, r := range renames {
		if strings.TrimSpace(r) != "" {
			return "File Rename"
		}
	}
	if activeName != "" && name != "" && !strings.EqualFold(activeName, name) {
		return "System Rename"
	}
	return ""
}
