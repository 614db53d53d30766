package terminal

import (
	"encoding/json"
	"testing"
)

func TestParseControl(t *testing.T) {
	cases := []struct {
		in         string
		ok         bool
		typ        string
		cols, rows int
	}{
		{`{"ctrlChannel":"102938","type":"termsize","cols":120,"rows":40}`, true, "termsize", 120, 40},
		{`{"ctrlChannel":102938,"type":"rtt","time":5}`, true, "rtt", 0, 0},
		{`{"type":"options","cols":"90","rows":"30"}`, true, "options", 90, 30},
		{`{"ctrlChannel":"1","type":"ping"}`, false, "", 0, 0},
		{`{"ctrlChannel":"102938"}`, false, "", 0, 0},
		{`{"ctrlChannel":"102938","type":5}`, false, "", 0, 0},
		{`{"ctrlChannel":"102938","type":"termsize","cols":-1,"rows":1e9}`, true, "termsize", 0, 0},
		{`echo hi`, false, "", 0, 0},
		{``, false, "", 0, 0},
		{`[1,2]`, false, "", 0, 0},
	}
	for _, tc := range cases {
		c, ok := parseControl([]byte(tc.in))
		if ok != tc.ok || c.Type != tc.typ || c.Cols != tc.cols || c.Rows != tc.rows {
			t.Errorf("parseControl(%s) = %+v, %v; want type %q %dx%d ok=%v", tc.in, c, ok, tc.typ, tc.cols, tc.rows, tc.ok)
		}
	}
}

func TestParseOptions(t *testing.T) {
	cases := []struct {
		in   string
		want termOptions
	}{
		{``, termOptions{Cols: 80, Rows: 25}},
		{`garbage`, termOptions{Cols: 80, Rows: 25}},
		{`{"type":"options","cols":132,"rows":50,"requireLogin":true}`, termOptions{Cols: 132, Rows: 50, RequireLogin: true}},
		{`{"cols":0,"rows":"x","requireLogin":false}`, termOptions{Cols: 80, Rows: 25}},
	}
	for _, tc := range cases {
		if got := parseOptions([]byte(tc.in)); got != tc.want {
			t.Errorf("parseOptions(%s) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestCtrlJSONPrefix(t *testing.T) {
	got := string(ctrlJSON("console", "msg", "a\"b", "msgid", 2))
	want := `{"ctrlChannel":"102938","type":"console","msg":"a\"b","msgid":2}`
	if got != want {
		t.Fatalf("ctrlJSON = %s, want %s", got, want)
	}
}

// FuzzParseControl feeds arbitrary client text frames to the control parser:
// it must never panic, and whatever it accepts must carry sane dimensions.
func FuzzParseControl(f *testing.F) {
	for _, s := range []string{
		`{"ctrlChannel":"102938","type":"termsize","cols":120,"rows":40}`,
		`{"ctrlChannel":102938,"type":"rtt","time":1700000000000}`,
		`{"type":"options","cols":"80","requireLogin":true}`,
		`{"ctrlChannel":"102938","type":"close"}`,
		`{`, `null`, "\x00\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, ok := parseControl(data)
		if ok {
			if c.Type == "" {
				t.Fatal("accepted a message without type")
			}
			if c.Cols < 0 || c.Cols > maxDimension || c.Rows < 0 || c.Rows > maxDimension {
				t.Fatalf("bad dimensions %dx%d", c.Cols, c.Rows)
			}
			if c.Time != nil && !json.Valid(c.Time) {
				t.Fatal("invalid time echo")
			}
		}
		o := parseOptions(data)
		if o.Cols < 1 || o.Rows < 1 || o.Cols > maxDimension || o.Rows > maxDimension {
			t.Fatalf("bad options %+v", o)
		}
	})
}
