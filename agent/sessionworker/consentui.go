package sessionworker

import (
	"context"
	"fmt"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
)

// ConsentUI is the agent's consent seam (consent.UI) on Windows, over a
// Prompter and a ShowBarFunc: windows in the user's session, reached
// through that session's worker when the agent is the service
// (ThroughWorkers) and directly when it already runs in the user's
// session (Windows(), WindowsBar; cmd/meshagent picks). It lives here,
// not in agent/desktop, because this package imports desktop.
type ConsentUI struct {
	Prompter Prompter
	// Bar shows the privacy bar; nil: none (ShowBar fails with ErrNoUI).
	Bar ShowBarFunc
}

var _ consent.UI = ConsentUI{}

// askGrace is how long past a prompt's own timeout Ask waits for the
// Prompter before it calls the prompt timed out itself, so a worker that
// hangs cannot hold a session's start for ever. A variable for tests.
var askGrace = 15 * time.Second

// notifyCheck is how long Notify waits for a notice to fail at once (no
// session, no worker) before it takes the notice as shown.
const notifyCheck = 500 * time.Millisecond

// Ask shows p's message as a question titled p.Title with p.Allow and
// p.Deny as its buttons that closes itself after p.Timeout. Allow is
// Accepted, Deny or closing it Denied, its own timeout TimedOut. When ctx ends (the viewer left)
// the question is taken down and Denied returned. A prompt that could not
// be shown (no user session, no worker) is an error wrapping
// consent.ErrNoUI.
func (u ConsentUI) Ask(ctx context.Context, p consent.Prompt) (consent.Answer, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = DefaultConsentTimeout
	}
	pctx, cancel := context.WithTimeout(ctx, timeout+askGrace)
	defer cancel()
	a, err := u.Prompter.Prompt(pctx, Prompt{Kind: "consent", Title: p.Title, Text: p.Message, Allow: p.Allow, Deny: p.Deny, Timeout: timeout})
	switch {
	case ctx.Err() != nil:
		return consent.Denied, nil
	case pctx.Err() != nil:
		return consent.TimedOut, nil
	case err != nil:
		return consent.Denied, fmt.Errorf("%w: %w", consent.ErrNoUI, err)
	case a.TimedOut:
		return consent.TimedOut, nil
	case a.Accepted:
		return consent.Accepted, nil
	}
	return consent.Denied, nil
}

// Notify shows the session notification as a message box without a
// question that closes itself (NotifyTimeout; Windows' toasts need an app
// identity a service's helper does not have), without waiting for it to
// close. A notice that fails at once is an error wrapping consent.ErrNoUI.
func (u ConsentUI) Notify(ctx context.Context, title, message string) error {
	errc := make(chan error, 1)
	go func() {
		_, err := u.Prompter.Prompt(context.WithoutCancel(ctx), Prompt{Kind: "notify", Title: title, Text: message})
		errc <- err
	}()
	t := time.NewTimer(notifyCheck)
	defer t.Stop()
	select {
	case err := <-errc:
		if err != nil {
			return fmt.Errorf("%w: %w", consent.ErrNoUI, err)
		}
		return nil // shown and already closed
	case <-t.C:
		return nil // it is up
	}
}

// ShowBar shows the privacy bar (consent bit 0x40): a small topmost
// window at the top of the user's screen naming the viewers, with a
// Disconnect button that runs onDisconnect. A bar that cannot be shown is
// an error wrapping consent.ErrNoUI, which the core logs as MeshCentral's
// "bar failed" event (msgid 32), as the C agent does.
func (u ConsentUI) ShowBar(text string, onDisconnect func()) (consent.Bar, error) {
	if u.Bar == nil {
		return nil, fmt.Errorf("privacy bar: none here: %w", consent.ErrNoUI)
	}
	b, err := u.Bar(text, onDisconnect)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", consent.ErrNoUI, err)
	}
	return b, nil
}
