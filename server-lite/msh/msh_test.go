package msh

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgo/meshagent/server-lite/store"
)

func TestBuildAndServe(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	g, _ := st.CreateGroup("My group")
	sid := strings.Repeat("AB", 48)
	h := Handler(st, sid, "wss://127.0.0.1:4443/agent.ashx")
	tests := []struct {
		url  string
		code int
	}{
		{"/meshsettings?id=" + strings.TrimPrefix(g.ID, "mesh//"), 200},
		{"/meshsettings?id=nope", 404},
		{"/meshsettings", 404},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.url, nil))
		if rec.Code != tc.code {
			t.Fatalf("%s: %d", tc.url, rec.Code)
		}
		if tc.code != 200 {
			continue
		}
		body := rec.Body.String()
		if !strings.HasPrefix(body, "\r\n") {
			t.Fatal("no leading CRLF")
		}
		lines := strings.Split(strings.TrimSuffix(body, "\r\n"), "\r\n")[1:]
		kv := map[string]string{}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, "=")
			kv[k] = v
		}
		if kv["MeshName"] != "My group" || kv["MeshType"] != "2" || kv["ServerID"] != sid ||
			len(kv["MeshID"]) != 98 || !strings.HasPrefix(kv["MeshID"], "0x") || strings.ToUpper(kv["MeshID"][2:]) != kv["MeshID"][2:] ||
			kv["MeshServer"] != "wss://127.0.0.1:4443/agent.ashx" {
			t.Fatalf("msh %q", body)
		}
	}
}
