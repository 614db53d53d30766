package atomicfile

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		path string
		old  []byte // content before, nil: none
		data []byte
		ok   bool
	}{
		{"new file", "a", nil, []byte("one"), true},
		{"replaces", "b", []byte("old content"), []byte("new"), true},
		{"empty", "c", []byte("x"), nil, true},
		{"missing directory", "no/such/d", nil, []byte("z"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.path)
			if tc.old != nil {
				if err := os.WriteFile(p, tc.old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			err := Write(p, tc.data)
			if (err == nil) != tc.ok {
				t.Fatalf("Write: %v, want ok %v", err, tc.ok)
			}
			if _, serr := os.Stat(p + ".tmp"); !os.IsNotExist(serr) {
				t.Errorf("temporary file left behind: %v", serr)
			}
			if !tc.ok {
				return
			}
			got, err := os.ReadFile(p)
			if err != nil || string(got) != string(tc.data) {
				t.Fatalf("content %q, %v; want %q", got, err, tc.data)
			}
			if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
		})
	}
}

// A directory standing where the file goes: the rename fails, the
// directory stays and no temporary file is left.
func TestWriteKeepsWhatIsThere(t *testing.T) {
	p := filepath.Join(t.TempDir(), "taken")
	if err := os.MkdirAll(filepath.Join(p, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("x")); err == nil {
		t.Fatal("Write over a non-empty directory succeeded")
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Fatalf("the directory is gone: %v", err)
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
}
