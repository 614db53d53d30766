//go:build !linux && !darwin

package desktop

import (
	"log/slog"

	"github.com/meshgo/meshagent/agent/consent"
)

// NewConsentUI returns this platform's consent.UI: none yet on Windows
// (a prompt in the user's session belongs to the user-session worker),
// so consent prompts are denied there with the reason.
func NewConsentUI(*slog.Logger) consent.UI { return nil }
