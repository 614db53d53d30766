//go:build linux

package mutter

import (
	"testing"

	"github.com/godbus/dbus/v5"
)

// TestCapsSize: the sink's negotiated caps line in gst-launch -v output
// gives the frame size; other elements' caps and other lines do not.
func TestCapsSize(t *testing.T) {
	for _, tc := range []struct {
		line string
		w, h string
	}{
		{"/GstPipeline:pipeline0/GstFdSink:fdsink0.GstPad:sink: caps = video/x-raw, format=(string)BGRx, width=(int)1280, height=(int)720, framerate=(fraction)0/1", "1280", "720"},
		{"/GstPipeline:pipeline0/GstVideoConvert:videoconvert0.GstPad:src: caps = video/x-raw, format=(string)BGRx, width=(int)640, height=(int)480", "", ""},
		{"/GstPipeline:pipeline0/GstFdSink:fdsink0.GstPad:sink: caps = audio/x-raw, rate=(int)48000", "", ""},
		{"Setting pipeline to PLAYING ...", "", ""},
	} {
		m := capsSize.FindStringSubmatch(tc.line)
		var w, h string
		if m != nil {
			w, h = m[1], m[2]
		}
		if w != tc.w || h != tc.h {
			t.Errorf("%q: size %q x %q, want %q x %q", tc.line, w, h, tc.w, tc.h)
		}
	}
}

// TestPair: the stream Parameters' (ii) values, and anything else as 0, 0.
func TestPair(t *testing.T) {
	for _, tc := range []struct {
		v    dbus.Variant
		a, b int
	}{
		{dbus.MakeVariant([]any{int32(1920), int32(1080)}), 1920, 1080},
		{dbus.MakeVariant([]any{int32(5)}), 0, 0},
		{dbus.MakeVariant("1920x1080"), 0, 0},
		{dbus.Variant{}, 0, 0},
	} {
		if a, b := pair(tc.v); a != tc.a || b != tc.b {
			t.Errorf("pair(%v) = %d, %d; want %d, %d", tc.v, a, b, tc.a, tc.b)
		}
	}
}

// TestLogicalMonitors: GetCurrentState's logical monitors (as godbus
// decodes them) give each one's first connector, place and primary flag;
// malformed entries are skipped.
func TestLogicalMonitors(t *testing.T) {
	spec := func(c string) []any { return []any{c, "MetaVendor", "MetaVirtualMonitor", "0x00"} }
	body := []any{uint32(2), [][]any{},
		[][]any{
			{int32(0), int32(0), 1.0, uint32(0), true, [][]any{spec("Meta-1")}, map[string]dbus.Variant{}},
			{int32(800), int32(0), 1.0, uint32(0), false, [][]any{spec("Meta-0"), spec("Meta-2")}, map[string]dbus.Variant{}},
			{int32(5), int32(5), 1.0, uint32(0), false, [][]any{}, map[string]dbus.Variant{}}, // no monitor
			{"x", int32(5), 1.0, uint32(0), false, [][]any{spec("Bad")}, map[string]dbus.Variant{}},
			{int32(1)},
		},
		map[string]dbus.Variant{}}
	got := logicalMonitors(body)
	want := []Monitor{{"Meta-1", 0, 0, true}, {"Meta-0", 800, 0, false}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("logicalMonitors = %+v, want %+v", got, want)
	}
	if logicalMonitors(nil) != nil || logicalMonitors([]any{uint32(1), "x", "y"}) != nil {
		t.Fatal("malformed replies should give no monitors")
	}
}

// TestOwnerChange: SelectionOwnerChanged's mime-types as Mutter 43 sends
// them (a struct holding the array) and as a plain array; no owner.
func TestOwnerChange(t *testing.T) {
	types := []string{"text/plain;charset=utf-8", "UTF8_STRING"}
	for _, tc := range []struct {
		opts  map[string]dbus.Variant
		types []string
		own   bool
	}{
		{map[string]dbus.Variant{"mime-types": dbus.MakeVariant([]any{types}), "session-is-owner": dbus.MakeVariant(true)}, types, true},
		{map[string]dbus.Variant{"mime-types": dbus.MakeVariant(types), "session-is-owner": dbus.MakeVariant(false)}, types, false},
		{map[string]dbus.Variant{}, nil, false},
		{map[string]dbus.Variant{"mime-types": dbus.MakeVariant(7)}, nil, false},
	} {
		got, own := OwnerChange(tc.opts)
		if len(got) != len(tc.types) || own != tc.own {
			t.Errorf("OwnerChange(%v) = %v, %v; want %v, %v", tc.opts, got, own, tc.types, tc.own)
		}
	}
}
