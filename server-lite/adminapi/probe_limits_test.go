package adminapi_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestProbeTagFloodDoesNotStallWrites is finding 1: an ordinary user makes a
// group, enrolls a simulated agent with the group id (from the .msh, no
// login needed) and sends 100 000 tags, three requests at once. The
// requests must be refused with an error naming the limit, and an admin's
// rename and adduser meanwhile must not wait behind them.
func TestProbeTagFloodDoesNotStallWrites(t *testing.T) {
	e := newProbeEnv(t, nil)
	admin := e.login(e.admin, e.pass)
	admin.adduser("mallory", "mallory-pw")
	m := e.login("mallory", "mallory-pw")
	g := m.createmesh("mine")
	node, conn := e.enroll(g, "flood", nil)
	go drain(conn.WS, nil)
	adminNode, aconn := e.enroll(e.app.DefaultGroup.ID, "victim", nil)
	go drain(aconn.WS, nil)

	tags := make([]any, 100_000)
	for i := range tags {
		tags[i] = fmt.Sprintf("t%d", i)
	}
	var wg sync.WaitGroup
	results := make([]map[string]any, 3)
	floods := make([]*ctl, 3)
	for i := range floods {
		floods[i] = e.login("mallory", "mallory-pw")
	}
	start := time.Now()
	for i := range floods {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = floods[i].do(map[string]any{"action": "changedevice", "nodeid": node, "tags": tags})
		}()
	}
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	if r := admin.do(map[string]any{"action": "changedevice", "nodeid": adminNode, "name": "renamed"}); r["result"] != "ok" {
		t.Fatalf("admin rename: %v", r)
	}
	rename := time.Since(t0)
	t0 = time.Now()
	admin.adduser("bob", "bob-pw-1")
	add := time.Since(t0)
	wg.Wait()
	t.Logf("admin rename %v, adduser %v during three 100 000-tag requests (all answered in %v)", rename, add, time.Since(start))
	for i, r := range results {
		if res, _ := r["result"].(string); !strings.Contains(res, "more than 64") {
			t.Errorf("flood %d answered %v, want a refusal naming the limit", i, r)
		}
	}
	if rename > 2*time.Second || add > 2*time.Second {
		t.Errorf("admin writes stalled: rename %v, adduser %v", rename, add)
	}
	d, err := e.app.Store.Device(node)
	if err != nil || len(d.Tags) != 0 {
		t.Errorf("device tags after refused flood: %d (%v)", len(d.Tags), err)
	}
}

// TestProbeFieldLimits: every admin-supplied text field has a limit and a
// clear error, and an accepted edit is stored (finding 1, finding 9's 1 MB
// device name).
func TestProbeFieldLimits(t *testing.T) {
	e := newProbeEnv(t, nil)
	admin := e.login(e.admin, e.pass)
	node, conn := e.enroll(e.app.DefaultGroup.ID, "dev", nil)
	go drain(conn.WS, nil)
	long := func(n int) string { return strings.Repeat("é", n) }
	for _, tc := range []struct {
		name string
		req  map[string]any
		want string // substring of result
	}{
		{"1 MB device name", map[string]any{"action": "changedevice", "nodeid": node, "name": strings.Repeat("x", 1<<20-200)}, "longer than 256"},
		{"257-char device name", map[string]any{"action": "changedevice", "nodeid": node, "name": long(257)}, "longer than 256"},
		{"non-UTF-8 name", map[string]any{"action": "changedevice", "nodeid": node, "name": "a\xffb"}, "ok"}, // JSON decoding replaces it
		{"65 tags", map[string]any{"action": "changedevice", "nodeid": node, "tags": strings.Repeat("a,", 64) + "z"}, "more than 64"},
		{"64-char tag", map[string]any{"action": "changedevice", "nodeid": node, "tags": []any{long(64)}}, "longer than 63"},
		{"group name", map[string]any{"action": "createmesh", "meshname": long(129), "meshtype": 2}, "Invalid group name"},
		{"group desc", map[string]any{"action": "createmesh", "meshname": "g", "desc": long(1025), "meshtype": 2}, "Invalid group description"},
		{"token name", map[string]any{"action": "createLoginToken", "name": long(101)}, "Invalid name"},
		{"user name", map[string]any{"action": "adduser", "username": strings.Repeat("u", 257), "pass": "p"}, "Invalid username"},
		{"accepted", map[string]any{"action": "changedevice", "nodeid": node, "name": long(256), "tags": []any{"b", long(63), "b", " a "}}, "ok"},
	} {
		r := admin.do(tc.req)
		if res, _ := r["result"].(string); !strings.Contains(res, tc.want) {
			t.Errorf("%s: result %q, want %q", tc.name, res, tc.want)
		}
	}
	d, err := e.app.Store.Device(node)
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != long(256) || strings.Join(d.Tags, ",") != "a,b,"+long(63) {
		t.Errorf("stored name %d runes, tags %q", len([]rune(d.Name)), d.Tags)
	}
}
