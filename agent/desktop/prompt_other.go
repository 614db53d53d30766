//go:build !linux && !darwin

package desktop

import (
	"log/slog"

	"github.com/meshgo/meshagent/agent/consent"
)

// NewConsentUI returns this platform's consent.UI: none here. On Windows
// cmd/meshagent plugs in sessionworker.ConsentUI instead (a prompt in the
// user's session, through the session worker as the service), which this
// package cannot name: sessionworker imports it.
func NewConsentUI(*slog.Logger) consent.UI { return nil }
