package sysinfo

import (
	"encoding/binary"
	"reflect"
	"testing"
)

func le32(vs ...uint32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return b
}

func batteryInfo(caps uint32, chem string, designed, full, cycles uint32) []byte {
	b := le32(caps, 0, 0, designed, full, 100, 50, 0, cycles)
	b[4] = 1 // rechargeable
	copy(b[8:12], chem)
	return b
}

func TestParseBatteryInformation(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want WinBattery
		err  bool
	}{
		{"mWh", batteryInfo(0x80000000, "LION", 57000, 51300, 312), WinBattery{Chemistry: "LION", DesignedMWh: 57000, FullMWh: 51300, CycleCount: 312}, false},
		{"relative capacities left out", batteryInfo(0x80000000|batteryCapacityRelate, "LiP\x00", 100, 97, 0), WinBattery{Chemistry: "LiP"}, false},
		{"unknown capacity", batteryInfo(0, "PbAc", batteryUnknown, batteryUnknown, 0), WinBattery{Chemistry: "PbAc"}, false},
		{"short", make([]byte, 35), WinBattery{}, true},
	} {
		var b WinBattery
		err := ParseBatteryInformation(c.in, &b)
		if (err != nil) != c.err || !reflect.DeepEqual(b, c.want) {
			t.Errorf("%s: %+v %v, want %+v (error %v)", c.name, b, err, c.want, c.err)
		}
	}
}

func TestParseBatteryStatus(t *testing.T) {
	neg := func(v int32) uint32 { return uint32(v) }
	for _, c := range []struct {
		name     string
		in       []byte
		relative bool
		want     WinBattery
	}{
		{"discharging", le32(batteryDischarging, 40000, 11400, neg(-9500)), false,
			WinBattery{StatusKnown: true, Discharging: true, RemainingMWh: 40000, VoltageMV: 11400, DischargeMW: 9500}},
		{"charging on line", le32(batteryPowerOnLine|batteryCharging, 20000, 12600, 30000), false,
			WinBattery{StatusKnown: true, Charging: true, RemainingMWh: 20000, VoltageMV: 12600, ChargeMW: 30000}},
		{"unknowns", le32(batteryPowerOnLine, batteryUnknown, batteryUnknown, 0x80000000), false,
			WinBattery{StatusKnown: true}},
		{"relative", le32(batteryDischarging, 63, 11000, neg(-1)), true,
			WinBattery{StatusKnown: true, Discharging: true, VoltageMV: 11000}},
	} {
		var b WinBattery
		if err := ParseBatteryStatus(c.in, c.relative, &b); err != nil || !reflect.DeepEqual(b, c.want) {
			t.Errorf("%s: %+v %v, want %+v", c.name, b, err, c.want)
		}
	}
	if err := ParseBatteryStatus(make([]byte, 15), false, &WinBattery{}); err == nil {
		t.Error("short status accepted")
	}
}

func TestBatteryEntryShape(t *testing.T) {
	b := WinBattery{Name: "DELL 5XJ28", Manufacturer: "SMP", Serial: "Not Specified", Chemistry: "LION",
		ManufactureDate: "2021-03-04", DesignedMWh: 57000, FullMWh: 51300, RemainingMWh: 40000, VoltageMV: 11400,
		DischargeMW: 9500, CycleCount: 312, RuntimeSeconds: 3600, StatusKnown: true, Discharging: true}
	want := map[string]any{"DeviceName": "DELL 5XJ28", "ManufactureName": "SMP", "Chemistry": "LION",
		"ManufactureDate": "2021-03-04", "DesignedCapacity": 57000.0, "FullChargedCapacity": 51300.0,
		"RemainingCapacity": 40000.0, "Voltage": 11400.0, "DischargeRate": 9500.0, "CycleCount": 312.0,
		"EstimatedRuntime": 3600.0, "Charging": false, "Discharging": true}
	if got := b.Entry(); !reflect.DeepEqual(got, want) {
		t.Errorf("entry %v\nwant  %v", got, want)
	}
	if got := (WinBattery{}).Entry(); !reflect.DeepEqual(got, map[string]any{"DeviceName": "Battery"}) {
		t.Errorf("empty battery %v", got)
	}
}

func TestPowerStatusBattery(t *testing.T) {
	st := func(ac, flag byte, life uint32) []byte {
		b := make([]byte, 12)
		b[0], b[1], b[2] = ac, flag, 50
		binary.LittleEndian.PutUint32(b[4:], life)
		binary.LittleEndian.PutUint32(b[8:], batteryUnknown)
		return b
	}
	for _, c := range []struct {
		name string
		in   []byte
		ok   bool
		want WinBattery
	}{
		{"no battery", st(1, 128, batteryUnknown), false, WinBattery{}},
		{"unknown", st(255, 255, batteryUnknown), false, WinBattery{}},
		{"on battery", st(0, 1, 5400), true, WinBattery{StatusKnown: true, Discharging: true, RuntimeSeconds: 5400}},
		{"charging", st(1, 8|2, batteryUnknown), true, WinBattery{StatusKnown: true, Charging: true}},
		{"short", []byte{0, 1}, false, WinBattery{}},
	} {
		b, ok := PowerStatusBattery(c.in)
		if ok != c.ok || !reflect.DeepEqual(b, c.want) {
			t.Errorf("%s: %+v %v, want %+v %v", c.name, b, ok, c.want, c.ok)
		}
	}
}

func TestParseBatteryManufactureDateAndStrings(t *testing.T) {
	for in, want := range map[string]string{"\x04\x03\xe5\x07": "2021-03-04", "\x00\x03\xe5\x07": "", "\x04\x0d\xe5\x07": "", "\x01\x01": ""} {
		if got := ParseBatteryManufactureDate([]byte(in)); got != want {
			t.Errorf("date % x: %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"D\x00E\x00L\x00L\x00\x00\x00x\x00": "DELL", " \x00\xe9\x00 \x00": "é", "A": "", "": ""} {
		if got := UTF16String([]byte(in)); got != want {
			t.Errorf("utf16 % x: %q, want %q", in, got, want)
		}
	}
}

func tpmResponse(rc uint32, props ...uint32) []byte {
	be := binary.BigEndian
	b := make([]byte, 10+9+4*len(props))
	be.PutUint16(b[0:], 0x8001)
	be.PutUint32(b[2:], uint32(len(b)))
	be.PutUint32(b[6:], rc)
	be.PutUint32(b[11:], tpmCapTPMProperties)
	be.PutUint32(b[15:], uint32(len(props)/2))
	for i, p := range props {
		be.PutUint32(b[19+4*i:], p)
	}
	return b
}

func TestParseTPM2Properties(t *testing.T) {
	ifx := uint32('I')<<24 | uint32('F')<<16 | uint32('X')<<8
	for _, c := range []struct {
		name       string
		in         []byte
		man, ver   string
		wantErrors bool
	}{
		{"infineon", tpmResponse(0, tpmPTManufacturer, ifx, 0x106, 0x534C4239, tpmPTFirmware1, 0x0007003F, tpmPTFirmware2, 0x0D190000), "IFX", "7.63.3353.0", false},
		{"manufacturer only", tpmResponse(0, tpmPTManufacturer, uint32('M')<<24|uint32('S')<<16|uint32('F')<<8|'T'), "MSFT", "", false},
		{"error code", tpmResponse(0x101), "", "", true},
		{"count beyond data", func() []byte { b := tpmResponse(0, tpmPTManufacturer, ifx); b[18] = 9; return b }(), "", "", true},
		{"size beyond data", func() []byte { b := tpmResponse(0, tpmPTManufacturer, ifx); b[5] = 0xFF; return b }(), "", "", true},
		{"short", []byte{0x80, 0x01, 0, 0}, "", "", true},
	} {
		m, v, err := ParseTPM2Properties(c.in)
		if m != c.man || v != c.ver || (err != nil) != c.wantErrors {
			t.Errorf("%s: %q %q %v, want %q %q (error %v)", c.name, m, v, err, c.man, c.ver, c.wantErrors)
		}
	}
	cmd := TPM2GetCapabilityCommand()
	if len(cmd) != 22 || binary.BigEndian.Uint32(cmd[2:]) != 22 || binary.BigEndian.Uint32(cmd[6:]) != 0x17A ||
		binary.BigEndian.Uint32(cmd[18:]) != 8 {
		t.Errorf("command % x", cmd)
	}
}

func TestParseTPMDeviceInfo(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want string
	}{{le32(1, 2, 1, 0), "2.0"}, {le32(1, 1, 0, 0), "1.2"}, {le32(1, 3, 0, 0), ""}, {le32(1), ""}} {
		if got := ParseTPMDeviceInfo(c.in); got != c.want {
			t.Errorf("% x: %q, want %q", c.in, got, c.want)
		}
	}
}

func TestWindowsPendingReboot(t *testing.T) {
	for _, c := range []struct {
		cbs, wu            bool
		renames            []string
		active, name, want string
	}{
		{false, false, nil, "PC1", "PC1", ""},
		{true, true, []string{`\??\C:\a`}, "PC1", "PC2", "Component Based Servicing"},
		{false, true, nil, "PC1", "PC1", "Windows Update"},
		{false, false, []string{`\??\C:\tmp\x`, ""}, "PC1", "PC1", "File Rename"},
		{false, false, []string{"", " "}, "PC1", "pc1", ""},
		{false, false, nil, "PC1", "NEWNAME", "System Rename"},
		{false, false, nil, "", "NEWNAME", ""},
	} {
		if got := windowsPendingReboot(c.cbs, c.wu, c.renames, c.active, c.name); got != c.want {
			t.Errorf("%+v: %q", c, got)
		}
	}
}

// FuzzWindowsHardwareBytes feeds arbitrary driver and TPM answers to every
// decoder: none may panic, and what they return must fit the server's
// string limit.
func FuzzWindowsHardwareBytes(f *testing.F) {
	f.Add(batteryInfo(0, "LION", 1, 2, 3))
	f.Add(le32(batteryDischarging, 1, 2, 3))
	f.Add(tpmResponse(0, tpmPTManufacturer, 0x49465800, tpmPTFirmware1, 1))
	f.Add([]byte("D\x00E\x00L\x00L\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var w WinBattery
		_ = ParseBatteryInformation(b, &w)
		_ = ParseBatteryStatus(b, len(b)%2 == 0, &w)
		_ = w.Entry()
		_, _ = PowerStatusBattery(b)
		_ = ParseBatteryManufactureDate(b)
		if s := UTF16String(b); len(s) > 4*MaxString {
			t.Fatalf("string of %d bytes", len(s))
		}
		_ = ParseTPMDeviceInfo(b)
		m, v, _ := ParseTPM2Properties(b)
		if len(m) > 4 || len(v) > 4*6+3 {
			t.Fatalf("tpm %q %q", m, v)
		}
	})
}
