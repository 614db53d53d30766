// Package oidc is server-lite's OpenID Connect sign-in: the authorization
// code flow with PKCE (S256), state and nonce, the ID token verified by
// go-oidc (signature against the provider's published keys, issuer,
// audience, expiry), and accounts created on first sign-in. An identity is
// linked to an account by issuer and subject, never by name or e-mail, so
// a provider's user cannot take over an existing local account.
//
// Routes: GET /oidc/login starts a sign-in, GET /oidc/callback completes
// it, GET /oidc/config tells the web page whether to show the button.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// Config configures OpenID Connect sign-in.
type Config struct {
	// Issuer is the provider's issuer URL (its discovery document is at
	// Issuer + "/.well-known/openid-configuration").
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is this server's callback as registered with the
	// provider: https://<host>:<port>/oidc/callback.
	RedirectURL string
	// Scopes beyond "openid" (default: profile, email).
	Scopes []string
	// Label is the provider's name on the sign-in button.
	Label string
	// NoAutoCreate refuses identities that no account is linked to yet
	// (an administrator creates and links them); default: create.
	NoAutoCreate bool
	// HTTPClient talks to the provider (discovery, keys, token); nil is
	// http.DefaultClient.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Sessions is what the admin API provides: a session for a signed-in
// account, and the audit log.
type Sessions interface {
	// SignIn gives the browser a session for userID (cookie), or an error
	// when the account cannot sign in (deleted, deactivated).
	SignIn(w http.ResponseWriter, r *http.Request, userID, method string) error
	// Audit records a security event.
	Audit(userID, action, from, msg string)
}

// Server serves the sign-in routes.
type Server struct {
	cfg  Config
	acc  *accounts.Manager
	sess Sessions
	log  *slog.Logger

	provMu sync.Mutex
	prov   *gooidc.Provider // discovered on first use, kept once found

	mu      sync.Mutex
	pending map[string]pending // by state
}

// pending is a sign-in on its way through the provider.
type pending struct {
	verifier string // PKCE code verifier
	nonce    string
	browser  string // SHA-256 of the binding cookie's value
	created  time.Time
}

const (
	pendingLife = 10 * time.Minute
	maxPending  = 10_000
	bindCookie  = "oidcbind"
)

// New returns a Server. Discovery happens on the first sign-in, so a
// provider that is down at start does not stop the server.
func New(cfg Config, acc *accounts.Manager, sess Sessions) (*Server, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("oidc: issuer, clientId and redirect URL are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"profile", "email"}
	}
	return &Server{cfg: cfg, acc: acc, sess: sess, log: cfg.Logger.With("component", "oidc"), pending: map[string]pending{}}, nil
}

// Register mounts the routes.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /oidc/login", s.serveLogin)
	mux.HandleFunc("GET /oidc/callback", s.serveCallback)
	mux.HandleFunc("GET /oidc/config", s.serveConfig)
}

// Disabled answers GET /oidc/config when sign-in is not configured, so
// the page asks without a 404.
func Disabled(mux *http.ServeMux) {
	mux.HandleFunc("GET /oidc/config", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"enabled":false}`))
	})
}

func (s *Server) serveConfig(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"enabled": true, "label": s.cfg.Label})
}

func (s *Server) ctx(r *http.Request) context.Context {
	return gooidc.ClientContext(r.Context(), s.cfg.HTTPClient)
}

func (s *Server) provider(ctx context.Context) (*gooidc.Provider, error) {
	s.provMu.Lock()
	defer s.provMu.Unlock()
	if s.prov != nil {
		return s.prov, nil
	}
	p, err := gooidc.NewProvider(ctx, s.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc discovery: %w", err)
	}
	s.prov = p
	return p, nil
}

func (s *Server) oauth(p *gooidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: s.cfg.RedirectURL, Scopes: append([]string{gooidc.ScopeOpenID}, s.cfg.Scopes...)}
}

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Errorf("crypto/rand: %w", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashString(v string) string { h := sha256.Sum256([]byte(v)); return hex.EncodeToString(h[:]) }

func remoteIP(r *http.Request) string {
	if i := strings.LastIndexByte(r.RemoteAddr, ':'); i > 0 {
		return strings.Trim(r.RemoteAddr[:i], "[]")
	}
	return r.RemoteAddr
}

// serveLogin starts a sign-in: fresh state, nonce and PKCE verifier kept
// here, a cookie binding the sign-in to this browser (so a callback link
// made by someone else cannot sign this browser in as them), and a
// redirect to the provider.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	p, err := s.provider(s.ctx(r))
	if err != nil {
		s.log.Error("oidc provider", "err", err)
		s.fail(w, r, "", http.StatusBadGateway, "The sign-in provider cannot be reached.")
		return
	}
	state, nonce, verifier, bind := randomString(24), randomString(24), oauth2.GenerateVerifier(), randomString(24)
	now := time.Now()
	s.mu.Lock()
	for k, v := range s.pending {
		if now.Sub(v.created) > pendingLife {
			delete(s.pending, k)
		}
	}
	if len(s.pending) >= maxPending {
		s.mu.Unlock()
		s.fail(w, r, "", http.StatusServiceUnavailable, "Too many sign-ins under way; try again shortly.")
		return
	}
	s.pending[state] = pending{verifier: verifier, nonce: nonce, browser: hashString(bind), created: now}
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: bindCookie, Value: bind, Path: "/oidc/", MaxAge: int(pendingLife.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, s.oauth(p).AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), gooidc.Nonce(nonce)), http.StatusFound)
}

// claims are the ID token claims used for the account.
type claims struct {
	Nonce             string `json:"nonce"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
	EmailVerified     *bool  `json:"email_verified"`
	Name              string `json:"name"`
}

// serveCallback completes a sign-in: the state must be one this server
// issued to this browser (used once), the code is exchanged with the PKCE
// verifier, the ID token verified and its nonce matched.
func (s *Server) serveCallback(w http.ResponseWriter, r *http.Request) {
	ip := remoteIP(r)
	q := r.URL.Query()
	state := q.Get("state")
	s.mu.Lock()
	pd, ok := s.pending[state]
	delete(s.pending, state) // one use, whatever happens next
	s.mu.Unlock()
	bc, err := r.Cookie(bindCookie)
	http.SetCookie(w, &http.Cookie{Name: bindCookie, Value: "", Path: "/oidc/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	switch {
	case state == "" || !ok || time.Since(pd.created) > pendingLife:
		s.fail(w, r, "unknown or expired state", http.StatusBadRequest, "This sign-in link is not valid or has expired. Start again.")
		return
	case err != nil || subtle.ConstantTimeCompare([]byte(hashString(bc.Value)), []byte(pd.browser)) != 1:
		s.fail(w, r, "state not issued to this browser", http.StatusBadRequest, "This sign-in was not started in this browser. Start again.")
		return
	case q.Get("error") != "":
		s.fail(w, r, "provider error "+truncate(q.Get("error"), 64), http.StatusForbidden, "The sign-in provider refused: "+truncate(q.Get("error"), 64))
		return
	case q.Get("code") == "":
		s.fail(w, r, "no code", http.StatusBadRequest, "The sign-in provider sent no code.")
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx(r), 30*time.Second)
	defer cancel()
	p, err := s.provider(ctx)
	if err != nil {
		s.fail(w, r, err.Error(), http.StatusBadGateway, "The sign-in provider cannot be reached.")
		return
	}
	tok, err := s.oauth(p).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pd.verifier))
	if err != nil {
		s.fail(w, r, "code exchange: "+err.Error(), http.StatusForbidden, "The sign-in provider did not accept the code.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.fail(w, r, "no id_token", http.StatusForbidden, "The sign-in provider sent no ID token.")
		return
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: s.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		s.fail(w, r, "ID token: "+err.Error(), http.StatusForbidden, "The ID token did not verify.")
		return
	}
	var c claims
	if err := idt.Claims(&c); err != nil {
		s.fail(w, r, "ID token claims: "+err.Error(), http.StatusForbidden, "The ID token did not verify.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(c.Nonce), []byte(pd.nonce)) != 1 {
		s.fail(w, r, "nonce mismatch", http.StatusForbidden, "The ID token did not verify.")
		return
	}
	if idt.Subject == "" {
		s.fail(w, r, "no subject", http.StatusForbidden, "The ID token did not verify.")
		return
	}
	ext := idt.Issuer + " " + idt.Subject
	u, found, err := s.acc.FindExternal(ext)
	if err != nil {
		s.log.Error("oidc find account", "err", err)
		s.fail(w, r, "", http.StatusInternalServerError, "Internal error.")
		return
	}
	if !found {
		if s.cfg.NoAutoCreate {
			s.fail(w, r, "no account for "+ext, http.StatusForbidden, "There is no account for you on this server; ask an administrator.")
			return
		}
		email := ""
		if c.EmailVerified != nil && *c.EmailVerified {
			email = strings.ToLower(c.Email)
		}
		u, err = s.acc.CreateExternal(accountName(c, idt.Subject), ext, email, truncate(c.Name, 256), hashString(ext)[:8])
		if err != nil {
			s.log.Error("oidc create account", "err", err)
			s.fail(w, r, "create account: "+err.Error(), http.StatusInternalServerError, "Your account could not be created.")
			return
		}
		s.sess.Audit(u.ID, "accountcreate", ip, "Account created by OpenID Connect sign-in: "+truncate(ext, 300))
	}
	if err := s.sess.SignIn(w, r, u.ID, "oidc "+s.cfg.Issuer); err != nil {
		s.fail(w, r, "sign in "+u.ID+": "+err.Error(), http.StatusForbidden, "This account cannot sign in.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, "/", http.StatusFound)
}

var badName = regexp.MustCompile(`[ ",/]+`)

// accountName picks the new account's name: preferred_username, the
// e-mail address, or one made from the subject; made valid under
// MeshCentral's name rules.
func accountName(c claims, sub string) string {
	n := c.PreferredUsername
	if n == "" {
		n = c.Email
	}
	n = strings.TrimLeft(badName.ReplaceAllString(n, "_"), "~")
	if n == "" || len(n) > 64 {
		n = "oidc-" + hashString(sub)[:12]
	}
	return n
}

// fail answers a refused sign-in with a short page and audits it; why is
// for the log only (never shown: it may say more than a visitor should).
func (s *Server) fail(w http.ResponseWriter, r *http.Request, why string, code int, msg string) {
	if why != "" {
		s.log.Warn("OpenID Connect sign-in refused", "reason", why, "from", remoteIP(r))
		s.sess.Audit("", "loginfailed", remoteIP(r), "Failed login (oidc): "+truncate(why, 200))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, msg)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
