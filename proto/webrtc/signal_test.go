package webrtc

import (
	"strings"
	"testing"
)

func TestParseSignal(t *testing.T) {
	for _, tc := range []struct {
		in   string
		kind sigKind
		sdp  string
	}{
		{`{"type":"offer","sdp":"v=0\r\n"}`, sigOffer, "v=0\r\n"},
		{` {"sdp":"v=0","type":"offer"} `, sigOffer, "v=0"},
		{`{"type":"answer","ctrlChannel":"102938","sdp":"v=0"}`, sigAnswer, "v=0"},
		{`{"ctrlChannel":"102938","type":"webrtc0"}`, sigWebRTC0, ""},
		{`{"ctrlChannel":102938,"type":"webrtc1"}`, sigWebRTC1, ""},
		{`{"ctrlChannel":"102938","type":"webrtc2"}`, sigWebRTC2, ""},
		// Not ours: they go to the handler.
		{`{"type":"webrtc0"}`, sigNone, ""},
		{`{"ctrlChannel":"1","type":"webrtc0"}`, sigNone, ""},
		{`{"ctrlChannel":"102938","type":"offer","sdp":""}`, sigNone, ""},
		{`{"type":"offer"}`, sigNone, ""},
		{`{"ctrlChannel":"102938","type":"ping"}`, sigNone, ""},
		{`{"ctrlChannel":"102938","type":"webrtc3"}`, sigNone, ""},
		{`{"action":"ls","path":"/"}`, sigNone, ""},
		{`2`, sigNone, ""},
		{`{"type":"offer","sdp":"v=0"`, sigNone, ""},
	} {
		s, ok := parseSignal([]byte(tc.in))
		if ok != (tc.kind != sigNone) || s.kind != tc.kind || s.sdp != tc.sdp {
			t.Errorf("parseSignal(%s) = %+v %v, want kind %d sdp %q", tc.in, s, ok, tc.kind, tc.sdp)
		}
	}
	// The wire forms the MeshCentral peers look for.
	if got := string(signal{kind: sigWebRTC1}.encode()); got != `{"ctrlChannel":"102938","type":"webrtc1"}` {
		t.Errorf("webrtc1 encodes as %s", got)
	}
	if got := string(signal{kind: sigAnswer, sdp: "v=0\r\n"}.encode()); got != `{"ctrlChannel":"102938","type":"answer","sdp":"v=0\r\n"}` {
		t.Errorf("answer encodes as %s", got)
	}
	if got := string(signal{kind: sigOffer, sdp: "v=0"}.encode()); got != `{"type":"offer","sdp":"v=0"}` {
		t.Errorf("offer encodes as %s", got)
	}
	if !isDCClose([]byte(`{"type":"close"}`)) || isDCClose([]byte(`{"type":"closed"}`)) || isDCClose([]byte(`{"action":"close"}`)) {
		t.Error("isDCClose")
	}
}

// FuzzParseSignal: the parser sees every text frame a client sends, so it
// must never panic, and whatever it accepts must survive a round trip
// through the encoder unchanged.
func FuzzParseSignal(f *testing.F) {
	for _, s := range []string{
		`{"type":"offer","sdp":"v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n"}`,
		`{"ctrlChannel":"102938","type":"answer","sdp":"v=0"}`,
		`{"ctrlChannel":102938,"type":"webrtc0"}`,
		`{"ctrlChannel":"102938","type":"webrtc2"}`,
		`{"ctrlChannel":"102938","type":"rtt","time":1}`,
		`{"type":"close"}`, `{}`, `{"type":`, "\x00{", `{"ctrlChannel":1.02938e5,"type":"webrtc1"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		isDCClose(b)
		s, ok := parseSignal(b)
		if !ok {
			if s.kind != sigNone {
				t.Fatalf("rejected but kind %d", s.kind)
			}
			return
		}
		if s.kind < sigOffer || s.kind > sigWebRTC2 {
			t.Fatalf("bad kind %d", s.kind)
		}
		if (s.kind == sigOffer || s.kind == sigAnswer) == (strings.TrimSpace(s.sdp) == "") {
			t.Fatalf("kind %d with sdp %q", s.kind, s.sdp)
		}
		again, ok := parseSignal(s.encode())
		if !ok || again != s {
			t.Fatalf("round trip of %q: %+v %v", b, again, ok)
		}
	})
}
