package adminapi

import (
	"sync"
	"time"
)

// Session cookies are opaque random tokens looked up in memory, not
// encrypted blobs: they never contain "$" and need no URL escaping
// (admin-api.md §6.3). They are lost on restart, which only means logging
// in again.
const kindSession = "session" // xid form-login cookie, also accepted as ?auth=

// Lifetimes follow MeshCentral's (admin-api.md §1.5).
const (
	userCookieLife    = 60 * time.Minute
	relayCookieLife   = 240 * time.Minute
	sessionCookieLife = 12 * time.Hour
)

type cookie struct {
	kind      string
	userID    string
	ip        string // bound client IP, "" = any
	fromToken bool
	tokenUser string // the login token it was made from, when fromToken
	expires   time.Time
}

type cookieJar struct {
	mu  sync.Mutex
	m   map[string]cookie
	now func() time.Time
}

func newCookieJar() *cookieJar { return &cookieJar{m: map[string]cookie{}, now: time.Now} }

// mint stores a new cookie and returns its value: 32 lower-case hex chars
// (128 random bits).
func (j *cookieJar) mint(c cookie, life time.Duration) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := j.now()
	if len(j.m) > 1024 {
		for k, v := range j.m {
			if now.After(v.expires) {
				delete(j.m, k)
			}
		}
	}
	c.expires = now.Add(life)
	v := randomHex(16)
	j.m[v] = c
	return v
}

// check returns the cookie if it exists, is of kind, unexpired, and (when
// bound) presented from its IP.
func (j *cookieJar) check(value, kind, ip string) (cookie, bool) {
	if len(value) != 32 {
		return cookie{}, false
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	c, ok := j.m[value]
	if !ok || c.kind != kind {
		return cookie{}, false
	}
	if j.now().After(c.expires) {
		delete(j.m, value)
		return cookie{}, false
	}
	if c.ip != "" && c.ip != ip {
		return cookie{}, false
	}
	return c, true
}

func (j *cookieJar) revoke(value string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	delete(j.m, value)
}

// revokeUser drops every cookie of a user (deleted account), or, when
// tokenUser is set, those made from that login token.
func (j *cookieJar) revokeUser(userID, tokenUser string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for k, v := range j.m {
		if v.userID == userID && (tokenUser == "" || v.tokenUser == tokenUser) {
			delete(j.m, k)
		}
	}
}
