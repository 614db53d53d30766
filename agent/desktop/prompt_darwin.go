package desktop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/agent/osuser"
)

// MacUI is consent.UI on macOS: AppleScript's display dialog and display
// notification, run with osascript in the console user's GUI session
// (launchctl asuser), as the C agent's message-box module does. macOS has
// no privacy bar here. Cross-compiled only, never run in CI.
type MacUI struct {
	Logger *slog.Logger
}

// NewConsentUI returns this platform's consent.UI.
func NewConsentUI(log *slog.Logger) consent.UI { return &MacUI{Logger: log} }

// asUser builds osascript for the console user's session.
func asUser(ctx context.Context, script string) (*exec.Cmd, error) {
	u, err := osuser.Console()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", consent.ErrNoUI, err)
	}
	return exec.CommandContext(ctx, "/bin/launchctl", "asuser", u.UID, "/usr/bin/osascript", "-e", script), nil
}

// appleString quotes s for AppleScript.
func appleString(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Ask implements consent.UI.
func (m *MacUI) Ask(ctx context.Context, p consent.Prompt) (consent.Answer, error) {
	secs := int(p.Timeout / time.Second)
	script := "display dialog " + appleString(p.Message) + " with title " + appleString(p.Title) +
		" buttons {" + appleString(p.Deny) + ", " + appleString(p.Allow) + "} default button " + appleString(p.Deny) +
		" giving up after " + strconv.Itoa(max(secs, 1))
	cmd, err := asUser(ctx, script)
	if err != nil {
		return consent.Denied, err
	}
	out, err := cmd.Output()
	if ctx.Err() != nil {
		return consent.Denied, nil
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return consent.Denied, nil // the dialog was dismissed (error -128)
		}
		return consent.Denied, fmt.Errorf("consent dialog: %w", err)
	}
	s := string(out)
	switch {
	case strings.Contains(s, "gave up:true"):
		return consent.TimedOut, nil
	case strings.Contains(s, "button returned:"+p.Allow):
		return consent.Accepted, nil
	}
	return consent.Denied, nil
}

// Notify implements consent.UI.
func (m *MacUI) Notify(ctx context.Context, title, message string) error {
	cmd, err := asUser(ctx, "display notification "+appleString(message)+" with title "+appleString(title))
	if err != nil {
		return err
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("notification: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// ShowBar is not supported on macOS.
func (m *MacUI) ShowBar(string, func()) (consent.Bar, error) {
	return nil, fmt.Errorf("%w: no privacy bar on macOS: %w", consent.ErrNoUI, errors.ErrUnsupported)
}
