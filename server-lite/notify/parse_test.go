package notify

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseHandle(t *testing.T) {
	for _, c := range []struct {
		in string
		ok bool
	}{
		{"telegram:123456", true},
		{"telegram:-1001234567890", true},
		{"telegram:@my_channel", true},
		{"telegram:@ab", false},
		{"telegram:12ab", false},
		{"telegram:", false},
		{"ntfy:alerts-1", true},
		{"ntfy:a/b", false},
		{"ntfy:" + strings.Repeat("a", 65), false},
		{"email:alice@example.org", true},
		{"email:Alice <alice@example.org>", false},
		{"email:alice@example.org\r\nBcc: x@y.z", false},
		{"email:not-an-address", false},
		{"webhook:ops team", true},
		{"webhook:a\x00b", false},
		{"sms:+123", false},
		{"nocolon", false},
	} {
		h, err := ParseHandle(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseHandle(%q) = %v, %v; want ok %v", c.in, h, err, c.ok)
		}
		if err == nil && h.String() != c.in {
			t.Errorf("ParseHandle(%q).String() = %q", c.in, h.String())
		}
		if err != nil && !errors.Is(err, ErrHandle) {
			t.Errorf("error %v does not wrap ErrHandle", err)
		}
	}
}

func FuzzParseHandle(f *testing.F) {
	for _, s := range []string{"telegram:123", "telegram:@chan_nel", "ntfy:t", "email:a@b.c", "webhook:x", "email:\"a b\"@c.d", ":", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseHandle(s)
		if err != nil {
			return
		}
		// A handle that parses is what was given, has no control
		// characters (no header or URL injection) and parses again.
		if h.String() != s || !utf8.ValidString(s) || strings.ContainsAny(h.Addr, "\r\n\x00") {
			t.Fatalf("ParseHandle(%q) = %+v", s, h)
		}
		if h.Service == Ntfy && strings.ContainsAny(h.Addr, "/?#") {
			t.Fatalf("ntfy topic %q would change the URL", h.Addr)
		}
		if _, err := ParseHandle(h.String()); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzTelegramAnswer(f *testing.F) {
	f.Add(200, []byte(`{"ok":true,"result":{"message_id":1}}`))
	f.Add(429, []byte(`{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}`))
	f.Add(400, []byte(`{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}`))
	f.Add(502, []byte(`<html>bad gateway</html>`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		err := parseTelegramAnswer(status, body)
		if err == nil && status != http.StatusOK {
			t.Fatalf("status %d accepted", status)
		}
		var ra *retryAfter
		if errors.As(err, &ra) && ra.after <= 0 {
			t.Fatalf("retry after %v", ra.after)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Fatalf("unbounded error: %d bytes", len(err.Error()))
		}
	})
}

func FuzzNtfyAnswer(f *testing.F) {
	f.Add(200, []byte(`{"id":"abc","time":1,"event":"message","topic":"t"}`))
	f.Add(403, []byte(`{"code":40301,"http":403,"error":"forbidden"}`))
	f.Add(429, []byte(`{"code":42901,"http":429,"error":"limit reached"}`))
	f.Add(200, []byte(`not json`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		h := http.Header{"Retry-After": {"3"}}
		err := parseNtfyAnswer(status, h, body)
		if err == nil && status != http.StatusOK {
			t.Fatalf("status %d accepted", status)
		}
		if err != nil && len(err.Error()) > 400 {
			t.Fatalf("unbounded error: %d bytes", len(err.Error()))
		}
	})
}

// batchText never exceeds MaxText, whatever the lines.
func TestBatchTextBound(t *testing.T) {
	for _, n := range []int{0, 1, 10, 100, 1000} {
		var notes []note
		for i := range n {
			notes = append(notes, note{line: strings.Repeat("x", i%300)})
		}
		if l := len([]rune(batchText(notes))); l > MaxText {
			t.Fatalf("%d notes: %d characters", n, l)
		}
	}
}
