// Package accounts holds server-lite's users: bcrypt password hashes, site
// rights, per-group and per-device rights links, effective-rights computation
// and login tokens (admin-api.md §1.6, §3).
//
// Rights live only on the user record (User.Links). MeshCentral keeps them on
// both the user and the group and has to keep the two in step; server-lite
// derives a group's member list by scanning users instead, so there is one
// source of truth and no way for the copies to disagree.
package accounts

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgo/meshagent/proto/session"
)

// Site rights (admin-api.md §3.1; meshuser.js SITERIGHT_*). Device-group and
// device rights reuse session.Right* so the bit values are named once.
const (
	SiteManageUsers uint32 = 0x00000002
	SiteLocked      uint32 = 0x00000020
	SiteNoNewGroups uint32 = 0x00000040
	SiteNoMeshCmd   uint32 = 0x00000080
	SiteAllEvents   uint32 = 0x00000800
	SiteAdmin       uint32 = 0xFFFFFFFF
)

// FullRights is the "full administrator" value for site and group rights;
// many checks compare for equality with it rather than testing bits.
const FullRights = session.RightAdmin

// Errors returned by Manager. ErrInvalidLogin deliberately covers unknown
// users, wrong passwords and locked accounts alike so callers cannot leak
// which one happened.
var (
	ErrInvalidLogin = errors.New("invalid login")
	ErrNotFound     = errors.New("user does not exist")
	ErrExists       = errors.New("user already exists")
	ErrBadName      = errors.New("invalid username")
	ErrBadPassword  = errors.New("invalid password")
)

// TokenPrefix starts every login-token user name (admin-api.md §1.6).
const TokenPrefix = "~t:"

// LoginToken is a named alternative credential of a user: it logs in as the
// owning user, but the session it opens may not create further tokens.
type LoginToken struct {
	Name      string `json:"name"`
	TokenUser string `json:"tokenUser"`
	Hash      []byte `json:"hash"`
	Created   int64  `json:"created"` // ms
	Expire    int64  `json:"expire"`  // ms, 0 = never
}

// User is one account. Links maps "mesh//…" and "node//…" ids to rights.
type User struct {
	ID           string            `json:"_id"`
	Name         string            `json:"name"`
	PasswordHash []byte            `json:"hash"`
	SiteAdmin    uint32            `json:"siteadmin"`
	Links        map[string]uint32 `json:"links"`
	Creation     int64             `json:"creation"` // seconds, as MeshCentral
	Email        string            `json:"email,omitempty"`
	RealName     string            `json:"realname,omitempty"`
	LoginTokens  []LoginToken      `json:"loginTokens,omitempty"`
	// Factors holds each second factor's data by factor name (a TOTP
	// secret, a messaging handle); only the factor reads its entry.
	Factors map[string]json.RawMessage `json:"factors,omitempty"`
	// PassChange is when the password was last set (seconds).
	PassChange int64 `json:"passchange,omitempty"`
	// External is "<issuer> <subject>" for an account created by an
	// OpenID Connect sign-in; such an account has no password.
	External string `json:"external,omitempty"`
}

// IsSiteAdmin reports full site-administrator status.
func (u User) IsSiteAdmin() bool { return u.SiteAdmin == SiteAdmin }

// HasSite reports whether the user holds a site right (full admins hold all).
func (u User) HasSite(bit uint32) bool { return u.SiteAdmin == SiteAdmin || u.SiteAdmin&bit != 0 }

// Store persists users. The server-lite store implements it; MemStore is the
// in-memory version used by tests and throw-away servers.
type Store interface {
	User(id string) (User, bool, error)
	PutUser(u User) error
	DeleteUser(id string) error
	Users() ([]User, error)
}

// UserID returns the MeshCentral id of a user name in the default domain.
func UserID(name string) string { return "user//" + strings.ToLower(name) }

// ValidName applies MeshCentral's user-name rules (common.js validateUsername):
// 1–256 characters, no space, quote, comma or slash, not starting with "~".
func ValidName(name string) bool {
	if len(name) < 1 || len(name) > 256 || strings.HasPrefix(name, "~") {
		return false
	}
	return !strings.ContainsAny(name, " \",/")
}

// bcrypt ignores bytes past 72; refusing longer passwords is safer than
// silently truncating them.
const maxPassword = 72

// Manager is the account service. Its methods serialise writes so that
// read-modify-write of a user record cannot lose updates.
type Manager struct {
	st   Store
	mu   sync.Mutex
	cost int
	now  func() time.Time

	factors []SecondFactor // guarded by mu
	rules   PasswordRules  // guarded by mu

	dummyMu   sync.Mutex
	dummy     []byte // bcrypt hash at dummyCost
	dummyCost int
}

// New returns a Manager over st.
func New(st Store) *Manager {
	return &Manager{st: st, cost: bcrypt.DefaultCost, now: time.Now, rules: DefaultPasswordRules}
}

// SetHashCost lowers the bcrypt cost; only tests should call it.
func (m *Manager) SetHashCost(c int) { m.cost = c }

// dummyHash is compared against when the user or token does not exist, so
// an unknown name costs as much time as a wrong password: it is made at the
// cost new passwords are hashed with (issue 20, finding 4: a MinCost dummy
// answered unknown names in 3 ms against 79 ms for known ones).
func (m *Manager) dummyHash() []byte {
	m.dummyMu.Lock()
	defer m.dummyMu.Unlock()
	if m.dummy == nil || m.dummyCost != m.cost {
		h, err := bcrypt.GenerateFromPassword([]byte(randomAlnum(20)), m.cost)
		if err != nil {
			panic(fmt.Errorf("dummy hash: %w", err)) // only for an invalid cost
		}
		m.dummy, m.dummyCost = h, m.cost
	}
	return m.dummy
}

func (m *Manager) hash(pass string) ([]byte, error) {
	if pass == "" || len(pass) > maxPassword {
		return nil, ErrBadPassword
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pass), m.cost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// Create adds a user. siteAdmin is stored as given: callers check who may
// grant what (admin-api.md §3.4 adduser).
func (m *Manager) Create(name, pass string, siteAdmin uint32) (User, error) {
	if !ValidName(name) {
		return User{}, ErrBadName
	}
	h, err := m.hash(pass)
	if err != nil {
		return User{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	id := UserID(name)
	if _, ok, err := m.st.User(id); err != nil {
		return User{}, fmt.Errorf("look up user: %w", err)
	} else if ok {
		return User{}, ErrExists
	}
	u := User{ID: id, Name: name, PasswordHash: h, SiteAdmin: siteAdmin, Links: map[string]uint32{}, Creation: m.now().Unix()}
	if err := m.st.PutUser(u); err != nil {
		return User{}, fmt.Errorf("store user: %w", err)
	}
	return u, nil
}

// SetPassword replaces a user's password.
func (m *Manager) SetPassword(id, pass string) error {
	h, err := m.hash(pass)
	if err != nil {
		return err
	}
	now := m.now().Unix()
	return m.update(normID(id), func(u *User) error { u.PasswordHash = h; u.PassChange = now; return nil })
}

// Get returns a user by id (or bare name).
func (m *Manager) Get(id string) (User, error) {
	u, ok, err := m.st.User(normID(id))
	if err != nil {
		return User{}, fmt.Errorf("look up user: %w", err)
	}
	if !ok {
		return User{}, ErrNotFound
	}
	return u, nil
}

// List returns all users sorted by id.
func (m *Manager) List() ([]User, error) {
	us, err := m.st.Users()
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	sort.Slice(us, func(i, j int) bool { return us[i].ID < us[j].ID })
	return us, nil
}

// Delete removes a user.
func (m *Manager) Delete(id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	id = normID(id)
	if _, ok, err := m.st.User(id); err != nil {
		return fmt.Errorf("look up user: %w", err)
	} else if !ok {
		return ErrNotFound
	}
	if err := m.st.DeleteUser(id); err != nil {
		return fmt.Errorf("delete user: %w", err)
	}
	return nil
}

// SetLink grants rights on a group or device id to a user; remove unlinks.
func (m *Manager) SetLink(userID, target string, rights uint32, remove bool) error {
	return m.update(normID(userID), func(u *User) error {
		if u.Links == nil {
			u.Links = map[string]uint32{}
		}
		if remove {
			delete(u.Links, target)
		} else {
			u.Links[target] = rights
		}
		return nil
	})
}

// RemoveLinksTo drops every user's link to target (a deleted group or device).
func (m *Manager) RemoveLinksTo(target string) error {
	us, err := m.List()
	if err != nil {
		return err
	}
	for _, u := range us {
		if _, ok := u.Links[target]; ok {
			if err := m.SetLink(u.ID, target, 0, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// Members returns the users linked to target with their rights, for the
// "links" field of group and device records.
func (m *Manager) Members(target string) (map[string]User, error) {
	us, err := m.List()
	if err != nil {
		return nil, err
	}
	out := map[string]User{}
	for _, u := range us {
		if _, ok := u.Links[target]; ok {
			out[u.ID] = u
		}
	}
	return out, nil
}

func (m *Manager) update(id string, f func(*User) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	u, ok, err := m.st.User(id)
	if err != nil {
		return fmt.Errorf("look up user: %w", err)
	}
	if !ok {
		return ErrNotFound
	}
	if err := f(&u); err != nil {
		return err
	}
	if err := m.st.PutUser(u); err != nil {
		return fmt.Errorf("store user: %w", err)
	}
	return nil
}

// Login is the result of a successful authentication.
type Login struct {
	User      User
	FromToken bool   // the credential was a login token (§1.6)
	TokenUser string // which token, when FromToken
}

// Authenticate checks a user name (or "~t:" token user) and password. Locked
// accounts fail exactly like wrong passwords (webserver.js authenticate).
func (m *Manager) Authenticate(name, pass string) (Login, error) {
	if strings.HasPrefix(name, TokenPrefix) {
		return m.authToken(name, pass)
	}
	u, ok, err := m.st.User(UserID(name))
	if err != nil {
		return Login{}, fmt.Errorf("look up user: %w", err)
	}
	if !ok || len(u.PasswordHash) == 0 {
		_ = bcrypt.CompareHashAndPassword(m.dummyHash(), []byte(pass))
		return Login{}, ErrInvalidLogin
	}
	if bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(pass)) != nil {
		return Login{}, ErrInvalidLogin
	}
	if u.SiteAdmin != SiteAdmin && u.SiteAdmin&SiteLocked != 0 {
		return Login{}, ErrInvalidLogin
	}
	return Login{User: u}, nil
}

func (m *Manager) authToken(name, pass string) (Login, error) {
	us, err := m.st.Users()
	if err != nil {
		return Login{}, fmt.Errorf("list users: %w", err)
	}
	nowMS := m.now().UnixMilli()
	for _, u := range us {
		for _, t := range u.LoginTokens {
			if subtle.ConstantTimeCompare([]byte(t.TokenUser), []byte(name)) != 1 {
				continue
			}
			// The hash is compared even for an expired token, so timing
			// does not tell an expired token from a wrong password.
			if bcrypt.CompareHashAndPassword(t.Hash, []byte(pass)) != nil || t.Expire != 0 && t.Expire < nowMS {
				return Login{}, ErrInvalidLogin
			}
			if u.SiteAdmin != SiteAdmin && u.SiteAdmin&SiteLocked != 0 {
				return Login{}, ErrInvalidLogin
			}
			return Login{User: u, FromToken: true, TokenUser: t.TokenUser}, nil
		}
	}
	_ = bcrypt.CompareHashAndPassword(m.dummyHash(), []byte(pass))
	return Login{}, ErrInvalidLogin
}

// NewToken is a freshly created login token; Pass is shown once and never stored.
type NewToken struct {
	Name      string
	TokenUser string
	Pass      string
	Created   int64 // ms
	Expire    int64 // ms, 0 = never
}

// CreateLoginToken adds a token to a user. expire is its lifetime, 0 = never.
func (m *Manager) CreateLoginToken(userID, name string, expire time.Duration) (NewToken, error) {
	now := m.now()
	nt := NewToken{Name: name, TokenUser: TokenPrefix + randomAlnum(16), Pass: randomAlnum(20), Created: now.UnixMilli()}
	if expire > 0 {
		nt.Expire = now.Add(expire).UnixMilli()
	}
	h, err := bcrypt.GenerateFromPassword([]byte(nt.Pass), m.cost)
	if err != nil {
		return NewToken{}, fmt.Errorf("hash token: %w", err)
	}
	err = m.update(normID(userID), func(u *User) error {
		u.LoginTokens = append(purgeExpired(u.LoginTokens, now.UnixMilli()),
			LoginToken{Name: name, TokenUser: nt.TokenUser, Hash: h, Created: nt.Created, Expire: nt.Expire})
		return nil
	})
	if err != nil {
		return NewToken{}, err
	}
	return nt, nil
}

// LoginTokens removes the named tokens (if any) and expired ones, and returns
// what is left.
func (m *Manager) LoginTokens(userID string, remove []string) ([]LoginToken, error) {
	var left []LoginToken
	err := m.update(normID(userID), func(u *User) error {
		kept := purgeExpired(u.LoginTokens, m.now().UnixMilli())
		left = kept[:0:0]
		for _, t := range kept {
			drop := false
			for _, r := range remove {
				if r == t.TokenUser {
					drop = true
				}
			}
			if !drop {
				left = append(left, t)
			}
		}
		u.LoginTokens = left
		return nil
	})
	return left, err
}

func purgeExpired(ts []LoginToken, nowMS int64) []LoginToken {
	out := ts[:0:0]
	for _, t := range ts {
		if t.Expire == 0 || t.Expire >= nowMS {
			out = append(out, t)
		}
	}
	return out
}

// EnsureAdmin creates the first account when there are no users at all: a
// full site admin named "admin" with a random password, returned once so the
// caller can print it. It never uses a default password.
func (m *Manager) EnsureAdmin() (name, pass string, created bool, err error) {
	us, err := m.st.Users()
	if err != nil {
		return "", "", false, fmt.Errorf("list users: %w", err)
	}
	if len(us) > 0 {
		return "", "", false, nil
	}
	pass = randomAlnum(20)
	if _, err := m.Create("admin", pass, SiteAdmin); err != nil {
		return "", "", false, err
	}
	return "admin", pass, true, nil
}

// normID accepts a full user id or a bare name.
func normID(id string) string {
	if strings.HasPrefix(id, "user/") {
		return strings.ToLower(id)
	}
	return UserID(id)
}

// randomAlnum returns n random characters from [A-Za-z0-9], safe in URLs,
// shells and MeshCentral's token-name rules.
func randomAlnum(n int) string {
	var out strings.Builder
	buf := make([]byte, 3*n)
	for out.Len() < n {
		if _, err := rand.Read(buf); err != nil {
			panic(fmt.Errorf("crypto/rand: %w", err))
		}
		for _, c := range base64.StdEncoding.EncodeToString(buf) {
			if c != '+' && c != '/' && c != '=' && out.Len() < n {
				out.WriteRune(c)
			}
		}
	}
	return out.String()
}

// Rights is a user's effective rights on a device or group.
type Rights struct {
	Bits    uint32
	Visible bool // at least one link exists, even with rights 0
}

// Has reports whether all of bits are held (full rights hold everything).
func (r Rights) Has(bits uint32) bool { return r.Bits == FullRights || r.Bits&bits == bits }

// EffectiveRights computes a user's rights on a device in group meshID
// (nodeID may be empty for group rights), as webserver.js GetNodeRights does
// without user groups: an exact full-rights link wins at once, otherwise the
// device and group links are ORed. Site admin status adds nothing.
func EffectiveRights(u User, meshID, nodeID string) Rights {
	var r Rights
	for _, id := range []string{nodeID, meshID} {
		if id == "" {
			continue
		}
		bits, ok := u.Links[id]
		if !ok {
			continue
		}
		r.Visible = true
		if bits == FullRights {
			return Rights{Bits: FullRights, Visible: true}
		}
		r.Bits |= bits
	}
	return r
}

// TokenValid reports whether u still holds the login token tokenUser,
// unexpired at now: sessions and cookies made from a token end with it.
func TokenValid(u User, tokenUser string, now time.Time) bool {
	for _, t := range u.LoginTokens {
		if t.TokenUser == tokenUser {
			return t.Expire == 0 || t.Expire >= now.UnixMilli()
		}
	}
	return false
}

// Update applies f to the stored user under the Manager's write lock and
// stores the result: the API's account edits (rights, lock, names).
func (m *Manager) Update(id string, f func(*User) error) error { return m.update(normID(id), f) }

// ErrNameTaken is returned by CreateExternal when no free name was found.
var ErrNameTaken = errors.New("no free user name")

// FindExternal returns the account linked to an external identity
// ("<issuer> <subject>", User.External).
func (m *Manager) FindExternal(external string) (User, bool, error) {
	us, err := m.st.Users()
	if err != nil {
		return User{}, false, fmt.Errorf("list users: %w", err)
	}
	for _, u := range us {
		if external != "" && u.External == external {
			return u, true, nil
		}
	}
	return User{}, false, nil
}

// CreateExternal creates an account for an external identity (an OpenID
// Connect sign-in): no password, no rights (an administrator grants
// them), named name or, when that is taken, name-<suffix> (suffix from the
// identity, so the same person gets the same name). An existing account
// is never taken over by an external identity that shares its name.
func (m *Manager) CreateExternal(name, external, email, realname string, suffix string) (User, error) {
	if external == "" {
		return User{}, errors.New("create external account: no identity")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, cand := range []string{name, name + "-" + suffix} {
		if !ValidName(cand) {
			continue
		}
		id := UserID(cand)
		if _, ok, err := m.st.User(id); err != nil {
			return User{}, fmt.Errorf("look up user: %w", err)
		} else if ok {
			continue
		}
		u := User{ID: id, Name: cand, Links: map[string]uint32{}, Creation: m.now().Unix(), External: external, Email: email, RealName: realname}
		if err := m.st.PutUser(u); err != nil {
			return User{}, fmt.Errorf("store user: %w", err)
		}
		return u, nil
	}
	return User{}, ErrNameTaken
}
