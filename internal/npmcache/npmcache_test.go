//go:build unix

package npmcache

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeNPM puts an `npm` on PATH that "installs" its last argument
// (name@version) by writing node_modules/<name>/package.json, and counts
// its runs in a file.
func fakeNPM(t *testing.T) (runs func() int) {
	t.Helper()
	bin := t.TempDir()
	count := filepath.Join(bin, "runs")
	script := `#!/bin/sh
echo x >> "` + count + `"
for a; do last="$a"; done
name="${last%@*}"; version="${last##*@}"
mkdir -p "node_modules/$name"
printf '{"name":"%s","version":"%s"}\n' "$name" "$version" > "node_modules/$name/package.json"
`
	if err := os.WriteFile(filepath.Join(bin, "npm"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
}

func TestEnsureInstallsOnceWithMarker(t *testing.T) {
	runs := fakeNPM(t)
	dir := filepath.Join(t.TempDir(), "cache", "pkg-1.2.3")
	p := Package{Name: "pkg", Version: "1.2.3", Dir: dir, ProjectName: "meshgo-test", LogPrefix: "test"}
	got, err := Ensure(p, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "node_modules", "pkg"); got != want {
		t.Errorf("Ensure = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Join(dir, Marker)); err != nil {
		t.Errorf("no marker: %v", err)
	}
	if !Complete(p) {
		t.Error("Complete = false after Ensure")
	}
	if _, err := Ensure(p, t.Logf); err != nil || runs() != 1 {
		t.Errorf("second Ensure: err %v, npm runs %d, want 1", err, runs())
	}
}

func TestComplete(t *testing.T) {
	write := func(dir, version string, marker bool) {
		m := filepath.Join(dir, "node_modules", "pkg")
		os.MkdirAll(m, 0o755)
		os.WriteFile(filepath.Join(m, "package.json"), []byte(`{"version":"`+version+`"}`), 0o644)
		if marker {
			os.WriteFile(filepath.Join(dir, Marker), []byte(version+"\n"), 0o644)
		}
	}
	for _, tc := range []struct {
		name            string
		version         string
		marker, userDir bool
		want            bool
	}{
		{"finished", "1.0.0", true, false, true},
		{"no marker", "1.0.0", false, false, false},
		{"no marker, user dir", "1.0.0", false, true, true},
		{"other version", "0.9.0", true, false, false},
		{"other version, user dir", "0.9.0", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(dir, tc.version, tc.marker)
			if got := Complete(Package{Name: "pkg", Version: "1.0.0", Dir: dir, UserDir: tc.userDir}); got != tc.want {
				t.Errorf("Complete = %v, want %v", got, tc.want)
			}
		})
	}
	if Complete(Package{Name: "pkg", Version: "1.0.0", Dir: t.TempDir()}) {
		t.Error("Complete = true for an empty directory")
	}
}
