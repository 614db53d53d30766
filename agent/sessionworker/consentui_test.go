package sessionworker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
)

// The adapter maps the Prompter's answers to the consent seam's, passes
// the consent texts and timeout through as a "consent" prompt, and wraps
// a prompt that could not be shown as consent.ErrNoUI.
func TestConsentUIAsk(t *testing.T) {
	errNoWorker := errors.New("no session worker")
	for _, tc := range []struct {
		name    string
		a       Answer
		err     error
		want    consent.Answer
		wantErr bool
	}{
		{"yes", Answer{Accepted: true}, nil, consent.Accepted, false},
		{"no", Answer{}, nil, consent.Denied, false},
		{"timeout", Answer{TimedOut: true}, nil, consent.TimedOut, false},
		{"no worker", Answer{}, errNoWorker, consent.Denied, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got Prompt
			ui := ConsentUI{Prompter: PrompterFunc(func(ctx context.Context, p Prompt) (Answer, error) {
				got = p
				return tc.a, tc.err
			})}
			p := consent.Options{ConsentTimeout: 7}.PromptFor(consent.Desktop, consent.Who{RealName: "Ann Admin"})
			ans, err := ui.Ask(context.Background(), p)
			if ans != tc.want || (err != nil) != tc.wantErr {
				t.Fatalf("Ask = %v, %v; want %v (error %v)", ans, err, tc.want, tc.wantErr)
			}
			if tc.wantErr && (!errors.Is(err, consent.ErrNoUI) || !errors.Is(err, errNoWorker)) {
				t.Errorf("error %v does not wrap ErrNoUI and the cause", err)
			}
			want := Prompt{Kind: "consent", Title: "MeshCentral", Text: "Ann Admin requesting remote desktop access. Grant access?", Allow: "Allow", Deny: "Deny", Timeout: 7 * time.Second}
			if got != want {
				t.Errorf("prompt = %+v, want %+v", got, want)
			}
		})
	}
}

// The viewer leaving (ctx ends) cancels the prompt's context, which takes
// the box down, and Ask answers Denied without an error.
func TestConsentUIAskCancel(t *testing.T) {
	cancelled := make(chan struct{})
	ui := ConsentUI{Prompter: PrompterFunc(func(ctx context.Context, p Prompt) (Answer, error) {
		<-ctx.Done()
		close(cancelled)
		return Answer{}, ctx.Err()
	})}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	ans, err := ui.Ask(ctx, consent.Prompt{Title: "t", Message: "m", Timeout: time.Minute})
	if ans != consent.Denied || err != nil {
		t.Errorf("Ask after the viewer left = %v, %v; want denied, nil", ans, err)
	}
	select {
	case <-cancelled:
	default:
		t.Error("the prompter's context was not cancelled")
	}
}

// A Prompter that never answers (a hung worker) cannot hold the session:
// past the timeout and the grace Ask answers TimedOut on its own, and a
// zero timeout is MeshCentral's 30 s default.
func TestConsentUIAskHung(t *testing.T) {
	defer func(g time.Duration) { askGrace = g }(askGrace)
	askGrace = 10 * time.Millisecond
	var timeout time.Duration
	ui := ConsentUI{Prompter: PrompterFunc(func(ctx context.Context, p Prompt) (Answer, error) {
		timeout = p.Timeout
		if p.Timeout == DefaultConsentTimeout {
			return Answer{TimedOut: true}, nil
		}
		<-ctx.Done()
		return Answer{}, ctx.Err()
	})}
	ans, err := ui.Ask(context.Background(), consent.Prompt{Timeout: 20 * time.Millisecond})
	if ans != consent.TimedOut || err != nil {
		t.Errorf("Ask of a hung prompter = %v, %v; want timeout, nil", ans, err)
	}
	if ans, _ := ui.Ask(context.Background(), consent.Prompt{}); ans != consent.TimedOut || timeout != DefaultConsentTimeout {
		t.Errorf("zero timeout: prompt timeout %v, answer %v; want %v", timeout, ans, DefaultConsentTimeout)
	}
}

// Notify shows a "notify" prompt without waiting for it to close, reports
// a notice that fails at once as ErrNoUI, and ShowBar without a Bar has
// none.
func TestConsentUINotifyAndBar(t *testing.T) {
	shown := make(chan Prompt, 1)
	release := make(chan struct{})
	ui := ConsentUI{Prompter: PrompterFunc(func(ctx context.Context, p Prompt) (Answer, error) {
		shown <- p
		<-release
		return Answer{Accepted: true}, nil
	})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the core passes a context that outlives the session; the notice must not depend on it
	if err := ui.Notify(ctx, "MeshCentral", "Ann started a remote desktop session."); err != nil {
		t.Errorf("Notify = %v", err)
	}
	if p := <-shown; p != (Prompt{Kind: "notify", Title: "MeshCentral", Text: "Ann started a remote desktop session."}) {
		t.Errorf("notice = %+v", p)
	}
	close(release)

	fail := ConsentUI{Prompter: PrompterFunc(func(context.Context, Prompt) (Answer, error) {
		return Answer{}, errors.New("no user session")
	})}
	if err := fail.Notify(context.Background(), "t", "m"); !errors.Is(err, consent.ErrNoUI) {
		t.Errorf("failed Notify = %v, want ErrNoUI", err)
	}
	if b, err := (ConsentUI{}).ShowBar("Sharing desktop with: Ann", func() {}); b != nil || !errors.Is(err, consent.ErrNoUI) {
		t.Errorf("ShowBar = %v, %v; want nil, ErrNoUI", b, err)
	}
}
