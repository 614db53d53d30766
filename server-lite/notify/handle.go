package notify

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"
)

// Service names a provider. A user's messaging handle is "<service>:<address>",
// MeshCentral's shape (user.msghandle, e.g. "telegram:@name", "ntfy:topic").
type Service string

const (
	Telegram Service = "telegram" // address: a chat id ("123456", "-100…") or "@channel"
	Ntfy     Service = "ntfy"     // address: a topic
	Email    Service = "email"    // address: an e-mail address
	Webhook  Service = "webhook"  // address: a label sent as "to" in the JSON
)

// ServiceBits are MeshCentral's messaging provider bits (meshuser.js
// verifyMessaging's command.service; serverinfo's provider mask) for the
// services both have; e-mail and webhook are server-lite's own bits.
var ServiceBits = map[Service]int{Telegram: 1, Ntfy: 64, Email: 1 << 12, Webhook: 1 << 13}

// ServiceByBit maps a verifyMessaging service number back to its service.
func ServiceByBit(bit int) (Service, bool) {
	for s, b := range ServiceBits {
		if b == bit {
			return s, true
		}
	}
	return "", false
}

// Handle is a parsed messaging handle.
type Handle struct {
	Service Service
	Addr    string
}

func (h Handle) String() string { return string(h.Service) + ":" + h.Addr }

// MaxHandle bounds a handle (MeshCentral: 1024 characters).
const MaxHandle = 1024

// ErrHandle is wrapped by every ParseHandle error.
var ErrHandle = errors.New("invalid messaging handle")

// ParseHandle checks a handle a user typed (or a stored one). It refuses
// anything a provider could misread: control characters, a chat id that is
// not a number or @name, a topic with a slash, an e-mail address with a
// display name or line breaks (header injection).
func ParseHandle(s string) (Handle, error) {
	if len(s) > MaxHandle || !utf8.ValidString(s) {
		return Handle{}, fmt.Errorf("%w: too long or not UTF-8", ErrHandle)
	}
	svc, addr, ok := strings.Cut(s, ":")
	if !ok || addr == "" {
		return Handle{}, fmt.Errorf("%w: want service:address", ErrHandle)
	}
	for _, r := range addr {
		if r < 0x20 || r == 0x7f {
			return Handle{}, fmt.Errorf("%w: control character", ErrHandle)
		}
	}
	h := Handle{Service: Service(svc), Addr: addr}
	if err := checkAddr(h); err != nil {
		return Handle{}, fmt.Errorf("%w: %w", ErrHandle, err)
	}
	return h, nil
}

func checkAddr(h Handle) error {
	a := h.Addr
	switch h.Service {
	case Telegram:
		if name, ok := strings.CutPrefix(a, "@"); ok {
			if len(name) < 4 || len(name) > 32 || !allChars(name, "_") {
				return errors.New("telegram: @name of 4-32 letters, digits, _")
			}
			return nil
		}
		d := strings.TrimPrefix(a, "-")
		if d == "" || len(d) > 20 || strings.Trim(d, "0123456789") != "" {
			return errors.New("telegram: a numeric chat id or @channel")
		}
	case Ntfy:
		if len(a) > 64 || !allChars(a, "_-") {
			return errors.New("ntfy: topic of at most 64 letters, digits, _ and -")
		}
	case Email:
		if len(a) > 254 {
			return errors.New("email: longer than 254")
		}
		m, err := mail.ParseAddress(a)
		if err != nil || m.Name != "" || m.Address != a {
			return errors.New("email: a bare address such as name@example.org")
		}
	case Webhook:
		if len(a) > 128 {
			return errors.New("webhook: label longer than 128")
		}
	default:
		return fmt.Errorf("unknown service %q", h.Service)
	}
	return nil
}

func allChars(s, extra string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune(extra, r)) {
			return false
		}
	}
	return true
}
