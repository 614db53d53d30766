package script

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The default core's poweraction and console `power`: the event log gets
// the action only once PowerAction accepted it, or why nothing was done.
func TestDefaultCorePower(t *testing.T) {
	var mu sync.Mutex
	var calls []int
	fail := errors.New("the agent lacks the privilege to change the power state")
	h, c := startCore(t, Config{PowerAction: func(a int) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, a)
		if a == 4 {
			return fail
		}
		return nil
	}})
	logged := func(text string) func(map[string]any) bool {
		return func(m map[string]any) bool {
			s, _ := m["msg"].(string)
			return m["action"] == "log" && strings.Contains(s, text)
		}
	}
	deliver(h, map[string]any{"action": "poweraction", "actiontype": 2, "userid": "user//admin", "username": "admin"})
	m := c.wait(t, 5*time.Second, logged("Performing power action 2 (power off)"))
	if m["userid"] != "user//admin" || m["username"] != "admin" {
		t.Errorf("event without the user: %v", m)
	}
	deliver(h, map[string]any{"action": "poweraction", "actiontype": 4})
	c.wait(t, 5*time.Second, logged("Power action 4 not done: "+fail.Error()))
	deliver(h, map[string]any{"action": "poweraction", "actiontype": 7})
	c.wait(t, 5*time.Second, logged("Power action 7 not done: power action 7 is not supported"))

	if s := consoleCmd(t, h, c, "s1", "power 3", 8|16); s != "Performing power action 3 (reset)." {
		t.Errorf("console power 3: %q", s)
	}
	c.wait(t, 5*time.Second, logged("Performing power action 3 (reset)"))
	if s := consoleCmd(t, h, c, "s2", "power 4", 8|16); !strings.Contains(s, "not done: "+fail.Error()) {
		t.Errorf("console power 4: %q", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(calls) != "[2 4 3 4]" {
		t.Errorf("PowerAction calls %v, want [2 4 3 4]", calls)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, m := range c.msgs {
		if s, _ := m["msg"].(string); m["action"] == "log" && strings.Contains(s, "Performing power action 4") {
			t.Errorf("the failed action was logged as done: %v", m)
		}
	}
}
