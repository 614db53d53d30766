package sysinfo

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// smbiosStruct builds one SMBIOS structure: formatted area of n bytes
// (header included) with the given fields, then the strings.
func smbiosStruct(typ byte, n int, fields map[int][]byte, strs ...string) []byte {
	b := make([]byte, n)
	b[0], b[1] = typ, byte(n)
	for off, v := range fields {
		copy(b[off:], v)
	}
	if len(strs) == 0 {
		return append(b, 0, 0)
	}
	for _, s := range strs {
		b = append(b, s...)
		b = append(b, 0)
	}
	return append(b, 0)
}

func u16(v uint16) []byte { return binary.LittleEndian.AppendUint16(nil, v) }
func u32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

func TestParseSMBIOSMemory(t *testing.T) {
	dimm := func(size uint16, ext uint32, speed uint16) []byte {
		return smbiosStruct(17, 0x28, map[int][]byte{0x0C: u16(size), 0x10: {1}, 0x11: {2}, 0x15: u16(speed),
			0x17: {3}, 0x18: {4}, 0x1A: {5}, 0x1C: u32(ext)}, "DIMM 0", "BANK 0", "Samsung", "1234", "M378A1K43CB2-CTD ")
	}
	bios := smbiosStruct(0, 0x18, nil, "Vendor", "1.0")
	end := smbiosStruct(127, 4, nil)
	tests := []struct {
		name  string
		table []byte
		want  []MemoryDevice
	}{
		{"8 GB module", concat(bios, dimm(8192, 0, 2666), end), []MemoryDevice{{Locator: "DIMM 0", BankLocator: "BANK 0",
			Manufacturer: "Samsung", SerialNumber: "1234", PartNumber: "M378A1K43CB2-CTD", SizeMB: 8192, SpeedMTs: 2666}}},
		{"empty slot", dimm(0, 0, 0), []MemoryDevice{{Locator: "DIMM 0", BankLocator: "BANK 0", Manufacturer: "Samsung",
			SerialNumber: "1234", PartNumber: "M378A1K43CB2-CTD"}}},
		{"extended size", dimm(0x7FFF, 65536, 3200), []MemoryDevice{{Locator: "DIMM 0", BankLocator: "BANK 0", Manufacturer: "Samsung",
			SerialNumber: "1234", PartNumber: "M378A1K43CB2-CTD", SizeMB: 65536, SpeedMTs: 3200}}},
		{"size in KiB", dimm(0x8000|0x4000, 0, 0), []MemoryDevice{{Locator: "DIMM 0", BankLocator: "BANK 0", Manufacturer: "Samsung",
			SerialNumber: "1234", PartNumber: "M378A1K43CB2-CTD", SizeMB: 16}}},
		{"unknown size", dimm(0xFFFF, 0, 0), []MemoryDevice{{Locator: "DIMM 0", BankLocator: "BANK 0", Manufacturer: "Samsung",
			SerialNumber: "1234", PartNumber: "M378A1K43CB2-CTD", SizeMB: -1}}},
		{"short SMBIOS 2.1 structure", smbiosStruct(17, 0x15, map[int][]byte{0x0C: u16(512), 0x10: {1}}, "SLOT1"),
			[]MemoryDevice{{Locator: "SLOT1", SizeMB: 512}}},
		{"string index past the set", smbiosStruct(17, 0x1B, map[int][]byte{0x0C: u16(1024), 0x10: {9}}, "only"),
			[]MemoryDevice{{SizeMB: 1024}}},
		{"truncated after a good one", concat(dimm(4096, 0, 0), dimm(4096, 0, 0)[:30]), []MemoryDevice{{Locator: "DIMM 0", BankLocator: "BANK 0",
			Manufacturer: "Samsung", SerialNumber: "1234", PartNumber: "M378A1K43CB2-CTD", SizeMB: 4096}}},
		{"nothing after end of table", concat(end, dimm(4096, 0, 0)), nil},
		{"length below header", []byte{17, 2, 0, 0, 0, 0}, nil},
		{"empty", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ParseSMBIOSMemory(tc.table); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	for _, c := range []struct {
		mb   int64
		want string
	}{{8192, "8 GB"}, {512, "512 MB"}, {0, "No Module Installed"}, {-1, "Unknown"}, {1536, "1536 MB"}} {
		if got := (MemoryDevice{SizeMB: c.mb}).SizeText(); got != c.want {
			t.Errorf("SizeText(%d) = %q, want %q", c.mb, got, c.want)
		}
	}
}

func concat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

func FuzzParseSMBIOSMemory(f *testing.F) {
	f.Add(smbiosStruct(17, 0x28, map[int][]byte{0x0C: u16(8192), 0x10: {1}}, "DIMM 0"))
	f.Add(concat(smbiosStruct(0, 0x18, nil, "x"), smbiosStruct(17, 0x15, map[int][]byte{0x0C: u16(0x7FFF)}), smbiosStruct(127, 4, nil)))
	f.Add([]byte{17, 0xFF, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, d := range ParseSMBIOSMemory(b) {
			if d.SizeMB < -1 || len(d.Locator) > MaxString {
				t.Fatalf("bad device %+v", d)
			}
			_ = d.SizeText()
		}
	})
}
