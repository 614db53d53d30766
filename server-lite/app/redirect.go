package app

import (
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strings"
	"time"
)

// redirectHandler answers every plain-HTTP request with a redirect to the
// same path over HTTPS and serves nothing else: no page, no .msh, no agent
// over cleartext. The target host is the request's own when it is one of
// the server's names (so a browser stays on the name it used), else the
// primary name, so that a forged Host header cannot send users elsewhere.
func (a *App) redirectHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if !a.isOwnName(host) {
			host = a.hostnames[0]
		}
		target := "https://" + net.JoinHostPort(host, a.port()) + r.URL.RequestURI()
		w.Header().Set("Connection", "close")
		http.Redirect(w, r, target, http.StatusMovedPermanently)
	})
}

func (a *App) isOwnName(h string) bool {
	for _, n := range a.hostnames {
		if strings.EqualFold(n, h) {
			return true
		}
	}
	return false
}

func (a *App) startRedirect() error {
	if a.cfg.HTTPRedirect == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.HTTPRedirect)
	if err != nil {
		return fmt.Errorf("http redirect listen: %w", err)
	}
	a.redirLn = ln
	return nil
}

func (a *App) serveRedirect() {
	if a.redirLn == nil {
		return
	}
	a.redirSrv = &http.Server{
		Handler:           a.redirectHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       10 * time.Second,
		ErrorLog:          log.New(slogWriter{a.log}, "", 0),
	}
	go func() {
		if err := a.redirSrv.Serve(a.redirLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http redirect stopped", "err", err)
		}
	}()
}

// RedirectAddr is the bound plain-HTTP redirect address, "" without one.
func (a *App) RedirectAddr() string {
	if a.redirLn == nil {
		return ""
	}
	return a.redirLn.Addr().String()
}
