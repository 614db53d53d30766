package sysinfo

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/osuser"
)

// validateForMongo mirrors MeshCentral's common.js validateObjectForMongo:
// keys [A-Za-z0-9_] up to 100 chars, strings up to maxLen UTF-16 units,
// objects (not arrays) descended into.
func validateForMongo(t *testing.T, path string, obj map[string]any, maxLen int) {
	t.Helper()
	for k, v := range obj {
		if len(k) > 100 {
			t.Errorf("%s: key %q longer than 100", path, k)
		}
		for _, c := range k {
			if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '_') {
				t.Errorf("%s: key %q has invalid char %q", path, k, c)
			}
		}
		switch x := v.(type) {
		case string:
			n := 0
			for _, r := range x {
				n++
				if r > 0xFFFF {
					n++
				}
			}
			if n > maxLen {
				t.Errorf("%s.%s: string of %d units > %d", path, k, n, maxLen)
			}
		case map[string]any:
			validateForMongo(t, path+"."+k, x, maxLen)
		}
	}
}

// roundTrip gives the object exactly as the server will see it.
func roundTrip(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSysInfoValidAndStable(t *testing.T) {
	ctx := context.Background()
	vers := map[string]string{"meshgo": "test", "compileTime": "2026-01-01T00:00:00Z"}
	a, err := SysInfo(ctx, vers)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SysInfo(ctx, vers)
	if err != nil {
		t.Fatal(err)
	}
	if a["hash"] != b["hash"] {
		t.Errorf("hash not stable: %v vs %v", a["hash"], b["hash"])
	}
	if h, _ := a["hash"].(string); len(h) != 96 {
		t.Errorf("hash %q is not hex SHA-384", h)
	}
	m := roundTrip(t, a)
	validateForMongo(t, "data", m, MaxString)
	hw, _ := m["hardware"].(map[string]any)
	// What meshctrl deviceinfo and the web UI read must be present even
	// without DMI data.
	checks := []struct{ name, path string }{
		{"cpu", "identifiers.cpu_name"},
		{"agentvers", "agentvers.compileTime"},
		{"memory", runtimeKey() + ".memory"},
		{"boot", bootTimePath()},
	}
	for _, c := range checks {
		if lookup(hw, c.path) == nil {
			t.Errorf("%s: hardware.%s missing in %v", c.name, c.path, hw)
		}
	}
	ident := hw["identifiers"].(map[string]any)
	if sd, _ := ident["storage_devices"].([]any); len(sd) == 0 {
		t.Errorf("no storage_devices")
	}
	if runtimeKey() == "linux" {
		if md, _ := lookup(hw, "linux.memory.Memory_Device").([]any); len(md) == 0 {
			t.Errorf("linux.memory.Memory_Device must be a non-empty array (the UI reads .length)")
		}
		if v, _ := lookup(hw, "linux.volumes").([]any); len(v) == 0 {
			t.Errorf("no linux volumes")
		}
	}
}

// bootTimePath is where MeshCentral's web UI reads the boot time for each
// platform (default.handlebars, "Last Boot Up Time"): Windows' is WMI's
// Win32_OperatingSystem.LastBootUpTime under osinfo.
func bootTimePath() string {
	if runtimeKey() == "windows" {
		return "windows.osinfo.LastBootUpTime"
	}
	return runtimeKey() + ".LastBootUpTime"
}

func TestWMITime(t *testing.T) {
	tests := []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 12, 1, 19, 36, 12, 0, time.UTC), "20261201193612.000000+000"},
		{time.Date(2026, 7, 4, 8, 5, 9, 123456789, time.FixedZone("CEST", 2*3600)), "20260704080509.123456+120"},
		{time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("EST", -5*3600)), "20260102030405.000000-300"},
	}
	for _, tt := range tests {
		if got := wmiTime(tt.t); got != tt.want {
			t.Errorf("wmiTime(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func lookup(m map[string]any, path string) any {
	var cur any = m
	start := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == '.' {
			mm, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = mm[path[start:i]]
			start = i + 1
		}
	}
	return cur
}

func TestSanitize(t *testing.T) {
	long := make([]byte, 3000)
	for i := range long {
		long[i] = 'x'
	}
	tests := []struct {
		name string
		in   map[string]any
	}{
		{"bad keys", map[string]any{"a b": 1, "x.y": map[string]any{"c-d": "v"}}},
		{"long string", map[string]any{"s": string(long)}},
		{"long key", map[string]any{string(long[:200]): "v"}},
		{"nested slice", map[string]any{"l": []string{string(long)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			validateForMongo(t, "x", roundTrip(t, sanitize(tc.in)), MaxString)
		})
	}
}

func TestNetInfoAndCoreInfo(t *testing.T) {
	ni, err := NetInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for name, list := range ni {
		if len(list) == 0 {
			t.Errorf("%s: empty list", name)
		}
		for _, e := range list {
			if e.Address != "" && e.Family != "IPv4" && e.Family != "IPv6" {
				t.Errorf("%s: family %q", name, e.Family)
			}
			if e.Family == "IPv4" {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no IPv4 address in %v", ni)
	}
	ci := GetCoreInfo(context.Background())
	if ci.OSDesc == "" || ci.Users == nil || ci.LastBootUpTime == 0 {
		t.Errorf("coreinfo incomplete: %+v", ci)
	}
}

// Logged-in users include logind's user sessions, and the locked ones
// are those of them whose session has LockedHint; a greeter's or a
// closing session's user is neither.
func TestUsersFromLogind(t *testing.T) {
	tests := []struct {
		name         string
		logind       []osuser.LogindSession
		want, locked []string
	}{
		{"none", nil, nil, []string{}},
		{"unlocked", []osuser.LogindSession{{ID: "2", User: "zed", Class: "user", State: "active"}}, []string{"zed"}, []string{}},
		{"locked", []osuser.LogindSession{
			{ID: "2", User: "zed", Class: "user", State: "active", Locked: true},
			{ID: "3", User: "zed", Class: "user", State: "online"},
			{ID: "4", User: "yan", Class: "user", State: "online", Locked: true},
		}, []string{"yan", "zed"}, []string{"yan", "zed"}},
		{"greeter and closing", []osuser.LogindSession{
			{ID: "c1", User: "zgdm", Class: "greeter", State: "active", Locked: true},
			{ID: "5", User: "zold", Class: "user", State: "closing", Locked: true},
		}, nil, []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			all, locked := users(context.Background(), tc.logind)
			for _, u := range tc.want {
				if !slices.Contains(all, u) {
					t.Errorf("users %q lack %q", all, u)
				}
			}
			for _, u := range []string{"zgdm", "zold"} {
				if slices.Contains(all, u) {
					t.Errorf("users %q include %q", all, u)
				}
			}
			if !slices.Equal(locked, tc.locked) || locked == nil {
				t.Errorf("locked %#v, want %#v", locked, tc.locked)
			}
			if !slices.IsSorted(all) {
				t.Errorf("users %q not sorted", all)
			}
		})
	}
}
