// Package notifytest gives tests loopback receivers for server-lite's
// messaging providers: HTTP servers that speak the Telegram Bot API's and
// ntfy's request and answer shapes (their real services cannot be reached
// from tests: the only stand-ins allowed), a webhook receiver that checks
// the HMAC signature, and a real MTA (Debian's exim4) on a loopback port
// with STARTTLS and AUTH, delivering to a mailbox file.
package notifytest

import (
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/notify"
)

// Msg is one message a receiver accepted.
type Msg struct {
	To, Text, ID string
	At           time.Time
}

// Receiver collects accepted messages.
type Receiver struct {
	*httptest.Server
	mu   sync.Mutex
	msgs []Msg
	// Fail, when > 0, makes the next Fail requests fail (HTTP 500 for
	// ntfy and the webhook, an error answer for Telegram).
	fail int
	// Hang makes every request wait until the test ends.
	hang chan struct{}
	got  chan struct{}
	// Requests counts every request, failed ones included.
	requests int
}

func newReceiver(t testing.TB) *Receiver {
	return &Receiver{got: make(chan struct{}, 1024)}
}

// FailNext makes the next n requests fail.
func (r *Receiver) FailNext(n int) { r.mu.Lock(); r.fail = n; r.mu.Unlock() }

// Hang makes every request block until Unhang or the test's end.
func (r *Receiver) Hang() {
	r.mu.Lock()
	r.hang = make(chan struct{})
	r.mu.Unlock()
}

// Unhang releases hanging requests.
func (r *Receiver) Unhang() {
	r.mu.Lock()
	if r.hang != nil {
		close(r.hang)
		r.hang = nil
	}
	r.mu.Unlock()
}

// Requests is how many requests arrived.
func (r *Receiver) Requests() int { r.mu.Lock(); defer r.mu.Unlock(); return r.requests }

// Msgs returns what was accepted so far.
func (r *Receiver) Msgs() []Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Msg(nil), r.msgs...)
}

// Wait waits until n messages were accepted, or fails the test.
func (r *Receiver) Wait(t testing.TB, n int, timeout time.Duration) []Msg {
	t.Helper()
	end := time.Now().Add(timeout)
	for {
		if m := r.Msgs(); len(m) >= n {
			return m
		}
		if time.Now().After(end) {
			t.Fatalf("notifytest: %d messages after %v, want %d: %+v", len(r.Msgs()), timeout, n, r.Msgs())
		}
		select {
		case <-r.got:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pre runs before each request: counts, hangs, decides failure.
func (r *Receiver) pre(req *http.Request) (fail bool) {
	r.mu.Lock()
	r.requests++
	h := r.hang
	if r.fail > 0 {
		r.fail--
		fail = true
	}
	r.mu.Unlock()
	if h != nil {
		select {
		case <-h:
		case <-req.Context().Done():
		}
	}
	return fail
}

func (r *Receiver) accept(m Msg) {
	m.At = time.Now()
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	select {
	case r.got <- struct{}{}:
	default:
	}
}

func start(t testing.TB, r *Receiver, h http.HandlerFunc) *Receiver {
	r.Server = httptest.NewServer(h)
	t.Cleanup(func() { r.Unhang(); r.Server.Close() })
	return r
}

// Telegram is a Bot API receiver for token: POST /bot<token>/sendMessage
// with JSON {chat_id, text}, answered {"ok":true,"result":{…}} or, when
// failing, {"ok":false,"error_code":…,"description":…}. A request for
// another token is answered 401 as the API does.
func Telegram(t testing.TB, token string) *Receiver {
	r := newReceiver(t)
	var seq int
	return start(t, r, func(w http.ResponseWriter, req *http.Request) {
		fail := r.pre(req)
		w.Header().Set("Content-Type", "application/json")
		if req.Method != http.MethodPost || req.URL.Path != "/bot"+token+"/sendMessage" {
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"ok":false,"error_code":401,"description":"Unauthorized"}`)
			return
		}
		var body struct {
			ChatID any    `json:"chat_id"`
			Text   string `json:"text"`
		}
		if req.Header.Get("Content-Type") != "application/json" || json.NewDecoder(req.Body).Decode(&body) != nil || body.Text == "" {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"ok":false,"error_code":400,"description":"Bad Request: message text is empty"}`)
			return
		}
		if fail {
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 1","parameters":{"retry_after":1}}`)
			return
		}
		seq++
		r.accept(Msg{To: fmt.Sprint(body.ChatID), Text: body.Text})
		fmt.Fprintf(w, `{"ok":true,"result":{"message_id":%d,"chat":{"id":%q,"type":"private"},"date":%d,"text":%q}}`, seq, fmt.Sprint(body.ChatID), time.Now().Unix(), body.Text)
	})
}

// Ntfy is an ntfy server: POST /<topic> with the message as the body,
// answered with the message object ntfy returns, or its error object.
func Ntfy(t testing.TB) *Receiver {
	r := newReceiver(t)
	var seq int
	return start(t, r, func(w http.ResponseWriter, req *http.Request) {
		fail := r.pre(req)
		w.Header().Set("Content-Type", "application/json")
		topic := strings.TrimPrefix(req.URL.Path, "/")
		if req.Method != http.MethodPost && req.Method != http.MethodPut || topic == "" || strings.Contains(topic, "/") {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"code":40401,"http":404,"error":"page not found"}`)
			return
		}
		b, _ := io.ReadAll(req.Body)
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `{"code":50001,"http":500,"error":"internal server error"}`)
			return
		}
		seq++
		r.accept(Msg{To: topic, Text: string(b), ID: req.Header.Get("Title")})
		fmt.Fprintf(w, `{"id":"m%06d","time":%d,"expires":%d,"event":"message","topic":%q,"message":%q}`+"\n", seq, time.Now().Unix(), time.Now().Add(12*time.Hour).Unix(), topic, string(b))
	})
}

// Webhook is a receiver that verifies notify.SignatureHeader under secret
// and answers 401 to a bad signature (counted in BadSignatures).
func Webhook(t testing.TB, secret string) *WebhookReceiver {
	w := &WebhookReceiver{Receiver: newReceiver(t)}
	start(t, w.Receiver, func(rw http.ResponseWriter, req *http.Request) {
		fail := w.pre(req)
		b, _ := io.ReadAll(req.Body)
		want := notify.Sign([]byte(secret), b)
		if !hmac.Equal([]byte(req.Header.Get(notify.SignatureHeader)), []byte(want)) {
			w.mu.Lock()
			w.bad++
			w.mu.Unlock()
			http.Error(rw, "bad signature", http.StatusUnauthorized)
			return
		}
		var body notify.WebhookBody
		if err := json.Unmarshal(b, &body); err != nil || body.ID != req.Header.Get(notify.DeliveryHeader) {
			http.Error(rw, "bad body", http.StatusBadRequest)
			return
		}
		if fail {
			http.Error(rw, "try later", http.StatusServiceUnavailable)
			return
		}
		w.accept(Msg{To: body.To, Text: body.Text, ID: body.ID})
		rw.WriteHeader(http.StatusNoContent)
	})
	return w
}

// WebhookReceiver is Webhook's receiver.
type WebhookReceiver struct {
	*Receiver
	bad int
}

// BadSignatures counts requests refused for their signature.
func (w *WebhookReceiver) BadSignatures() int { w.mu.Lock(); defer w.mu.Unlock(); return w.bad }
