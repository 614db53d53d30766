package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/smtp"
	"net/textproto"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// message is one delivery: who (the handle's address), what, and the
// idempotency key that identifies it across retries (sent along where the
// provider has a place for it, so a receiver can drop a repeat).
type message struct {
	Key     string
	Addr    string
	Subject string
	Text    string
}

// provider delivers messages of one service. Send must honour ctx (the
// dispatcher's per-attempt timeout) and never put a secret in its error.
type provider interface {
	Send(ctx context.Context, m message) error
}

// retryAfter is an error a provider returns when the service asked to slow
// down (HTTP 429, Telegram's parameters.retry_after): the next attempt
// waits at least that long.
type retryAfter struct {
	after time.Duration
	err   error
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// permanent marks an error that retrying cannot fix (a chat that does not
// exist, a refused address): the message is dropped at once.
type permanent struct{ err error }

func (p *permanent) Error() string { return p.err.Error() }
func (p *permanent) Unwrap() error { return p.err }

// TelegramConfig is the Telegram Bot API provider.
type TelegramConfig struct {
	// Token is the bot token from @BotFather; TokenFile reads it from a file
	// that must be owner-only (0600). A secret: never logged.
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"tokenFile,omitempty"`
	// APIURL is the Bot API base (default https://api.telegram.org).
	APIURL string `json:"apiURL,omitempty"`
}

// NtfyConfig is the ntfy provider: a self-hosted server or the public one.
type NtfyConfig struct {
	URL       string `json:"url,omitempty"` // e.g. https://ntfy.sh
	Token     string `json:"token,omitempty"`
	TokenFile string `json:"tokenFile,omitempty"`
}

// SMTPConfig is e-mail over SMTP.
type SMTPConfig struct {
	Host string `json:"host,omitempty"`
	Port int    `json:"port,omitempty"` // default 587 (465 with tls "implicit")
	From string `json:"from,omitempty"`
	User string `json:"user,omitempty"`
	// Password (or PasswordFile, owner-only) for AUTH PLAIN, only ever sent
	// over TLS. A secret: never logged.
	Password     string `json:"password,omitempty"`
	PasswordFile string `json:"passwordFile,omitempty"`
	// TLS: "starttls" (default: refuse a server that does not offer it),
	// "implicit" (TLS from the first byte), "none" (plain, no AUTH).
	TLS string `json:"tls,omitempty"`
	// CAFile adds PEM roots for the server's certificate (a private CA).
	CAFile string `json:"caFile,omitempty"`
}

// WebhookConfig is a generic JSON POST, signed with HMAC-SHA256.
type WebhookConfig struct {
	URL        string `json:"url,omitempty"`
	Secret     string `json:"secret,omitempty"`
	SecretFile string `json:"secretFile,omitempty"`
}

// SignatureHeader carries the webhook signature: "sha256=" and the hex
// HMAC-SHA256 of the raw body under the shared secret. DeliveryHeader
// carries the idempotency key (also "id" in the body).
const (
	SignatureHeader = "X-ServerLite-Signature-256"
	DeliveryHeader  = "X-ServerLite-Delivery"
)

// Sign returns the SignatureHeader value of body under secret; receivers
// compare it with hmac.Equal.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// readSecret returns the inline value or the file's content, refusing a
// file others can read.
func readSecret(inline, file, what string) (string, error) {
	if file == "" {
		return inline, nil
	}
	if inline != "" {
		return "", fmt.Errorf("%s: give the secret or its file, not both", what)
	}
	if err := ownerOnly(file); err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// httpDo posts and reads a bounded answer. Errors never carry the URL
// (Telegram's holds the bot token): url.Error is unwrapped.
func httpDo(ctx context.Context, c *http.Client, req *http.Request) (int, http.Header, []byte, error) {
	resp, err := c.Do(req.WithContext(ctx))
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("reading answer: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

func retryHeader(h http.Header) time.Duration {
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	return 0
}

type telegram struct {
	api, token string
	c          *http.Client
}

// telegramAnswer is the Bot API's answer shape.
type telegramAnswer struct {
	OK          bool   `json:"ok"`
	ErrorCode   int    `json:"error_code"`
	Description string `json:"description"`
	Parameters  struct {
		RetryAfter int `json:"retry_after"`
	} `json:"parameters"`
}

// parseTelegramAnswer reads a Bot API answer (untrusted bytes) into
// nil (sent) or an error saying why not.
func parseTelegramAnswer(status int, body []byte) error {
	var a telegramAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return fmt.Errorf("telegram: HTTP %d, answer not JSON", status)
	}
	if a.OK && status == http.StatusOK {
		return nil
	}
	desc := a.Description
	if len(desc) > 200 {
		desc = desc[:200]
	}
	err := fmt.Errorf("telegram: HTTP %d, error %d: %q", status, a.ErrorCode, desc)
	switch {
	case a.ErrorCode == 429 || status == http.StatusTooManyRequests:
		return &retryAfter{after: time.Duration(max(a.Parameters.RetryAfter, 1)) * time.Second, err: err}
	case a.ErrorCode == 400 || a.ErrorCode == 403 || status == 400 || status == 403:
		return &permanent{err}
	}
	return err
}

func (t *telegram) Send(ctx context.Context, m message) error {
	body, _ := json.Marshal(map[string]any{"chat_id": m.Addr, "text": m.Text})
	req, _ := http.NewRequest(http.MethodPost, t.api+"/bot"+t.token+"/sendMessage", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	status, _, ans, err := httpDo(ctx, t.c, req)
	if err != nil {
		return fmt.Errorf("telegram: %w", err)
	}
	return parseTelegramAnswer(status, ans)
}

type ntfy struct {
	base, token string
	c           *http.Client
}

// parseNtfyAnswer reads an ntfy publish answer (untrusted bytes): a
// message object ({"id":…,"event":"message"}) or an error object
// ({"code":40301,"http":403,"error":"…"}).
func parseNtfyAnswer(status int, h http.Header, body []byte) error {
	var a struct {
		ID    string `json:"id"`
		Event string `json:"event"`
		Code  int    `json:"code"`
		HTTP  int    `json:"http"`
		Error string `json:"error"`
	}
	jerr := json.Unmarshal(body, &a)
	if status == http.StatusOK && jerr == nil && a.ID != "" && a.Event == "message" {
		return nil
	}
	msg := a.Error
	if len(msg) > 200 {
		msg = msg[:200]
	}
	err := fmt.Errorf("ntfy: HTTP %d, code %d: %q", status, a.Code, msg)
	switch {
	case status == http.StatusOK:
		return fmt.Errorf("ntfy: HTTP 200 but not a message answer")
	case status == http.StatusTooManyRequests:
		return &retryAfter{after: max(retryHeader(h), time.Second), err: err}
	case status == 400 || status == 401 || status == 403 || status == 404:
		return &permanent{err}
	}
	return err
}

func (n *ntfy) Send(ctx context.Context, m message) error {
	req, _ := http.NewRequest(http.MethodPost, n.base+"/"+url.PathEscape(m.Addr), strings.NewReader(m.Text))
	req.Header.Set("Title", m.Subject)
	req.Header.Set("X-Message-Id", m.Key) // not an ntfy field; harmless, helps tracing
	if n.token != "" {
		req.Header.Set("Authorization", "Bearer "+n.token)
	}
	status, h, ans, err := httpDo(ctx, n.c, req)
	if err != nil {
		return fmt.Errorf("ntfy: %w", err)
	}
	return parseNtfyAnswer(status, h, ans)
}

type webhook struct {
	url    string
	secret []byte
	c      *http.Client
}

// WebhookBody is the JSON a webhook receives.
type WebhookBody struct {
	ID      string `json:"id"`      // idempotency key, same on every retry
	To      string `json:"to"`      // the handle's label
	Subject string `json:"subject"` // e.g. "server-lite: device events"
	Text    string `json:"text"`
	Time    string `json:"time"` // RFC 3339, when this attempt was made
}

func (w *webhook) Send(ctx context.Context, m message) error {
	body, _ := json.Marshal(WebhookBody{ID: m.Key, To: m.Addr, Subject: m.Subject, Text: m.Text, Time: time.Now().UTC().Format(time.RFC3339)})
	req, _ := http.NewRequest(http.MethodPost, w.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.secret, body))
	req.Header.Set(DeliveryHeader, m.Key)
	status, h, _, err := httpDo(ctx, w.c, req)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	if status >= 200 && status < 300 {
		return nil
	}
	err = fmt.Errorf("webhook: HTTP %d", status)
	if status == http.StatusTooManyRequests {
		return &retryAfter{after: max(retryHeader(h), time.Second), err: err}
	}
	return err
}

type smtpSender struct {
	cfg      SMTPConfig
	password string
	roots    *x509.CertPool
}

func (s *smtpSender) Send(ctx context.Context, m message) error {
	if err := s.send(ctx, m); err != nil {
		return fmt.Errorf("smtp %s: %w", s.cfg.Host, err)
	}
	return nil
}

func (s *smtpSender) send(ctx context.Context, m message) error {
	addr := net.JoinHostPort(s.cfg.Host, strconv.Itoa(s.cfg.Port))
	tcfg := &tls.Config{ServerName: s.cfg.Host, RootCAs: s.roots, MinVersion: tls.VersionTLS12}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if s.cfg.TLS == "implicit" {
		conn = tls.Client(conn, tcfg)
	}
	c, err := smtp.NewClient(conn, s.cfg.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("server-lite"); err != nil {
		return err
	}
	if s.cfg.TLS == "" || s.cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return &permanent{errors.New("server does not offer STARTTLS")}
		}
		if err := c.StartTLS(tcfg); err != nil {
			return fmt.Errorf("STARTTLS: %w", err)
		}
	}
	if s.cfg.User != "" {
		// smtp.PlainAuth itself refuses to send the password without TLS
		// (except to localhost); "none" with a user is refused in New.
		if err := c.Auth(smtp.PlainAuth("", s.cfg.User, s.password, s.cfg.Host)); err != nil {
			return fmt.Errorf("AUTH: %w", err)
		}
	}
	if err := c.Mail(s.cfg.From); err != nil {
		return err
	}
	if err := c.Rcpt(m.Addr); err != nil {
		var pe *textproto.Error
		if errors.As(err, &pe) && pe.Code >= 500 {
			return &permanent{err}
		}
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(mailText(s.cfg.From, m)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// mailText is the RFC 5322 message: fixed headers (the subject is ours,
// the addresses were checked), the idempotency key as Message-ID, the
// text as UTF-8 quoted-printable-free plain text with CRLF lines.
func mailText(from string, m message) []byte {
	var b bytes.Buffer
	host := "server-lite"
	if i := strings.LastIndexByte(from, '@'); i >= 0 {
		host = from[i+1:]
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@%s>\r\n", from, m.Addr, mime.QEncoding.Encode("utf-8", headerSafe(m.Subject)), time.Now().Format(time.RFC1123Z), hex.EncodeToString([]byte(m.Key)), host)
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n")
	for _, line := range strings.Split(strings.ReplaceAll(m.Text, "\r\n", "\n"), "\n") {
		b.WriteString(strings.TrimRight(line, "\r"))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// ownerOnly refuses a secret file that group or others may read (on
// Windows the mode bits say nothing; the data directory's ACL applies).
func ownerOnly(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	return nil
}
