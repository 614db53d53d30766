package sessionworker

import (
	"context"
	"fmt"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
)

// ConsentUI is the agent's consent seam (consent.UI) on Windows, over a
// Prompter: the user session's MessageBox, reached through the session
// worker when the agent is the service and directly when it already runs
// in the user's session (cmd/meshagent picks the Prompter). It lives here,
// not in agent/desktop, because this package imports desktop.
type ConsentUI struct{ Prompter Prompter }

var _ consent.UI = ConsentUI{}

// askGrace is how long past a prompt's own timeout Ask waits for the
// Prompter before it calls the prompt timed out itself, so a worker that
// hangs cannot hold a session's start for ever. A variable for tests.
var askGrace = 15 * time.Second

// notifyCheck is how long Notify waits for a notice to fail at once (no
// session, no worker) before it takes the notice as shown.
const notifyCheck = 500 * time.Millisecond

// Ask shows p's message as a Yes/No question titled p.Title (Windows'
// buttons: MessageBox cannot take p.Allow and p.Deny as labels) that
// closes itself after p.Timeout. Yes is Accepted, No or closing the box
// Denied, the box's own timeout TimedOut. When ctx ends (the viewer left)
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
	a, err := u.Prompter.Prompt(pctx, Prompt{Kind: "consent", Title: p.Title, Text: p.Message, Timeout: timeout})
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

// ShowBar has no Windows privacy bar yet: it returns an error wrapping
// consent.ErrNoUI, which the core logs as MeshCentral's "bar failed"
// event (msgid 32), as the C agent does when its bar cannot be shown.
func (ConsentUI) ShowBar(string, func()) (consent.Bar, error) {
	return nil, fmt.Errorf("privacy bar: none on Windows yet: %w", consent.ErrNoUI)
}
