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
