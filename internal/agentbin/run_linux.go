package agentbin

import (
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// Run starts cmd, our agent as a test runs it (its Env from Env, its
// output going to log), for the rest of t, so that every test stops its
// agents the same way: at t's end SIGTERM, which lets the agent end its
// sessions, then after 5 s SIGKILL to the process group it was started in;
// should the test binary die first, the kernel sends the agent SIGTERM.
// When t failed, log (the agent's output) is printed. The returned channel
// is closed once the agent has exited.
func Run(t testing.TB, cmd *exec.Cmd, log fmt.Stringer) <-chan struct{} {
	t.Helper()
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	if err := cmd.Start(); err != nil {
		t.Fatalf("start our agent: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the group Setpgid made
			<-done
		}
		if t.Failed() {
			t.Logf("our agent's log:\n%s", log.String())
		}
	})
	return done
}
