// Package webpage is server-lite's own web page: one embedded HTML page
// with its script and style sheet, written for server-lite (no framework,
// nothing built at build or run time). The page speaks the same
// control.ashx and meshrelay.ashx protocols as meshctrl and MeshCentral's
// own page, so it needs no API of its own: whatever it shows, a user could
// also get with meshctrl, under the same rights checks.
//
// Every response carries a strict Content-Security-Policy (scripts and
// styles only from the server itself, no inline code, no framing by other
// sites) and no Referer leaves the page, because login-token URLs carry a
// password in their query.
package webpage

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var files embed.FS

// CSP is the page's Content-Security-Policy. connect-src 'self' also
// covers wss:// to the same host (CSP level 3), which the page needs for
// control.ashx and meshrelay.ashx; blob: images are the desktop tiles.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'self'; base-uri 'none'"

// Register mounts GET / (the page) and GET /static/ (its files) on mux.
// POST / stays the admin API's form login.
func Register(mux *http.ServeMux) {
	mux.Handle("GET /{$}", Handler())
	mux.Handle("GET /static/", Handler())
	// Browsers ask for it on their own; answer without a 404 in the log.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// Handler serves the page at / and its files under /static/.
func Handler() http.Handler {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic("webpage: embedded files: " + err.Error())
	}
	static := http.StripPrefix("/static/", http.FileServerFS(sub))
	index, err := fs.ReadFile(sub, "index.html")
	if err != nil {
		panic("webpage: index.html: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "SAMEORIGIN")
		switch {
		case r.URL.Path == "/":
			// The page itself is never cached: a login-token URL must not
			// be kept by the browser's cache with its query.
			h.Set("Cache-Control", "no-store")
			h.Set("Content-Type", "text/html; charset=utf-8")
			w.Write(index)
		case len(r.URL.Path) > len("/static/") && r.URL.Path[:len("/static/")] == "/static/" && r.URL.Path != "/static/index.html":
			h.Set("Cache-Control", "no-cache")
			static.ServeHTTP(w, r)
		default:
			http.NotFound(w, r)
		}
	})
}
