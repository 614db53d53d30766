package memtrim

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func rssKB(t *testing.T) int {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc")
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

// Trim lowers the resident set and the program keeps working: code and
// read-only data paged out come back on use.
func TestTrimKeepsProgramWorking(t *testing.T) {
	before := rssKB(t)
	Trim()
	after := rssKB(t)
	t.Logf("RSS %d kB → %d kB", before, after)
	if after > before {
		t.Errorf("RSS grew from %d to %d kB", before, after)
	}
	// Exercise code and data again after the trim.
	s := strings.Repeat("x", 1000)
	if strconv.Itoa(len(s)) != "1000" || !strings.Contains(s, "xx") {
		t.Fatal("program broken after trim")
	}
	for i := 0; i < 3; i++ {
		Trim()
	}
}
