package agentconn

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestAgentReportChecks(t *testing.T) {
	big := strings.Repeat("x", MaxReport)
	for _, tc := range []struct {
		name    string
		net     string
		sysData string
		netOK   bool
		sysOK   bool
	}{
		{"normal", `{"action":"netinfo","netif2":{"eth0":[]}}`, `{"hash":"h","hardware":{}}`, true, true},
		{"no netif2, no hash", `{"action":"netinfo"}`, `{}`, true, true},
		{"netif2 not an object", `{"action":"netinfo","netif2":[1]}`, `"x"`, false, false},
		{"too large", `{"action":"netinfo","pad":"` + big + `"}`, `{"pad":"` + big + `"}`, false, false},
		{"long hash", `{"action":"netinfo"}`, `{"hash":"` + strings.Repeat("h", 129) + `"}`, true, false},
		{"hash not a string", `{"action":"netinfo"}`, `{"hash":5}`, true, false},
	} {
		if err := checkNetInfo([]byte(tc.net)); (err == nil) != tc.netOK {
			t.Errorf("%s: checkNetInfo: %v", tc.name, err)
		}
		if _, err := checkSysInfo(json.RawMessage(tc.sysData)); (err == nil) != tc.sysOK {
			t.Errorf("%s: checkSysInfo: %v", tc.name, err)
		}
	}
	if got := clip(strings.Repeat("é", 300)+"\xff", MaxNameLen); !fits(got, MaxNameLen) {
		t.Errorf("clip: %d runes", len([]rune(got)))
	}
}

func FuzzAgentReportChecks(f *testing.F) {
	f.Add([]byte(`{"action":"netinfo","netif2":{}}`))
	f.Add([]byte(`{"hash":"h"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkNetInfo(b) == nil && len(b) > MaxReport {
			t.Fatal("oversized netinfo accepted")
		}
		if h, err := checkSysInfo(b); err == nil && (len(b) > MaxReport || len(h) > maxHashLen || !json.Valid(b)) {
			t.Fatalf("bad sysinfo accepted: %q", b)
		}
		if s := clip(string(b), 8); !fits(s, 8) {
			t.Fatalf("clip(%q) = %q", b, s)
		}
	})
}
