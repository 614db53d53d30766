package sysinfo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// This file decodes what macOS's tools print about batteries and display
// adapters (ioreg's XML property list, system_profiler's JSON). It has no
// macOS dependency so the decoding is table-tested and fuzzed everywhere;
// sysinfo_darwin.go runs the tools.

// maxPlistDepth bounds the nesting of a property list we decode: ioreg's
// battery entries nest three or four levels, and a deeper input is not
// one of them.
const maxPlistDepth = 32

// ParsePlist decodes an XML property list (`ioreg -a`, `plutil -convert
// xml1`) into Go values: dict as map[string]any, array as []any, integer
// as int64 (ioreg prints a negative as its 64-bit two's complement, which
// is folded back), real as float64, true/false as bool, string and date as
// string, data as []byte.
func ParsePlist(b []byte) (any, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("plist: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local == "plist" {
				continue
			}
			return plistValue(d, se, 0)
		}
	}
}

func plistValue(d *xml.Decoder, se xml.StartElement, depth int) (any, error) {
	if depth > maxPlistDepth {
		return nil, errors.New("plist: nested too deep")
	}
	switch se.Name.Local {
	case "dict":
		m := map[string]any{}
		key, haveKey := "", false
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("plist dict: %w", err)
			}
			switch t := tok.(type) {
			case xml.EndElement:
				return m, nil
			case xml.StartElement:
				if t.Name.Local == "key" {
					s, err := plistText(d)
					if err != nil {
						return nil, err
					}
					key, haveKey = s, true
					continue
				}
				v, err := plistValue(d, t, depth+1)
				if err != nil {
					return nil, err
				}
				if haveKey {
					m[key] = v
				}
				haveKey = false
			}
		}
	case "array":
		var a []any
		for {
			tok, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("plist array: %w", err)
			}
			switch t := tok.(type) {
			case xml.EndElement:
				return a, nil
			case xml.StartElement:
				v, err := plistValue(d, t, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
		}
	case "true", "false":
		if err := d.Skip(); err != nil {
			return nil, fmt.Errorf("plist: %w", err)
		}
		return se.Name.Local == "true", nil
	}
	s, err := plistText(d)
	if err != nil {
		return nil, err
	}
	switch se.Name.Local {
	case "integer":
		s = strings.TrimSpace(s)
		if v, err := strconv.ParseInt(s, 0, 64); err == nil {
			return v, nil
		}
		if v, err := strconv.ParseUint(s, 0, 64); err == nil {
			return int64(v), nil // two's complement of a negative
		}
		return nil, fmt.Errorf("plist: bad integer %q", s)
	case "real":
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("plist: bad real %q", s)
		}
		return v, nil
	case "data":
		v, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("plist: bad data: %w", err)
		}
		return v, nil
	}
	return s, nil // string, date, and what we do not know
}

// plistText reads the character data up to the end of the current
// element; a child element inside it is an error.
func plistText(d *xml.Decoder) (string, error) {
	var sb strings.Builder
	for {
		tok, err := d.Token()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return "", fmt.Errorf("plist: %w", err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if sb.Len()+len(t) > 1<<20 {
				return "", errors.New("plist: text too long")
			}
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("plist: <%s> inside a value", t.Name.Local)
		}
	}
}

// MacBatteries turns `ioreg -r -c AppleSmartBattery -a` (an array of the
// battery services' property dicts) into hardware.battery entries, in the
// units MeshCentral's web UI prints: the smart battery gives mAh, mA and
// mV, so capacities are mAh × V (mWh) and rates mA × V (mW). On Apple
// silicon MaxCapacity/CurrentCapacity are percentages and the mAh figures
// are the AppleRaw* keys, which win where present.
func MacBatteries(ioreg []byte) ([]any, error) {
	v, err := ParsePlist(ioreg)
	if err != nil {
		return nil, err
	}
	list, ok := v.([]any)
	if !ok {
		if m, isDict := v.(map[string]any); isDict {
			list = []any{m}
		}
	}
	var out []any
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		out = append(out, macBattery(m))
	}
	return out, nil
}

func macBattery(m map[string]any) map[string]any {
	num := func(keys ...string) (int64, bool) {
		for _, k := range keys {
			if v, ok := m[k].(int64); ok {
				return v, true
			}
		}
		return 0, false
	}
	str := func(keys ...string) string {
		for _, k := range keys {
			if v, ok := m[k].(string); ok && strings.TrimSpace(v) != "" {
				return clip(strings.TrimSpace(v))
			}
		}
		return ""
	}
	flag := func(k string) (bool, bool) { v, ok := m[k].(bool); return v, ok }
	e := map[string]any{"DeviceName": firstSet(str("DeviceName"), "Battery")}
	if s := str("Manufacturer"); s != "" && !undefinedSMBIOS(s) {
		e["ManufactureName"] = s
	}
	if s := str("BatterySerialNumber", "Serial"); s != "" && !undefinedSMBIOS(s) {
		e["SerialNumber"] = s
	}
	mv, haveMV := num("Voltage", "AppleRawBatteryVoltage")
	haveMV = haveMV && mv > 0 && mv < 100000
	mwh := func(mah int64) (float64, bool) {
		if !haveMV || mah <= 0 || mah > 1000000 {
			return 0, false
		}
		return math.Round(float64(mah) * float64(mv) / 1000), true
	}
	if haveMV {
		e["Voltage"] = float64(mv)
	}
	if c, ok := num("DesignCapacity"); ok {
		if w, ok := mwh(c); ok {
			e["DesignedCapacity"] = w
		}
	}
	percent := func(raw, plain string) (int64, bool) {
		if v, ok := num(raw); ok {
			return v, true
		}
		v, ok := num(plain)
		if d, _ := num("DesignCapacity"); ok && v <= 100 && d > 100 {
			return 0, false // a percentage (Apple silicon) without its raw figure
		}
		return v, ok
	}
	if c, ok := percent("AppleRawMaxCapacity", "MaxCapacity"); ok {
		if w, ok := mwh(c); ok {
			e["FullChargedCapacity"] = w
		}
	}
	if c, ok := percent("AppleRawCurrentCapacity", "CurrentCapacity"); ok {
		if w, ok := mwh(c); ok {
			e["RemainingCapacity"] = w
		}
	}
	if c, ok := num("CycleCount"); ok && c > 0 {
		e["CycleCount"] = float64(c)
	}
	charging, haveCharging := flag("IsCharging")
	external, haveExternal := flag("ExternalConnected")
	if haveCharging {
		e["Charging"] = charging
	}
	if haveExternal {
		e["Discharging"] = !external
	}
	if ma, ok := num("InstantAmperage", "Amperage"); ok && haveMV && ma != 0 && ma > -100000 && ma < 100000 {
		mw := math.Round(math.Abs(float64(ma)) * float64(mv) / 1000)
		if ma > 0 && charging {
			e["ChargeRate"] = mw
		} else if ma < 0 {
			e["DischargeRate"] = mw
		}
	}
	if haveExternal && !external {
		if t, ok := num("AvgTimeToEmpty", "TimeRemaining"); ok && t > 0 && t < 65535 {
			e["EstimatedRuntime"] = float64(t * 60) // the UI prints seconds/60 as minutes
		}
	}
	if d, ok := num("ManufactureDate"); ok {
		// Smart Battery Data: day | month<<5 | (year-1980)<<9.
		day, month, year := d&0x1F, (d>>5)&0xF, 1980+(d>>9)&0x7F
		if d > 0 && d <= 0xFFFF && day >= 1 && day <= 31 && month >= 1 && month <= 12 {
			e["ManufactureDate"] = fmt.Sprintf("%04d-%02d-%02d", year, month, day)
		}
	}
	return e
}

// MacGPUNames lists the display adapters of `system_profiler
// SPDisplaysDataType -json` (each item's sppci_model, else its _name),
// once each.
func MacGPUNames(js []byte) ([]string, error) {
	var doc struct {
		Items []struct {
			Name  string `json:"_name"`
			Model string `json:"sppci_model"`
		} `json:"SPDisplaysDataType"`
	}
	if err := json.Unmarshal(js, &doc); err != nil {
		return nil, fmt.Errorf("system_profiler displays: %w", err)
	}
	var out []string
	seen := map[string]bool{}
	for _, it := range doc.Items {
		n := clip(strings.TrimSpace(firstSet(strings.TrimSpace(it.Model), it.Name)))
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out, nil
}
