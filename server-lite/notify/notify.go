// Package notify is server-lite's messaging: it sends users the 6-digit
// code that proves their messaging handle, login second-factor codes,
// administrators' messages and device event notices (connect, disconnect,
// offline longer than N minutes, agent errors, core crashes), through
// Telegram's Bot API, ntfy, e-mail over SMTP and a signed JSON webhook.
//
// Delivery goes through a queue kept in the store: every message has an
// idempotency key (a repeat with the same key is not sent again), is
// retried with exponential backoff across restarts, is paced per provider
// (Telegram: 30 per second overall, one per second per chat), and every
// failed attempt is written to the event log. Nothing that enqueues waits
// for a provider: each provider has its own worker and a per-attempt
// timeout, so a hanging one only delays its own messages.
//
// Device notices are batched per user as MeshCentral does (meshmessaging.js):
// events within one window (a minute by default) go out as one message
// of at most MaxText characters, and a disconnect and a reconnect of the
// same device within the window cancel out.
package notify

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

// Duration is a time.Duration written as Go writes it ("1m", "30s") in JSON.
type Duration time.Duration

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration such as \"1m\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// Settings is what an administrator sets, the "notify" object of
// server-lite's JSON config. A provider is enabled when its address is set.
type Settings struct {
	Telegram TelegramConfig `json:"telegram"`
	Ntfy     NtfyConfig     `json:"ntfy"`
	SMTP     SMTPConfig     `json:"smtp"`
	Webhook  WebhookConfig  `json:"webhook"`
	// BatchWindow is how long device notices are gathered per user
	// (MeshCentral: one minute).
	BatchWindow Duration `json:"batchWindow,omitempty"`
	// Msg2Factor: a user with a verified handle must give a code sent to
	// it at login (MeshCentral's passwordRequirements.msg2factor, default
	// on). A pointer so that an absent key means the default.
	Msg2Factor *bool `json:"msg2factor,omitempty"`
	// SendTimeout bounds one delivery attempt (default 30s); RetryBase and
	// RetryMax shape the backoff (default 5s doubling up to 1h);
	// MaxAttempts gives up (default 20).
	SendTimeout Duration `json:"sendTimeout,omitempty"`
	RetryBase   Duration `json:"retryBase,omitempty"`
	RetryMax    Duration `json:"retryMax,omitempty"`
	MaxAttempts int      `json:"maxAttempts,omitempty"`
}

// Enabled reports whether any provider is configured.
func (s Settings) Enabled() bool {
	return s.Telegram.Token != "" || s.Telegram.TokenFile != "" || s.Ntfy.URL != "" || s.SMTP.Host != "" || s.Webhook.URL != ""
}

// Config is the notifier's configuration: the administrator's Settings
// and the server's parts.
type Config struct {
	Settings
	Store    *store.Store
	Accounts *accounts.Manager
	// Online reports whether a device is connected now (offline timers
	// check it before they fire).
	Online func(nodeID string) bool
	// OfflineUnit is the length of the "minutes" in offline-longer-than
	// subscriptions; tests shorten it. Default time.Minute.
	OfflineUnit time.Duration
	Logger      *slog.Logger
}

// MaxText bounds a device-notice message (MeshCentral: about 1,000
// characters), and an administrator's message.
const MaxText = 1000

// Notifier is the running messaging service.
type Notifier struct {
	cfg         Config
	log         *slog.Logger
	providers   map[Service]provider
	secrets     []string
	q           *queue
	window      time.Duration
	sendTimeout time.Duration
	retryBase   time.Duration
	retryMax    time.Duration
	maxAttempts int

	mu       sync.Mutex
	prefs    map[string]*Prefs // by user id
	verify   map[string]*pendingCode
	login    map[string]*pendingCode // by user id
	batches  map[string]*batch       // by user id
	offline  map[string]map[string]*time.Timer
	events   chan DeviceEvent
	done     chan struct{}
	stopOnce sync.Once
	closed   bool
}

// New reads the secrets, builds the enabled providers and loads the queue
// and users' settings. It refuses a secret file others can read.
func New(cfg Config) (*Notifier, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Store == nil || cfg.Accounts == nil {
		return nil, errors.New("notify: store and accounts are required")
	}
	if cfg.OfflineUnit <= 0 {
		cfg.OfflineUnit = time.Minute
	}
	n := &Notifier{cfg: cfg, log: cfg.Logger.With("component", "notify"), providers: map[Service]provider{},
		prefs: map[string]*Prefs{}, verify: map[string]*pendingCode{}, login: map[string]*pendingCode{},
		batches: map[string]*batch{}, offline: map[string]map[string]*time.Timer{},
		events: make(chan DeviceEvent, 4096), done: make(chan struct{})}
	n.window = orDefault(time.Duration(cfg.BatchWindow), time.Minute)
	n.sendTimeout = orDefault(time.Duration(cfg.SendTimeout), 30*time.Second)
	n.retryBase = orDefault(time.Duration(cfg.RetryBase), 5*time.Second)
	n.retryMax = orDefault(time.Duration(cfg.RetryMax), time.Hour)
	n.maxAttempts = cfg.MaxAttempts
	if n.maxAttempts <= 0 {
		n.maxAttempts = 20
	}
	client := &http.Client{Timeout: n.sendTimeout}
	s := cfg.Settings
	if s.Telegram.Token != "" || s.Telegram.TokenFile != "" {
		tok, err := readSecret(s.Telegram.Token, s.Telegram.TokenFile, "telegram token")
		if err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
		if tok == "" || strings.ContainsAny(tok, "/?# ") {
			return nil, errors.New("notify: telegram token: empty or not a bot token")
		}
		n.secrets = append(n.secrets, tok)
		n.providers[Telegram] = &telegram{api: strings.TrimRight(orStr(s.Telegram.APIURL, "https://api.telegram.org"), "/"), token: tok, c: client}
	}
	if s.Ntfy.URL != "" {
		tok, err := readSecret(s.Ntfy.Token, s.Ntfy.TokenFile, "ntfy token")
		if err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
		n.secrets = append(n.secrets, tok)
		n.providers[Ntfy] = &ntfy{base: strings.TrimRight(s.Ntfy.URL, "/"), token: tok, c: client}
	}
	if s.SMTP.Host != "" {
		pw, err := readSecret(s.SMTP.Password, s.SMTP.PasswordFile, "smtp password")
		if err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
		sc := s.SMTP
		switch sc.TLS {
		case "", "starttls":
		case "implicit":
		case "none":
			if sc.User != "" {
				return nil, errors.New("notify: smtp: tls \"none\" with a user would send the password in clear")
			}
		default:
			return nil, fmt.Errorf("notify: smtp tls %q: starttls, implicit or none", sc.TLS)
		}
		if sc.Port == 0 {
			sc.Port = 587
			if sc.TLS == "implicit" {
				sc.Port = 465
			}
		}
		if _, err := ParseHandle("email:" + sc.From); err != nil {
			return nil, fmt.Errorf("notify: smtp from: %w", err)
		}
		snd := &smtpSender{cfg: sc, password: pw}
		if sc.CAFile != "" {
			pem, err := os.ReadFile(sc.CAFile)
			if err != nil {
				return nil, fmt.Errorf("notify: smtp caFile: %w", err)
			}
			snd.roots = x509.NewCertPool()
			if !snd.roots.AppendCertsFromPEM(pem) {
				return nil, errors.New("notify: smtp caFile: no PEM certificate")
			}
		}
		n.secrets = append(n.secrets, pw)
		n.providers[Email] = snd
	}
	if s.Webhook.URL != "" {
		sec, err := readSecret(s.Webhook.Secret, s.Webhook.SecretFile, "webhook secret")
		if err != nil {
			return nil, fmt.Errorf("notify: %w", err)
		}
		if len(sec) < 16 {
			return nil, errors.New("notify: webhook secret: at least 16 characters")
		}
		n.secrets = append(n.secrets, sec)
		n.providers[Webhook] = &webhook{url: s.Webhook.URL, secret: []byte(sec), c: client}
	}
	if err := n.loadPrefs(); err != nil {
		return nil, err
	}
	q, err := newQueue(n)
	if err != nil {
		return nil, err
	}
	n.q = q
	q.pruneSent(7 * 24 * time.Hour)
	return n, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func orStr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Start runs the delivery queue and the device-event loop until Close.
func (n *Notifier) Start() {
	n.q.start()
	go n.eventLoop()
}

// Close stops delivery; queued messages stay in the store for the next
// start. Batches not yet flushed are flushed into the queue first.
func (n *Notifier) Close() {
	n.stopOnce.Do(func() {
		close(n.done)
		n.mu.Lock()
		users := make([]string, 0, len(n.batches))
		for u, b := range n.batches {
			b.timer.Stop()
			users = append(users, u)
		}
		n.mu.Unlock()
		for _, u := range users {
			n.flush(u)
		}
		n.mu.Lock()
		n.closed = true
		for _, ts := range n.offline {
			for _, t := range ts {
				t.Stop()
			}
		}
		n.mu.Unlock()
		n.q.close()
	})
}

// Services lists the enabled services.
func (n *Notifier) Services() []Service {
	var out []Service
	for _, s := range []Service{Telegram, Ntfy, Email, Webhook} {
		if n.providers[s] != nil {
			out = append(out, s)
		}
	}
	return out
}

// ProviderBits is the enabled services as MeshCentral's provider mask.
func (n *Notifier) ProviderBits() int {
	b := 0
	for _, s := range n.Services() {
		b |= ServiceBits[s]
	}
	return b
}

// Msg2Factor reports whether a verified handle is a login second factor.
func (n *Notifier) Msg2Factor() bool {
	return len(n.providers) > 0 && (n.cfg.Msg2Factor == nil || *n.cfg.Msg2Factor)
}

// Pending is the number of queued, undelivered messages.
func (n *Notifier) Pending() int { return n.q.pending() }

// redact removes every configured secret from s.
func (n *Notifier) redact(s string) string { return redactAll(s, n.secrets) }

// ErrNoProvider: the handle's service is not configured on this server.
var ErrNoProvider = errors.New("messaging service not enabled on this server")

// Enqueue queues text for handle under the idempotency key (a key queued
// or delivered before is ignored: false, nil). userID attributes the
// message in the event log.
func (n *Notifier) Enqueue(key, userID, handle, subject, text string) (bool, error) {
	h, err := ParseHandle(handle)
	if err != nil {
		return false, err
	}
	if n.providers[h.Service] == nil {
		return false, fmt.Errorf("%w: %s", ErrNoProvider, h.Service)
	}
	if key == "" || len(key) > 200 {
		return false, errors.New("notify: idempotency key: 1 to 200 bytes")
	}
	now := time.Now().UTC()
	return n.q.enqueue(item{Key: key, UserID: userID, Handle: h.String(), Subject: subject, Text: clip(text, 4*MaxText), Created: now, Next: now})
}

// SendUser queues an administrator's message to a user's verified handle.
// key, when not empty, is the caller's idempotency key.
func (n *Notifier) SendUser(userID, from, text, key string) error {
	if text == "" || len([]rune(text)) > MaxText {
		return fmt.Errorf("message: 1 to %d characters", MaxText)
	}
	h := n.Handle(userID)
	if h == "" {
		return errors.New("No messaging service configured for this user")
	}
	if key == "" {
		key = "msg:" + randomHex(12)
	} else {
		key = "msg:" + userID + ":" + key
	}
	_, err := n.Enqueue(key, userID, h, "server-lite: message from "+from, text)
	return err
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return hex.EncodeToString(b)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
