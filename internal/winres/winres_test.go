package winres

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"unicode/utf16"
)

func TestFileVersion(t *testing.T) {
	tests := []struct {
		in   string
		want [4]uint16
		ok   bool
	}{
		{"0.1.0-dev", [4]uint16{0, 1, 0, 0}, true},
		{"1.2.3.4", [4]uint16{1, 2, 3, 4}, true},
		{"1.2.3.4.5", [4]uint16{1, 2, 3, 4}, true},
		{"7", [4]uint16{7, 0, 0, 0}, true},
		{"2.", [4]uint16{2, 0, 0, 0}, true},
		{"v1.2", [4]uint16{}, false},
		{"", [4]uint16{}, false},
		{"70000.1", [4]uint16{}, false},
	}
	for _, tt := range tests {
		got, err := FileVersion(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("%q: %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// versionStrings walks a VS_VERSIONINFO and returns its fixed file
// version and its StringFileInfo strings, checking every length field on
// the way (an independent reader of what VersionInfo writes).
func versionStrings(t *testing.T, b []byte) (ms, ls uint32, strs map[string]string) {
	t.Helper()
	le := binary.LittleEndian
	strs = map[string]string{}
	var walk func(b []byte, depth int)
	walk = func(b []byte, depth int) {
		for len(b) >= 6 {
			n := int(le.Uint16(b))
			if n < 6 || n > len(b) {
				t.Fatalf("block length %d of %d bytes", n, len(b))
			}
			blk := b[:n]
			vlen, typ := int(le.Uint16(blk[2:])), le.Uint16(blk[4:])
			var key []uint16
			i := 6
			for ; i+1 < n; i += 2 {
				c := le.Uint16(blk[i:])
				if c == 0 {
					break
				}
				key = append(key, c)
			}
			i = (i + 2 + 3) &^ 3
			k := string(utf16.Decode(key))
			vbytes := vlen
			if typ == 1 {
				vbytes = 2 * vlen
			}
			switch {
			case k == "VS_VERSION_INFO":
				if vlen != 52 || le.Uint32(blk[i:]) != 0xFEEF04BD {
					t.Fatalf("VS_FIXEDFILEINFO: length %d signature %#x", vlen, le.Uint32(blk[i:]))
				}
				ms, ls = le.Uint32(blk[i+8:]), le.Uint32(blk[i+12:])
			case depth == 3:
				var v []uint16
				for j := i; j+1 < i+vbytes; j += 2 {
					if c := le.Uint16(blk[j:]); c != 0 {
						v = append(v, c)
					}
				}
				strs[k] = string(utf16.Decode(v))
			}
			if depth < 3 {
				walk(blk[min((i+vbytes+3)&^3, n):], depth+1)
			}
			b = b[min((n+3)&^3, len(b)):]
		}
	}
	walk(b, 0)
	return
}

func TestVersionInfo(t *testing.T) {
	b, err := VersionInfo(AgentInfo("1.2.3-rc1"))
	if err != nil {
		t.Fatal(err)
	}
	ms, ls, strs := versionStrings(t, b)
	if ms != 1<<16|2 || ls != 3<<16 {
		t.Errorf("file version %#x.%#x, want 1.2.3.0", ms, ls)
	}
	for k, want := range map[string]string{"ProductName": "MeshGo Agent", "FileVersion": "1.2.3-rc1", "OriginalFilename": "meshagent.exe", "CompanyName": "MeshGo"} {
		if strs[k] != want {
			t.Errorf("%s = %q, want %q (all: %v)", k, strs[k], want, strs)
		}
	}
}

// The real thing: CI's cross-build of ./cmd/meshagent (CGO_ENABLED=0
// GOOS=windows) links the committed .syso, and the executable's .rsrc
// section holds the version resource, the icon group and its images, with
// the group pointing at icons that exist.
func TestAgentExecutableResources(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("cross-builds the agent with the Go toolchain on the CI host")
	}
	if testing.Short() {
		t.Skip("builds meshagent.exe")
	}
	exe := filepath.Join(t.TempDir(), "meshagent.exe")
	cmd := exec.Command("go", "build", "-o", exe, "github.com/meshgo/meshagent/cmd/meshagent")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=windows", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cross-build: %v\n%s", err, out)
	}
	f, err := pe.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Read(f)
	if err != nil {
		t.Fatal(err)
	}
	byType := map[uint16][]Resource{}
	for _, r := range res {
		byType[r.Type] = append(byType[r.Type], r)
	}
	if len(byType[TypeVersion]) != 1 || len(byType[TypeGroupIcon]) != 1 || len(byType[TypeIcon]) != 3 {
		t.Fatalf("resources by type: %d version, %d icon groups, %d icons; want 1, 1, 3", len(byType[TypeVersion]), len(byType[TypeGroupIcon]), len(byType[TypeIcon]))
	}
	_, _, strs := versionStrings(t, byType[TypeVersion][0].Data)
	if strs["ProductName"] != "MeshGo Agent" || strs["FileVersion"] == "" {
		t.Errorf("version strings %v", strs)
	}
	grp := byType[TypeGroupIcon][0].Data
	n := int(binary.LittleEndian.Uint16(grp[4:]))
	for i := 0; i < n; i++ {
		e := grp[6+14*i:]
		id, size := binary.LittleEndian.Uint16(e[12:]), binary.LittleEndian.Uint32(e[8:])
		found := false
		for _, ic := range byType[TypeIcon] {
			if ic.ID == id && uint32(len(ic.Data)) == size && bytes.Equal(ic.Data[:4], []byte{40, 0, 0, 0}) {
				found = true
			}
		}
		if !found {
			t.Errorf("icon group entry %d names icon %d of %d bytes, not in the executable", i, id, size)
		}
	}
}
