package winres

import (
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
)

// Read returns the resources of a PE executable's .rsrc section, walking
// the three directory levels. Tests use it to check what the linker put
// into meshagent.exe.
func Read(f *pe.File) ([]Resource, error) {
	s := f.Section(".rsrc")
	if s == nil {
		return nil, errors.New("no .rsrc section")
	}
	sec, err := s.Data()
	if err != nil {
		return nil, fmt.Errorf(".rsrc: %w", err)
	}
	le := binary.LittleEndian
	entries := func(at int) ([][2]uint32, error) {
		if at < 0 || at+dirHeaderSize > len(sec) {
			return nil, fmt.Errorf("directory at %d outside the section", at)
		}
		n := int(le.Uint16(sec[at+12:])) + int(le.Uint16(sec[at+14:]))
		if at+dirHeaderSize+n*dirEntrySize > len(sec) {
			return nil, fmt.Errorf("directory at %d: %d entries overrun the section", at, n)
		}
		out := make([][2]uint32, n)
		for i := range out {
			e := at + dirHeaderSize + i*dirEntrySize
			out[i] = [2]uint32{le.Uint32(sec[e:]), le.Uint32(sec[e+4:])}
		}
		return out, nil
	}
	sub := func(v uint32) (int, error) {
		if v&subdirectoryBit == 0 {
			return 0, errors.New("expected a subdirectory")
		}
		return int(v &^ subdirectoryBit), nil
	}
	var out []Resource
	types, err := entries(0)
	if err != nil {
		return nil, err
	}
	for _, t := range types {
		at, err := sub(t[1])
		if err != nil {
			return nil, err
		}
		ids, err := entries(at)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			at, err := sub(id[1])
			if err != nil {
				return nil, err
			}
			langs, err := entries(at)
			if err != nil {
				return nil, err
			}
			for _, l := range langs {
				e := int(l[1])
				if l[1]&subdirectoryBit != 0 || e+dataEntrySize > len(sec) {
					return nil, fmt.Errorf("bad data entry %#x", l[1])
				}
				rva, size := le.Uint32(sec[e:]), le.Uint32(sec[e+4:])
				start := int64(rva) - int64(s.VirtualAddress)
				if start < 0 || start+int64(size) > int64(len(sec)) {
					return nil, fmt.Errorf("resource %d/%d: data at RVA %#x outside .rsrc", t[0], id[0], rva)
				}
				out = append(out, Resource{Type: uint16(t[0]), ID: uint16(id[0]), Lang: uint16(l[0]), Data: sec[start : start+int64(size)]})
			}
		}
	}
	return out, nil
}
