package winetest

import (
	"os"
	"runtime"
	"testing"
)

// TestVersion checks the wine detection the lane's skips rely on: inside
// the lane (which sets WINELANE=1) a Windows test binary must see wine,
// and a binary for another OS never does.
func TestVersion(t *testing.T) {
	v := Version()
	switch {
	case runtime.GOOS != "windows" && v != "":
		t.Fatalf("Version() = %q on %s", v, runtime.GOOS)
	case runtime.GOOS == "windows" && os.Getenv("WINELANE") == "1" && v == "":
		t.Fatal("Version() = \"\" inside the wine lane: wine not detected")
	}
	t.Logf("wine version %q", v)
}
