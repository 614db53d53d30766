// Package oidctest is a small OpenID Connect provider for tests, on
// 127.0.0.1: discovery, an authorization page (a form naming the user to
// sign in as), the token endpoint (authorization code with PKCE S256 only,
// client secret checked) and the signing keys, with ID tokens signed RS256
// by go-jose. Knobs let a test make it misbehave (a wrong nonce, audience
// or signing key) to prove the relying party refuses it.
package oidctest

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Identity is a user the provider can sign in.
type Identity struct {
	Subject           string
	PreferredUsername string
	Email             string
	Name              string
}

// Provider is a running test provider.
type Provider struct {
	URL          string // issuer
	ClientID     string
	ClientSecret string
	RedirectURL  string // the only redirect_uri accepted

	// Users by login name typed into the authorization form.
	Users map[string]Identity

	mu sync.Mutex
	// Tamper, when set, changes the ID token claims before signing.
	Tamper func(claims map[string]any)
	// WrongKey signs ID tokens with a key that is not published.
	WrongKey bool
	// Approve, when set, signs this login in without showing the form.
	Approve string
	codes   map[string]grant
	// Exchanges counts successful code exchanges.
	Exchanges int

	key, other *rsa.PrivateKey
	srv        *httptest.Server
}

type grant struct {
	clientID, redirect, challenge, nonce string
	id                                   Identity
	expires                              time.Time
}

// Start runs a provider until the test ends. redirectURL is the relying
// party's callback.
func Start(t testing.TB, redirectURL string) *Provider {
	t.Helper()
	k1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	p := &Provider{ClientID: "server-lite-test", ClientSecret: rnd(), RedirectURL: redirectURL,
		Users: map[string]Identity{}, codes: map[string]grant{}, key: k1, other: k2}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /authorize", p.authorize)
	mux.HandleFunc("POST /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	mux.HandleFunc("GET /keys", p.keys)
	p.srv = httptest.NewServer(mux)
	p.URL = p.srv.URL
	t.Cleanup(p.srv.Close)
	return p
}

// Set changes the misbehaviour knobs under the provider's lock.
func (p *Provider) Set(f func(p *Provider)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func rnd() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"issuer": p.URL, "authorization_endpoint": p.URL + "/authorize", "token_endpoint": p.URL + "/token",
		"jwks_uri": p.URL + "/keys", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported": []string{"S256"}, "scopes_supported": []string{"openid", "profile", "email"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (p *Provider) keys(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
}

// authorize checks the request, shows a form (or approves p.Approve) and
// redirects back with a code bound to the PKCE challenge and nonce.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	q := r.Form
	switch {
	case q.Get("client_id") != p.ClientID:
		http.Error(w, "unknown client", http.StatusBadRequest)
		return
	case q.Get("redirect_uri") != p.RedirectURL:
		http.Error(w, "redirect_uri not registered", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		http.Error(w, "response_type must be code", http.StatusBadRequest)
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		http.Error(w, "PKCE S256 required", http.StatusBadRequest)
		return
	case q.Get("state") == "" || q.Get("nonce") == "":
		http.Error(w, "state and nonce required", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	login := p.Approve
	p.mu.Unlock()
	if r.Method == http.MethodPost {
		login = r.PostForm.Get("login")
	}
	if login == "" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!DOCTYPE html><title>Test provider</title><form method="post" action="/authorize">`)
		for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method"} {
			fmt.Fprintf(w, `<input type="hidden" name="%s" value="%s">`, k, html.EscapeString(q.Get(k)))
		}
		fmt.Fprint(w, `<label>Login <input id="login" name="login"></label><button id="approve" type="submit">Approve</button></form>`)
		return
	}
	id, ok := p.Users[login]
	if !ok {
		http.Error(w, "no such user", http.StatusForbidden)
		return
	}
	code := rnd()
	p.mu.Lock()
	p.codes[code] = grant{clientID: p.ClientID, redirect: q.Get("redirect_uri"), challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), id: id, expires: time.Now().Add(time.Minute)}
	p.mu.Unlock()
	u, _ := url.Parse(q.Get("redirect_uri"))
	v := u.Query()
	v.Set("code", code)
	v.Set("state", q.Get("state"))
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	id, sec, ok := r.BasicAuth()
	if !ok {
		id, sec = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || subtle.ConstantTimeCompare([]byte(sec), []byte(p.ClientSecret)) != 1 {
		tokenError(w, "invalid_client")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		tokenError(w, "unsupported_grant_type")
		return
	}
	p.mu.Lock()
	g, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	tamper, wrong := p.Tamper, p.WrongKey
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok || time.Now().After(g.expires):
		tokenError(w, "invalid_grant")
		return
	case r.PostForm.Get("redirect_uri") != g.redirect:
		tokenError(w, "invalid_grant")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		tokenError(w, "invalid_grant") // PKCE verifier does not match
		return
	}
	now := time.Now()
	c := map[string]any{"iss": p.URL, "sub": g.id.Subject, "aud": p.ClientID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"nonce": g.nonce, "preferred_username": g.id.PreferredUsername, "email": g.id.Email, "email_verified": g.id.Email != "", "name": g.id.Name}
	if tamper != nil {
		tamper(c)
	}
	key := p.key
	if wrong {
		key = p.other
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	payload, _ := json.Marshal(c)
	obj, err := signer.Sign(payload)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	idToken, _ := obj.CompactSerialize()
	p.mu.Lock()
	p.Exchanges++
	p.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": rnd(), "token_type": "Bearer", "expires_in": 300, "id_token": idToken})
}

func tokenError(w http.ResponseWriter, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"error": code})
}
