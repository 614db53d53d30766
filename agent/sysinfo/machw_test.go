package sysinfo

import (
	"reflect"
	"strings"
	"testing"
)

// plistDoc wraps dict bodies as `ioreg -r -c AppleSmartBattery -a` prints
// them: an array of one dict per battery service.
func plistDoc(dicts ...string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<array>
`)
	for _, d := range dicts {
		b.WriteString("\t<dict>\n" + d + "\t</dict>\n")
	}
	b.WriteString("</array>\n</plist>\n")
	return []byte(b.String())
}

// An Intel MacBook's smart battery: capacities in mAh, a negative
// amperage printed as its unsigned 64-bit form, a packed manufacture date.
const intelBattery = `
		<key>DeviceName</key><string>bq20z451</string>
		<key>Manufacturer</key><string>SMP</string>
		<key>BatterySerialNumber</key><string>D865033Y2CXF9CPAW</string>
		<key>DesignCapacity</key><integer>6330</integer>
		<key>MaxCapacity</key><integer>5800</integer>
		<key>CurrentCapacity</key><integer>4000</integer>
		<key>Voltage</key><integer>12000</integer>
		<key>CycleCount</key><integer>211</integer>
		<key>IsCharging</key><false/>
		<key>ExternalConnected</key><false/>
		<key>InstantAmperage</key><integer>18446744073709550616</integer>
		<key>AvgTimeToEmpty</key><integer>240</integer>
		<key>ManufactureDate</key><integer>19297</integer>
		<key>BatteryData</key><dict><key>Serial</key><string>X</string><key>Raw</key><data>AAEC
		AwQ=</data><key>Temps</key><array><integer>1</integer><real>2.5</real></array></dict>
`

// An Apple silicon MacBook: Max/CurrentCapacity are percentages, the mAh
// figures are AppleRaw*; charging on AC.
const siliconBattery = `
		<key>DeviceName</key><string>bq40z651</string>
		<key>Serial</key><string>F8Y1234</string>
		<key>DesignCapacity</key><integer>4382</integer>
		<key>MaxCapacity</key><integer>100</integer>
		<key>CurrentCapacity</key><integer>62</integer>
		<key>AppleRawMaxCapacity</key><integer>4100</integer>
		<key>AppleRawCurrentCapacity</key><integer>2542</integer>
		<key>Voltage</key><integer>12500</integer>
		<key>CycleCount</key><integer>0</integer>
		<key>IsCharging</key><true/>
		<key>ExternalConnected</key><true/>
		<key>InstantAmperage</key><integer>2000</integer>
		<key>AvgTimeToEmpty</key><integer>65535</integer>
`

func TestMacBatteries(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		want []any
		err  bool
	}{
		{"intel", plistDoc(intelBattery), []any{map[string]any{
			"DeviceName": "bq20z451", "ManufactureName": "SMP", "SerialNumber": "D865033Y2CXF9CPAW",
			"Voltage": 12000.0, "DesignedCapacity": 75960.0, "FullChargedCapacity": 69600.0, "RemainingCapacity": 48000.0,
			"CycleCount": 211.0, "Charging": false, "Discharging": true, "DischargeRate": 12000.0,
			"EstimatedRuntime": 14400.0, "ManufactureDate": "2017-11-01"}}, false},
		{"apple silicon", plistDoc(siliconBattery), []any{map[string]any{
			"DeviceName": "bq40z651", "SerialNumber": "F8Y1234", "Voltage": 12500.0,
			"DesignedCapacity": 54775.0, "FullChargedCapacity": 51250.0, "RemainingCapacity": 31775.0,
			"Charging": true, "Discharging": false, "ChargeRate": 25000.0}}, false},
		{"percent without raw figures is left out", plistDoc(`<key>DesignCapacity</key><integer>4382</integer>
			<key>MaxCapacity</key><integer>100</integer><key>Voltage</key><integer>12500</integer>`), []any{map[string]any{
			"DeviceName": "Battery", "Voltage": 12500.0, "DesignedCapacity": 54775.0}}, false},
		{"no voltage: no mWh", plistDoc(`<key>DesignCapacity</key><integer>4382</integer>`), []any{map[string]any{"DeviceName": "Battery"}}, false},
		{"desktop Mac: empty output array", plistDoc(), nil, false},
		{"not xml", []byte("ioreg: error"), nil, true},
		{"truncated", plistDoc(intelBattery)[:200], nil, true},
		{"bad integer", plistDoc(`<key>Voltage</key><integer>twelve</integer>`), nil, true},
	} {
		got, err := MacBatteries(c.in)
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v %v\nwant %v (error %v)", c.name, got, err, c.want, c.err)
		}
	}
}

func TestParsePlistValues(t *testing.T) {
	v, err := ParsePlist([]byte(`<plist><dict><key>a</key><integer>-5</integer><key>b</key><real>1.5</real>
		<key>c</key><data>aGk=</data><key>d</key><date>2024-01-01T00:00:00Z</date><key>e</key><array/>
		<key>f</key><dict/><key>g</key><string>x &amp; y</string><key>h</key><integer>0x10</integer></dict></plist>`))
	want := map[string]any{"a": int64(-5), "b": 1.5, "c": []byte("hi"), "d": "2024-01-01T00:00:00Z",
		"e": []any(nil), "f": map[string]any{}, "g": "x & y", "h": int64(16)}
	if err != nil || !reflect.DeepEqual(v, want) {
		t.Errorf("%#v %v", v, err)
	}
	deep := strings.Repeat("<array>", 40) + strings.Repeat("</array>", 40)
	if _, err := ParsePlist([]byte(deep)); err == nil {
		t.Error("40 levels of nesting accepted")
	}
}

func TestMacGPUNames(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		want []string
		err  bool
	}{
		{"apple silicon", `{"SPDisplaysDataType":[{"_name":"kHW_AppleM1Item","sppci_model":"Apple M1","spdisplays_ndrvs":[{"_name":"Color LCD"}]}]}`, []string{"Apple M1"}, false},
		{"intel with discrete", `{"SPDisplaysDataType":[{"_name":"Intel UHD Graphics 630","sppci_model":"Intel UHD Graphics 630"},
			{"_name":"AMD Radeon Pro 5500M","sppci_model":"AMD Radeon Pro 5500M"},{"_name":"AMD Radeon Pro 5500M","sppci_model":"AMD Radeon Pro 5500M"}]}`,
			[]string{"Intel UHD Graphics 630", "AMD Radeon Pro 5500M"}, false},
		{"name only", `{"SPDisplaysDataType":[{"_name":"Display"},{"_name":"  "}]}`, []string{"Display"}, false},
		{"none", `{}`, nil, false},
		{"not json", `system_profiler: error`, nil, true},
	} {
		got, err := MacGPUNames([]byte(c.in))
		if (err != nil) != c.err || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q %v, want %q", c.name, got, err, c.want)
		}
	}
}

// FuzzMacHardwareOutput feeds arbitrary tool output to the macOS decoders:
// no panic, and every name within the server's string limit.
func FuzzMacHardwareOutput(f *testing.F) {
	f.Add(plistDoc(intelBattery))
	f.Add(plistDoc(siliconBattery))
	f.Add([]byte(`{"SPDisplaysDataType":[{"_name":"a","sppci_model":"b"}]}`))
	f.Add([]byte(`<plist><dict><key>k</key><integer>18446744073709551615</integer></dict></plist>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, _ := MacBatteries(b)
		for _, e := range bs {
			if n, _ := e.(map[string]any)["DeviceName"].(string); n == "" || len(n) > 4*MaxString {
				t.Fatalf("battery name %q", n)
			}
		}
		names, _ := MacGPUNames(b)
		for _, n := range names {
			if n == "" || len(n) > 4*MaxString {
				t.Fatalf("gpu name %q", n)
			}
		}
	})
}
