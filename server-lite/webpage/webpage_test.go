package webpage

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestServe(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux)
	mux.HandleFunc("POST /{$}", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "login") })
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()
	cl := srv.Client()
	for _, tc := range []struct {
		method, path string
		status       int
		ctype        string
		csp          bool
	}{
		{"GET", "/", 200, "text/html; charset=utf-8", true},
		{"GET", "/?user=~t:x&pass=y&gotonode=n&viewmode=11&hide=31", 200, "text/html; charset=utf-8", true},
		{"GET", "/static/app.js", 200, "text/javascript; charset=utf-8", true},
		{"GET", "/static/app.css", 200, "text/css; charset=utf-8", true},
		{"GET", "/static/", 404, "", true},           // no directory listing
		{"GET", "/static/index.html", 404, "", true}, // the page only at /
		{"GET", "/static/webpage.go", 404, "", true}, // only the embedded static files
		{"GET", "/favicon.ico", 204, "", false},
		{"POST", "/", 200, "", false}, // still the admin API's form login
	} {
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		if strings.Contains(string(body), "package webpage") {
			t.Errorf("%s %s served Go source", tc.method, tc.path)
		}
		if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s: Content-Type %q, want %q", tc.method, tc.path, resp.Header.Get("Content-Type"), tc.ctype)
		}
		if tc.csp && resp.Header.Get("Content-Security-Policy") != CSP {
			t.Errorf("%s %s: CSP %q", tc.method, tc.path, resp.Header.Get("Content-Security-Policy"))
		}
		if tc.path == "/" && tc.method == "GET" {
			if resp.Header.Get("Referrer-Policy") != "no-referrer" || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("/: Referrer-Policy %q, Cache-Control %q", resp.Header.Get("Referrer-Policy"), resp.Header.Get("Cache-Control"))
			}
		}
	}
}

// TestNoInlineCode: the CSP forbids inline scripts, styles and event
// handlers, so the page must have none (they would silently not run).
func TestNoInlineCode(t *testing.T) {
	b, err := files.ReadFile("static/index.html")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, re := range []string{`<script(?:\s[^>]*)?>\s*[^<\s]`, `<style`, `\sstyle=`, `\son[a-z]+=`, `javascript:`} {
		if m := regexp.MustCompile(re).FindString(s); m != "" {
			t.Errorf("index.html has inline code %q (matched %s)", m, re)
		}
	}
	for _, src := range regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(s, -1) {
		if !strings.HasPrefix(src[1], "/static/") {
			t.Errorf("index.html loads %q from outside /static/", src[1])
		}
	}
}
