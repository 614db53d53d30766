package agentbin

import (
	"debug/elf"
	"os"
	"runtime"
	"testing"
)

func TestBuildOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	defer Cleanup()
	p := MustBuild(t)
	st, err := os.Stat(p)
	if err != nil || st.Mode()&0o111 == 0 {
		t.Fatalf("built %s: %v %v", p, st, err)
	}
	if q, err := Build(); q != p || err != nil {
		t.Fatalf("second Build = %q, %v; want %q", q, err, p)
	}
}

// BuildRelease's binary is static (no program interpreter), as
// build/release.sh's is, and built once.
func TestBuildRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	defer Cleanup()
	p, err := BuildRelease()
	if err != nil {
		t.Fatal(err)
	}
	if q, err := BuildRelease(); q != p || err != nil {
		t.Fatalf("second BuildRelease = %q, %v; want %q", q, err, p)
	}
	if runtime.GOOS != "linux" {
		return
	}
	f, err := elf.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			t.Errorf("%s has a program interpreter: not a static build", p)
		}
	}
}
