package desktop

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"
	"github.com/meshgo/meshagent/internal/logindtest"
	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

// The toolbar's Ctrl+Alt+Del arrives at the X server as the chord itself.
func TestServeCtrlAltDel(t *testing.T) {
	x := startXvfb(t, 640, 480)
	c := x.conn(t)
	win := fillRect(t, c, 0, 0, 640, 480, 0xffffff)
	xproto.SetInputFocusChecked(c, xproto.InputFocusPointerRoot, win, 0).Check()
	ctx := context.Background()
	v := serve(t, ctx, x, fullRights).v
	v.until(ctx, "first frame", func() bool { return v.near(10, 10, 0xffffff) })
	v.send(ctx, kvm.Encode(kvm.CtrlAltDel))
	km := keymap(t, c)
	var got []uint32
	for len(got) < 6 {
		ev := waitEvent(t, c, func(e interface{}) bool {
			switch e.(type) {
			case xproto.KeyPressEvent, xproto.KeyReleaseEvent:
				return true
			}
			return false
		})
		switch e := ev.(type) {
		case xproto.KeyPressEvent:
			got = append(got, km(e.Detail))
		case xproto.KeyReleaseEvent:
			got = append(got, 0x80000000|km(e.Detail))
		}
	}
	const ctrl, alt, del, up = 0xffe3, 0xffe9, 0xffff, 0x80000000
	want := []uint32{ctrl, alt, del, up | del, up | alt, up | ctrl}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("key events %#x, want %#x", got, want)
		}
	}
}

// The toolbar's Lock and auto-lock on disconnect lock the sessions through
// logind (a stand-in on a private bus), each logged with msgid 53; a
// view-only viewer may do neither.
func TestServeLockAndAutolock(t *testing.T) {
	ld := logindtest.Start(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", ld.Address)
	x := startXvfb(t, 320, 240)
	var mu sync.Mutex
	var logged []int
	run := func(info session.Info) (session.Channel, chan error) {
		a, b := session.Pipe(64)
		done := make(chan error, 1)
		go func() {
			done <- Serve(context.Background(), a, info, Options{Display: x.Name, XAuthority: x.AuthFile,
				LogEvent: func(id int) { mu.Lock(); logged = append(logged, id); mu.Unlock() }})
		}()
		return b, done
	}
	ctx := context.Background()
	ctrl := func(ch session.Channel, s string) {
		if err := ch.Write(ctx, session.Frame{Data: []byte(s)}); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(done chan error) {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Serve did not return")
		}
	}

	// View-only: Lock and autolock are ignored.
	ro, done := run(session.Info{Protocol: 2, Rights: session.RightRemoteViewOnly})
	ctrl(ro, `{"ctrlChannel":"102938","type":"lock"}`)
	ctrl(ro, `{"ctrlChannel":"102938","type":"autolock","value":true}`)
	ctrl(ro, `{"ctrlChannel":"102938","type":"close"}`)
	wait(done)
	if calls := ld.Calls(); len(calls) != 0 {
		t.Fatalf("a view-only viewer locked the screen: %q", calls)
	}

	// Lock now, then auto-lock when the viewer disconnects.
	ch, done := run(fullRights)
	ctrl(ch, `{"ctrlChannel":"102938","type":"lock"}`)
	if calls := ld.WaitCalls(1, 10*time.Second); len(calls) != 1 || calls[0] != "LockSessions()" {
		t.Fatalf("logind saw %q after Lock", calls)
	}
	ctrl(ch, `{"ctrlChannel":"102938","type":"autolock","value":true}`)
	ctrl(ch, `{"ctrlChannel":"102938","type":"close"}`)
	wait(done)
	if calls := ld.WaitCalls(2, 10*time.Second); len(calls) != 2 {
		t.Fatalf("logind saw %q after the disconnect with auto-lock", calls)
	}

	// Auto-lock from the viewer's options, turned off again before leaving.
	ch, done = run(session.Info{Protocol: 2, Rights: session.RightAdmin, Options: []byte(`{"type":"options","autolock":true}`)})
	ctrl(ch, `{"ctrlChannel":"102938","type":"autolock","value":false}`)
	ctrl(ch, `{"ctrlChannel":"102938","type":"close"}`)
	wait(done)
	ch, done = run(session.Info{Protocol: 2, Rights: session.RightAdmin, Options: []byte(`{"type":"options","autolock":true}`)})
	ctrl(ch, `{"ctrlChannel":"102938","type":"close"}`)
	wait(done)
	if calls := ld.WaitCalls(3, 10*time.Second); len(calls) != 3 {
		t.Fatalf("logind saw %q, want 3 locks", calls)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 3 || logged[0] != LockMsgID {
		t.Fatalf("logged %v, want three %d", logged, LockMsgID)
	}
}
