package notify

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
)

// bucketPrefs holds each user's messaging settings by user id. They live
// apart from the user record so that the accounts package owns that one.
const bucketPrefs = "notifyuser"

// Event bits of a subscription. Connect and disconnect are MeshCentral's
// messaging bits (changemeshnotify/changeusernotify "notify": 128, 256);
// the others are server-lite's own.
const (
	NotifyConnect    uint32 = 128
	NotifyDisconnect uint32 = 256
	NotifyAgentError uint32 = 1 << 16
	NotifyCoreCrash  uint32 = 1 << 17
	// NotifyOffline is set when OfflineMinutes > 0.
	NotifyOffline uint32 = 1 << 18
	notifyAll            = NotifyConnect | NotifyDisconnect | NotifyAgentError | NotifyCoreCrash | NotifyOffline
)

// Sub is a subscription to one group's or one device's events.
type Sub struct {
	Events uint32 `json:"events"`
	// OfflineMinutes > 0: notify when the device stays offline this long.
	OfflineMinutes int `json:"offlineMinutes,omitempty"`
}

// Prefs are one user's messaging settings.
type Prefs struct {
	// Owner is the account's creation time (accounts.User.Creation): a
	// user deleted and created again under the same name does not inherit
	// the old one's handle or subscriptions.
	Owner  int64           `json:"owner"`
	Handle string          `json:"handle,omitempty"` // verified
	Subs   map[string]Sub  `json:"subs,omitempty"`   // "mesh//…" or "node//…"
	Muted  map[string]bool `json:"muted,omitempty"`  // node ids
}

func (n *Notifier) loadPrefs() error {
	return n.cfg.Store.Records(bucketPrefs, func(k string, v []byte) error {
		var p Prefs
		if err := json.Unmarshal(v, &p); err != nil {
			n.log.Warn("messaging settings unreadable; ignored", "user", k, "err", err)
			return nil
		}
		n.prefs[k] = &p
		return nil
	})
}

// update changes one user's settings and stores them.
func (n *Notifier) update(userID string, f func(p *Prefs) error) error {
	u, err := n.cfg.Accounts.Get(userID)
	if err != nil {
		return fmt.Errorf("notify: user %s: %w", userID, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.prefs[userID]
	cp := Prefs{Owner: u.Creation}
	if p != nil && p.Owner == u.Creation {
		b, _ := json.Marshal(p)
		json.Unmarshal(b, &cp)
	}
	if err := f(&cp); err != nil {
		return err
	}
	b, err := json.Marshal(&cp)
	if err != nil {
		return err
	}
	if err := n.cfg.Store.PutRecord(bucketPrefs, userID, b); err != nil {
		return fmt.Errorf("notify: store settings: %w", err)
	}
	n.prefs[userID] = &cp
	return nil
}

// current returns the user's settings if they belong to the account that
// exists now (see Prefs.Owner); nil otherwise. Call without n.mu.
func (n *Notifier) current(userID string) *Prefs {
	u, err := n.cfg.Accounts.Get(userID)
	if err != nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.prefs[userID]; p != nil && p.Owner == u.Creation {
		return p
	}
	return nil
}

// Handle is the user's verified handle, "" if none.
func (n *Notifier) Handle(userID string) string {
	if p := n.current(userID); p != nil {
		n.mu.Lock()
		defer n.mu.Unlock()
		return p.Handle
	}
	return ""
}

// UserPrefs returns a copy of a user's settings.
func (n *Notifier) UserPrefs(userID string) Prefs {
	p := n.current(userID)
	n.mu.Lock()
	defer n.mu.Unlock()
	var cp Prefs
	if p != nil {
		b, _ := json.Marshal(p)
		json.Unmarshal(b, &cp)
	}
	return cp
}

// RemoveHandle forgets the user's handle (MeshCentral's removeMessaging).
func (n *Notifier) RemoveHandle(userID string) error {
	return n.update(userID, func(p *Prefs) error { p.Handle = ""; return nil })
}

// ForgetUser removes a deleted user's settings.
func (n *Notifier) ForgetUser(userID string) {
	n.mu.Lock()
	delete(n.prefs, userID)
	n.mu.Unlock()
	n.cfg.Store.DeleteRecord(bucketPrefs, userID)
}

// SetSub sets (events 0: removes) the user's subscription to target.
func (n *Notifier) SetSub(userID, target string, events uint32, offlineMinutes int) error {
	if !strings.HasPrefix(target, "mesh//") && !strings.HasPrefix(target, "node//") {
		return errors.New("target: a group (mesh//…) or a device (node//…)")
	}
	if offlineMinutes < 0 || offlineMinutes > 60*24*365 {
		return errors.New("offline minutes: 0 to 525600")
	}
	events &= notifyAll
	if offlineMinutes > 0 {
		events |= NotifyOffline
	} else {
		events &^= NotifyOffline
	}
	return n.update(userID, func(p *Prefs) error {
		if events == 0 {
			delete(p.Subs, target)
			return nil
		}
		if p.Subs == nil {
			p.Subs = map[string]Sub{}
		}
		if len(p.Subs) >= 10000 {
			return errors.New("too many subscriptions")
		}
		p.Subs[target] = Sub{Events: events, OfflineMinutes: offlineMinutes}
		return nil
	})
}

// Mute silences (or unsilences) one device for the user, whatever the
// subscriptions say.
func (n *Notifier) Mute(userID, nodeID string, muted bool) error {
	if !strings.HasPrefix(nodeID, "node//") {
		return errors.New("a device id (node//…)")
	}
	return n.update(userID, func(p *Prefs) error {
		if !muted {
			delete(p.Muted, nodeID)
			return nil
		}
		if p.Muted == nil {
			p.Muted = map[string]bool{}
		}
		p.Muted[nodeID] = true
		return nil
	})
}

// pendingCode is a 6-digit code sent and not yet confirmed.
type pendingCode struct {
	code, handle, session, user string
	expires                     time.Time
	tries                       int
	busy                        bool
}

// codeLife is how long a code sent for verification or login is valid.
const codeLife = 10 * time.Minute

// maxTries wrong codes end a verification or login code.
const maxTries = 3

func sixDigits() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%06d", binary.BigEndian.Uint32(b[:])%1000000)
}

// StartVerify sends a 6-digit code to handle and returns the cookie that
// names this verification; only the same session (sessionID) may confirm
// it, as in MeshCentral (meshuser.js verifyMessaging).
func (n *Notifier) StartVerify(sessionID, userID, handle string) (cookie string, err error) {
	h, err := ParseHandle(handle)
	if err != nil {
		return "", err
	}
	code, cookie := sixDigits(), randomHex(16)
	if _, err := n.Enqueue("verify:"+cookie, userID, h.String(), "server-lite: verification code",
		"Your server-lite verification code is "+code+". It is valid for 10 minutes."); err != nil {
		return "", err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expireLocked()
	n.verify[cookie] = &pendingCode{code: code, handle: h.String(), session: sessionID, user: userID, expires: time.Now().Add(codeLife)}
	return cookie, nil
}

// ErrBadCode: the code is wrong, expired, used up or for another session.
var ErrBadCode = errors.New("invalid or expired code")

// ErrBusy: a guess for this code is already being checked.
var ErrBusy = errors.New("a code check is already in progress")

// ConfirmVerify checks a code against the cookie and, when it matches,
// stores the handle as the user's. wrongDelay runs (unlocked) before a
// wrong answer is final, so guesses are slow and one at a time.
func (n *Notifier) ConfirmVerify(sessionID, userID, cookie, code string, wrongDelay func()) (string, error) {
	n.mu.Lock()
	p := n.verify[cookie]
	if p == nil || p.session != sessionID || p.user != userID || time.Now().After(p.expires) {
		n.mu.Unlock()
		return "", ErrBadCode
	}
	if p.busy {
		n.mu.Unlock()
		return "", ErrBusy
	}
	if subtle.ConstantTimeCompare([]byte(p.code), []byte(code)) != 1 {
		p.busy = true
		n.mu.Unlock()
		if wrongDelay != nil {
			wrongDelay()
		}
		n.mu.Lock()
		p.busy = false
		p.tries++
		if p.tries >= maxTries {
			delete(n.verify, cookie)
		}
		n.mu.Unlock()
		return "", ErrBadCode
	}
	delete(n.verify, cookie)
	n.mu.Unlock()
	err := n.update(userID, func(pr *Prefs) error { pr.Handle = p.handle; return nil })
	return p.handle, err
}

func (n *Notifier) expireLocked() {
	now := time.Now()
	for k, p := range n.verify {
		if now.After(p.expires) {
			delete(n.verify, k)
		}
	}
	for k, p := range n.login {
		if now.After(p.expires) {
			delete(n.login, k)
		}
	}
}

// NeedsLoginCode reports whether the user must give a messaged code at login.
func (n *Notifier) NeedsLoginCode(userID string) bool {
	return n.Msg2Factor() && n.Handle(userID) != ""
}

// SendLoginCode sends a fresh login code to the user's handle (replacing
// an older one).
func (n *Notifier) SendLoginCode(userID string) error {
	h := n.Handle(userID)
	if h == "" {
		return errors.New("no verified messaging handle")
	}
	code := sixDigits()
	key := "login:" + randomHex(12)
	if _, err := n.Enqueue(key, userID, h, "server-lite: login code", "Your server-lite login code is "+code+". It is valid for 10 minutes."); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.expireLocked()
	n.login[userID] = &pendingCode{code: code, handle: h, user: userID, expires: time.Now().Add(codeLife)}
	return nil
}

// CheckLoginCode consumes the user's login code if code matches; a code
// is good once, and maxTries wrong guesses void it.
func (n *Notifier) CheckLoginCode(userID, code string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.login[userID]
	if p == nil || time.Now().After(p.expires) {
		return false
	}
	code = accounts.Code(code, len(p.code)) // meshctrl drops leading zeros
	if subtle.ConstantTimeCompare([]byte(p.code), []byte(code)) == 1 {
		delete(n.login, userID)
		return true
	}
	if p.tries++; p.tries >= maxTries {
		delete(n.login, userID)
	}
	return false
}
