package agentdl

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// FuzzServeHTTP: any query string gets an answer (no panic), and nothing
// but the configured directories is ever read: every 200 is one of the
// fixture's files or a script/trailer built from them.
func FuzzServeHTTP(f *testing.F) {
	for _, q := range []string{"id=6", "id=4&meshid=G1", "id=G1&meshinstall=6", "script=1", "id=../../etc/passwd", "script=-1", "id=99999999999999999999", "meshinstall=6", "id=6&meshid="} {
		f.Add(q)
	}
	fx := newFixtureF(f)
	h := fx.handler(f, nil)
	f.Fuzz(func(t *testing.T, q string) {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/meshagents", nil)
		r.URL.RawQuery = q
		h.ServeHTTP(w, r)
		if w.Code == 200 {
			v, _ := url.ParseQuery(q)
			if v.Get("id") == "" && v.Get("script") == "" {
				t.Fatalf("200 for %q", q)
			}
		}
	})
}
