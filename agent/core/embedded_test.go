package core

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// appendMSH lays out a binary with its .msh as MeshCentral serves it.
func appendMSH(bin, msh []byte) []byte {
	out := append(append([]byte{}, bin...), msh...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(msh)))
	return append(out, meshPolicyGUID...)
}

func TestEmbeddedMSH(t *testing.T) {
	msh := []byte("MeshName=Office\r\nMeshID=0xAB\r\nServerID=CD\r\nMeshServer=wss://h:443/agent.ashx\r\n")
	bin := bytes.Repeat([]byte{0x7f, 'E', 'L', 'F'}, 100)
	bad := appendMSH(bin, msh)
	binary.BigEndian.PutUint32(bad[len(bad)-20:], 1<<30)
	for _, tc := range []struct {
		name string
		data []byte
		want []byte
		err  error
	}{
		{"appended", appendMSH(bin, msh), msh, nil},
		{"plain binary", bin, nil, ErrNoEmbeddedMSH},
		{"tiny", []byte{1, 2}, nil, ErrNoEmbeddedMSH},
		{"length past the start", bad, nil, errors.New("bad length")},
		{"only the trailer", appendMSH(nil, msh), msh, nil},
	} {
		got, err := EmbeddedMSH(bytes.NewReader(tc.data), int64(len(tc.data)))
		if tc.err != nil {
			if err == nil || (errors.Is(tc.err, ErrNoEmbeddedMSH) != errors.Is(err, ErrNoEmbeddedMSH)) {
				t.Errorf("%s: err %v, want %v", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("%s: %q %v", tc.name, got, err)
		}
	}
}

func TestExtractEmbeddedMSH(t *testing.T) {
	dir := t.TempDir()
	msh := []byte("MeshName=G\nMeshServer=wss://127.0.0.1:1/agent.ashx\n")
	exe := filepath.Join(dir, "meshagent")
	os.WriteFile(exe, appendMSH([]byte("binary"), msh), 0o755)
	path := filepath.Join(dir, "meshagent.msh")
	if wrote, err := ExtractEmbeddedMSH(exe, path); err != nil || !wrote {
		t.Fatalf("extract: %v %v", wrote, err)
	}
	b, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	// POSIX mode on Unix; on Windows restrictPath's owner-only DACL, whose
	// read-back TestOwnerOnlyDACLReadBack checks (mode bits mean nothing).
	if !bytes.Equal(b, msh) || (runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600) {
		t.Fatalf("written %q mode %v", b, fi.Mode())
	}
	// An existing settings file is never replaced.
	os.WriteFile(path, []byte("MeshName=Mine\n"), 0o600)
	if wrote, err := ExtractEmbeddedMSH(exe, path); err != nil || wrote {
		t.Fatalf("second extract: %v %v", wrote, err)
	}
	// A .msh with a CoreModule (refused by ParseMSH) is not written.
	exe2 := filepath.Join(dir, "other")
	os.WriteFile(exe2, appendMSH([]byte("binary"), []byte("CoreModule=evil\n")), 0o755)
	if wrote, err := ExtractEmbeddedMSH(exe2, filepath.Join(dir, "other.msh")); err == nil || wrote {
		t.Fatalf("CoreModule msh: %v %v", wrote, err)
	}
	// No trailer: nothing written, no error.
	exe3 := filepath.Join(dir, "plain")
	os.WriteFile(exe3, []byte("binary"), 0o755)
	if wrote, err := ExtractEmbeddedMSH(exe3, filepath.Join(dir, "plain.msh")); err != nil || wrote {
		t.Fatalf("plain: %v %v", wrote, err)
	}
}

func FuzzEmbeddedMSH(f *testing.F) {
	f.Add(appendMSH([]byte("bin"), []byte("MeshName=x\n")))
	f.Add([]byte("short"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := EmbeddedMSH(bytes.NewReader(b), int64(len(b)))
		if err == nil && (len(got) == 0 || len(got) > MaxEmbeddedMSH || len(got) > len(b)-20) {
			t.Fatalf("accepted %d bytes from %d", len(got), len(b))
		}
	})
}
