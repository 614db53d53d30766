package adminapi

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// encodeTestCookie builds a cookie the way MeshCentral's tools do (our own
// encoder, from the format in admin-api.md §1.5).
func encodeTestCookie(t testing.TB, key []byte, o map[string]any) string {
	b, _ := json.Marshal(o)
	block, _ := aes.NewCipher(key[:32])
	gcm, _ := cipher.NewGCM(block)
	iv := make([]byte, 12)
	rand.Read(iv)
	sealed := gcm.Seal(nil, iv, b, nil) // ciphertext ‖ tag
	ct, tag := sealed[:len(sealed)-16], sealed[len(sealed)-16:]
	raw := append(append(append([]byte(nil), iv...), tag...), ct...)
	return strings.NewReplacer("+", "@", "/", "$").Replace(base64.StdEncoding.EncodeToString(raw))
}

func TestDecodeLoginCookie(t *testing.T) {
	key := make([]byte, loginKeyLen)
	rand.Read(key)
	other := make([]byte, loginKeyLen)
	rand.Read(other)
	now := time.Unix(1_800_000_000, 0)
	sec := func(d time.Duration) int64 { return now.Add(d).Unix() }
	for _, tc := range []struct {
		name string
		key  []byte
		o    map[string]any
		want string
	}{
		{"meshctrl form", key, map[string]any{"userid": "user//admin", "domainid": "", "time": sec(0)}, "user//admin"},
		{"upper case name", key, map[string]any{"userid": "user//Admin", "domainid": "", "time": sec(0)}, "user//admin"},
		{"login token form", key, map[string]any{"u": "user//bob", "a": 3, "time": sec(-time.Minute)}, "user//bob"},
		{"wrong key", other, map[string]any{"userid": "user//admin", "time": sec(0)}, ""},
		{"expired", key, map[string]any{"userid": "user//admin", "time": sec(-61 * time.Minute)}, ""},
		{"longer expire", key, map[string]any{"userid": "user//admin", "time": sec(-61 * time.Minute), "expire": 120}, "user//admin"},
		{"from the future", key, map[string]any{"userid": "user//admin", "time": sec(time.Minute)}, ""},
		{"small skew ok", key, map[string]any{"userid": "user//admin", "time": sec(20 * time.Second)}, "user//admin"},
		{"other domain", key, map[string]any{"userid": "user/x/admin", "domainid": "x", "time": sec(0)}, ""},
		{"no time", key, map[string]any{"userid": "user//admin"}, ""},
		{"not a user", key, map[string]any{"userid": "node//x", "time": sec(0)}, ""},
		{"a != 3", key, map[string]any{"u": "user//bob", "a": 2, "time": sec(0)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := encodeTestCookie(t, tc.key, tc.o)
			got, ok := decodeLoginCookie(key, c, now)
			if got != tc.want || ok != (tc.want != "") {
				t.Fatalf("got %q %v, want %q", got, ok, tc.want)
			}
		})
	}
	c := encodeTestCookie(t, key, map[string]any{"userid": "user//admin", "time": sec(0)})
	tampered := []byte(c)
	tampered[30] ^= 1
	if _, ok := decodeLoginCookie(key, string(tampered), now); ok {
		t.Fatal("tampered cookie accepted")
	}
	if _, ok := decodeLoginCookie(nil, c, now); ok {
		t.Fatal("accepted without a key")
	}
}

func FuzzDecodeLoginCookie(f *testing.F) {
	key := make([]byte, loginKeyLen)
	now := time.Unix(1_800_000_000, 0)
	f.Add(encodeTestCookie(f, key, map[string]any{"userid": "user//admin", "time": now.Unix()}))
	f.Add("@@@@$$$$====")
	f.Fuzz(func(t *testing.T, s string) {
		if id, ok := decodeLoginCookie(key, s, now); ok && !strings.HasPrefix(id, "user//") {
			t.Fatalf("accepted %q as %q", s, id)
		}
	})
}

// TestMeshctrlLoginKey: meshctrl --loginkey logs in with the server's key,
// and a wrong key gets meshctrl's login-key error.
func TestMeshctrlLoginKey(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	key := e.api.cfg.LoginKey
	run := func(k string) string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, _ := exec.CommandContext(ctx, "node", meshctrlPath(t), "userinfo", "--json", "--url", e.url, "--loginuser", "admin", "--loginkey", k).CombinedOutput()
		return string(out)
	}
	var ui map[string]any
	e.mustJSON(run(hex.EncodeToString(key)), &ui)
	if ui["_id"] != "user//admin" {
		t.Fatalf("userinfo %v", ui)
	}
	bad := make([]byte, loginKeyLen)
	rand.Read(bad)
	bad[0] = 0xff // minimist would read an all-digit key as a number
	if out := strings.TrimSpace(run(hex.EncodeToString(bad))); !strings.HasPrefix(out, "Invalid login, check the login key") {
		t.Fatalf("wrong key: %q", out)
	}
}
