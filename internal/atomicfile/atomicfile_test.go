package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// onlyFile fails the test when dir holds anything but want (or nothing,
// when want is ""): no temporary file may be left behind.
func onlyFile(t *testing.T, dir, want string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != want {
			t.Errorf("left behind in %s: %s", dir, e.Name())
		}
	}
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		old  []byte // content before, nil: none
		data []byte
		perm fs.FileMode
	}{
		{"new file", nil, []byte("one"), 0o600},
		{"replaces", []byte("old content"), []byte("new"), 0o600},
		{"empty", []byte("x"), nil, 0o600},
		{"readable mode", nil, []byte("msh"), 0o644},
		{"executable", []byte("old binary"), []byte("new binary"), 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if tc.old != nil {
				if err := os.WriteFile(p, tc.old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := Write(p, tc.data, tc.perm); err != nil {
				t.Fatalf("Write: %v", err)
			}
			onlyFile(t, dir, "f")
			got, err := os.ReadFile(p)
			if err != nil || string(got) != string(tc.data) {
				t.Fatalf("content %q, %v; want %q", got, err, tc.data)
			}
			if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != tc.perm {
				t.Errorf("mode %v, want %v", fi.Mode().Perm(), tc.perm)
			}
		})
	}
}

// Every failure leaves the old content in place and no temporary file.
func TestWriteFailureKeepsWhatIsThere(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name string
		o    Options
		want error
	}{
		{"prepare fails", Options{Prepare: func(string) error { return boom }}, boom},
		{"rename fails", Options{Rename: func(string, string) error { return boom }}, boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "f")
			if err := os.WriteFile(p, []byte("good"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := WriteWith(p, []byte("new"), 0o600, tc.o); !errors.Is(err, tc.want) {
				t.Fatalf("WriteWith: %v, want %v", err, tc.want)
			}
			onlyFile(t, dir, "f")
			if got, _ := os.ReadFile(p); string(got) != "good" {
				t.Errorf("content %q after a failed write, want the old one", got)
			}
		})
	}
	t.Run("missing directory", func(t *testing.T) {
		if err := Write(filepath.Join(t.TempDir(), "no", "such", "f"), []byte("z"), 0o600); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Write into a missing directory: %v", err)
		}
	})
	t.Run("directory in the way", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "taken")
		if err := os.MkdirAll(filepath.Join(p, "inside"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := Write(p, []byte("x"), 0o600); err == nil {
			t.Fatal("Write over a non-empty directory succeeded")
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			t.Fatalf("the directory is gone: %v", err)
		}
		onlyFile(t, dir, "taken")
	})
	t.Run("prepare sees the temporary file", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "f")
		var seen string
		err := WriteWith(p, []byte("x"), 0o600, Options{Prepare: func(tmp string) error {
			seen = tmp
			fi, err := os.Stat(tmp)
			if err == nil && fi.Size() != 0 {
				t.Errorf("temporary file already holds %d bytes before Prepare", fi.Size())
			}
			return err
		}})
		if err != nil || filepath.Dir(seen) != dir || seen == p {
			t.Fatalf("WriteWith: %v; Prepare saw %q", err, seen)
		}
	})
}
