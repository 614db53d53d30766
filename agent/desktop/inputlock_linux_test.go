package desktop

import (
	"context"
	"encoding/binary"
	"testing"

	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

// xiReply builds an XIQueryDevice reply for parser tests.
func xiReply(devs ...xiDevice) []byte {
	b := make([]byte, 32)
	binary.LittleEndian.PutUint16(b[8:], uint16(len(devs)))
	for _, d := range devs {
		e := make([]byte, 12)
		binary.LittleEndian.PutUint16(e[0:], d.id)
		binary.LittleEndian.PutUint16(e[2:], d.use)
		binary.LittleEndian.PutUint16(e[6:], 1) // one class
		binary.LittleEndian.PutUint16(e[8:], uint16(len(d.name)))
		name := make([]byte, (len(d.name)+3)&^3)
		copy(name, d.name)
		class := []byte{1, 0, 2, 0, 0, 0, 0, 0} // type 1, 2 words
		b = append(append(append(b, e...), name...), class...)
	}
	return b
}

func TestParseXIDevices(t *testing.T) {
	in := []xiDevice{{2, 1, "Virtual core pointer"}, {4, 3, "Virtual core XTEST pointer"}, {9, 4, "AT Translated Set 2 keyboard"}, {10, 3, "SynPS/2 Touchpad"}}
	got, err := parseXIDevices(xiReply(in...))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("got %+v", got)
	}
	var phys []uint16
	for i, d := range got {
		if d != in[i] {
			t.Errorf("device %d: %+v, want %+v", i, d, in[i])
		}
		if d.physical() {
			phys = append(phys, d.id)
		}
	}
	if len(phys) != 2 || phys[0] != 9 || phys[1] != 10 {
		t.Errorf("physical devices %v, want [9 10] (no masters, no XTEST)", phys)
	}
	full := xiReply(in...)
	for _, n := range []int{0, 31, 40, len(full) - 3} {
		if _, err := parseXIDevices(full[:n]); err == nil {
			t.Errorf("truncated at %d: no error", n)
		}
	}
}

func FuzzParseXIDevices(f *testing.F) {
	f.Add(xiReply(xiDevice{4, 3, "Virtual core XTEST pointer"}))
	f.Add(make([]byte, 32))
	f.Fuzz(func(t *testing.T, b []byte) { parseXIDevices(b) })
}

// The toolbar's remote input lock on a real X server: the viewer's query
// and lock get the state in force, the viewer's own input still arrives
// while the local devices are held, and unlock releases them. (Xvfb has
// no physical keyboard or pointer, only its XTEST devices, so what is
// held here is nothing; the grab of real devices is not shown in CI.)
func TestServeInputLock(t *testing.T) {
	x := startXvfb(t, 640, 480)
	c := x.conn(t)
	fillRect(t, c, 0, 0, 640, 480, 0xffffff)
	ctx := context.Background()
	v := serve(t, ctx, x, fullRights).v
	v.until(ctx, "first frame", func() bool { return v.near(10, 10, 0xffffff) })
	state := func(code byte) byte {
		t.Helper()
		v.lockState = -1
		v.send(ctx, kvm.EncodeByte(kvm.InputLock, code))
		v.until(ctx, "input lock answer", func() bool { return v.lockState >= 0 })
		return byte(v.lockState)
	}
	if s := state(2); s != 0 {
		t.Fatalf("query before locking answered %d", s)
	}
	if s := state(1); s != 1 {
		t.Fatalf("lock answered %d", s)
	}
	v.send(ctx, mouseCmd(0, 321, 123))
	waitPointer(t, c, 321, 123)
	if s := state(2); s != 1 {
		t.Fatalf("query while locked answered %d", s)
	}
	if s := state(0); s != 0 {
		t.Fatalf("unlock answered %d", s)
	}

	// A view-only viewer may ask but not lock.
	ro := serve(t, ctx, x, session.Info{Protocol: 2, Rights: session.RightRemoteViewOnly}).v
	ro.until(ctx, "first frame", func() bool { return ro.near(10, 10, 0xffffff) })
	ro.lockState = -1
	ro.send(ctx, kvm.EncodeByte(kvm.InputLock, 1))
	ro.until(ctx, "input lock answer", func() bool { return ro.lockState >= 0 })
	if ro.lockState != 0 {
		t.Fatal("a view-only viewer locked the input")
	}
}
