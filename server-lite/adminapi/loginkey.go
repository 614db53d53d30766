package adminapi

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/meshgo/meshagent/server-lite/store"
)

// The login key lets meshctrl log in without a password (--loginkey,
// --loginkeyfile): meshctrl encrypts {userid, domainid, time} with it in
// MeshCentral's cookie format (admin-api.md §1.5) and sends it as ?auth=.
// Whoever holds the key can log in as any user, so it never travels over
// the API: it is written once to a 0600 file in the data directory.
const (
	loginKeyMeta = "adminapi.loginkey"
	loginKeyLen  = 80 // MeshCentral's size; only the first 32 bytes key AES-256-GCM
	// LoginKeyFile is the key's file name in the data directory, in hex as
	// meshctrl --loginkeyfile reads it.
	LoginKeyFile = "loginkey.txt"
)

// LoadOrCreateLoginKey returns the server's login key, creating it (and its
// file in dataDir) on first use.
func LoadOrCreateLoginKey(st *store.Store, dataDir string) ([]byte, error) {
	k, err := st.Meta(loginKeyMeta)
	if err != nil {
		return nil, fmt.Errorf("read login key: %w", err)
	}
	if len(k) == loginKeyLen {
		return k, nil
	}
	k = make([]byte, loginKeyLen)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("login key: %w", err)
	}
	if err := st.SetMeta(loginKeyMeta, k); err != nil {
		return nil, fmt.Errorf("store login key: %w", err)
	}
	if dataDir != "" {
		path := dataDir + string(os.PathSeparator) + LoginKeyFile
		if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write login key file: %w", err)
		}
	}
	return k, nil
}

// Cookie lifetime and tolerated clock skew (meshcentral.js decodeCookie).
const (
	loginCookieLife = 60 * time.Minute
	loginCookieSkew = 30 * time.Second
)

// decodeLoginCookie opens a MeshCentral-format cookie: base64 with "@" for
// "+" and "$" for "/" of IV(12) ‖ tag(16) ‖ ciphertext, AES-256-GCM, JSON
// inside with "time" in seconds. It returns the user id it names in the
// default domain, or ok=false for anything else.
func decodeLoginCookie(key []byte, s string, now time.Time) (userID string, ok bool) {
	if len(key) < 32 || len(s) < 40 || len(s) > 4096 {
		return "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.NewReplacer("@", "+", "$", "/").Replace(s))
	if err != nil || len(raw) < 12+16+2 {
		return "", false
	}
	block, err := aes.NewCipher(key[:32])
	if err != nil {
		return "", false
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		return "", false
	}
	iv, tag, ct := raw[:12], raw[12:28], raw[28:]
	plain, err := gcm.Open(nil, iv, append(append([]byte(nil), ct...), tag...), nil)
	if err != nil {
		return "", false
	}
	var c struct {
		UserID   *string  `json:"userid"`
		DomainID *string  `json:"domainid"`
		U        *string  `json:"u"`
		A        *float64 `json:"a"`
		Time     *float64 `json:"time"`
		Expire   *float64 `json:"expire"`
	}
	if json.Unmarshal(plain, &c) != nil || c.Time == nil {
		return "", false
	}
	created := time.Unix(int64(*c.Time), 0)
	life := loginCookieLife
	if c.Expire != nil && *c.Expire > 0 && *c.Expire < 60*24*366 {
		life = time.Duration(*c.Expire) * time.Minute
	}
	if created.After(now.Add(loginCookieSkew)) || now.After(created.Add(life)) {
		return "", false
	}
	switch {
	case c.UserID != nil && (c.DomainID == nil || *c.DomainID == ""):
		userID = *c.UserID
	case c.U != nil && c.A != nil && *c.A == 3:
		userID = *c.U
	default:
		return "", false
	}
	// Default domain only: "user//name".
	if !strings.HasPrefix(userID, "user//") || strings.Count(userID, "/") != 2 || len(userID) == len("user//") {
		return "", false
	}
	return strings.ToLower(userID), true
}
