//go:build linux

package cli

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/scripts"
	"github.com/meshgo/meshagent/server-lite/agentconn"
)

// A core that loops forever or allocates without bound, pushed by
// server-lite, never takes our agent offline: the fault reaches the
// server's error log, and the next good core runs and talks at once.
func TestPushedCoreContainment(t *testing.T) {
	e := newLiveEnv(t, liveOptions{})
	var mu sync.Mutex
	var msgs []agentconn.Event
	cancel := e.app.Agents.Subscribe(func(ev agentconn.Event) {
		mu.Lock()
		defer mu.Unlock()
		msgs = append(msgs, ev)
	})
	defer cancel()
	waitFor := func(what string, since int, timeout time.Duration, pred func(agentconn.Event) bool) int {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			mu.Lock()
			for i := since; i < len(msgs); i++ {
				if pred(msgs[i]) {
					mu.Unlock()
					return i + 1
				}
			}
			mu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("no %s within %v", what, timeout)
		return 0
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(msgs) }
	online := func() {
		t.Helper()
		if _, ok := e.app.Agents.Agent(e.nodeID); !ok {
			t.Fatal("the agent went offline")
		}
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range msgs {
			if ev.Kind == agentconn.Disconnected && ev.NodeID == e.nodeID {
				t.Fatalf("the agent disconnected: %s", ev.Reason)
			}
		}
	}
	isError := func(ev agentconn.Event) bool {
		return ev.Kind == agentconn.Message && ev.NodeID == e.nodeID && ev.Action == "errorlog"
	}
	goodCoreAnswers := func(since int) {
		t.Helper()
		if err := e.app.Agents.PushCore(e.nodeID, scripts.DefaultCore, "test"); err != nil {
			t.Fatal(err)
		}
		waitFor("coreinfo from the good core", since, 20*time.Second, func(ev agentconn.Event) bool {
			return ev.Kind == agentconn.Message && ev.NodeID == e.nodeID && ev.Action == "coreinfo"
		})
		out, errs, code := e.cli("shell", "--run", "echo still-$((40+2))")
		if code != 0 || !strings.Contains(out, "still-42") {
			t.Fatalf("agent does not answer after the fault: %d %q %q", code, out, errs)
		}
	}

	for _, bad := range []struct{ name, src string }{
		{"infinite loop", "for(;;){}"},
		{"memory bomb", "var a = []; for (;;) { a.push(new Array(1 << 20).fill(7)); }"},
		{"throws", "throw new Error('boom at start')"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			n := count()
			start := time.Now()
			if err := e.app.Agents.PushCore(e.nodeID, []byte(bad.src), "test"); err != nil {
				t.Fatal(err)
			}
			waitFor("fault report (errorlog)", n, 60*time.Second, isError)
			t.Logf("%s reported after %v", bad.name, time.Since(start).Round(time.Millisecond))
			online()
			goodCoreAnswers(count())
			online()
		})
	}
}
