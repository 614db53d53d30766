package sysinfo

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestIPLocation(t *testing.T) {
	answer := `{"ip":"203.0.113.7","city":"Hillsboro","loc":"45.4443,-122.9663","org":"AS64500 Example","readme":7}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/json":
			w.Write([]byte(answer))
		case "/noloc":
			w.Write([]byte(`{"ip":"203.0.113.7"}`))
		default:
			http.Error(w, "quota", http.StatusTooManyRequests)
		}
	}))
	defer srv.Close()
	got, err := IPLocation(context.Background(), srv.URL+"/json")
	if err != nil || got["ip"] != "203.0.113.7" || got["loc"] != "45.4443,-122.9663" || got["city"] != "Hillsboro" || got["readme"] != nil {
		t.Fatalf("got %v, %v", got, err)
	}
	for _, tc := range []struct{ url, want string }{
		{srv.URL + "/noloc", "no ip and loc"},
		{srv.URL + "/limit", "429"},
		{"ftp://127.0.0.1/x", "not an http(s) URL"},
		{"http://", "not an http(s) URL"},
	} {
		if _, err := IPLocation(context.Background(), tc.url); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.url, err, tc.want)
		}
	}
}

func FuzzParseIPLocation(f *testing.F) {
	f.Add([]byte(`{"ip":"1.2.3.4","loc":"1,2"}`))
	f.Add([]byte(`{"ip":1}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseIPLocation(b)
		if err == nil && (m["ip"] == "" || m["loc"] == "" || len(m) > 32) {
			t.Fatalf("accepted %v", m)
		}
	})
}
