package session

import "testing"

func TestInfoTSID(t *testing.T) {
	tests := []struct {
		opts string
		id   uint32
		ok   bool
	}{
		{``, 0, false},
		{`{"type":"options"}`, 0, false},
		{`{"type":"options","tsid":1}`, 1, true},
		{`{"type":"options","tsid":0}`, 0, true},
		{`{"type":"options","tsid":"2"}`, 0, false},
		{`{"type":"options","tsid":-1}`, 0, false},
		{`{"type":"options","tsid":1.5}`, 0, false},
		{`{"type":"options","tsid":4294967296}`, 0, false},
		{`{"type":"options","tsid":null}`, 0, false},
		{`not json`, 0, false},
	}
	for _, tt := range tests {
		id, ok := Info{Options: []byte(tt.opts)}.TSID()
		if id != tt.id || ok != tt.ok {
			t.Errorf("%q: (%d, %v), want (%d, %v)", tt.opts, id, ok, tt.id, tt.ok)
		}
	}
}
