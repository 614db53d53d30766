package sessionworker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/proto/kvm"
	"github.com/meshgo/meshagent/proto/session"
)

// memBar records what a worker's privacy bar is asked to do.
type memBar struct {
	mu     sync.Mutex
	texts  []string
	closed chan struct{}
	click  func()
}

func (b *memBar) show(text string, onDisconnect func()) (consent.Bar, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.texts = append(b.texts, text)
	b.click = onDisconnect
	return b, nil
}

func (b *memBar) SetText(text string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.texts = append(b.texts, text)
	return nil
}

func (b *memBar) Close() error { close(b.closed); return nil }

func (b *memBar) state() ([]string, func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.texts...), b.click
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The privacy bar through the worker: shown with its text, updated, the
// user's Disconnect reaches the service's callback once, and Close takes
// the worker's bar down. A worker without a bar refuses with its reason.
func TestWorkerBar(t *testing.T) {
	b := &memBar{closed: make(chan struct{})}
	c, _ := startWorker(t, WorkerOptions{Bar: b.show}, Handler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var clicks sync.WaitGroup
	clicks.Add(1)
	n := 0
	bar, err := c.ShowBar(ctx, "Sharing desktop with: Ann", func() { n++; clicks.Done() })
	if err != nil {
		t.Fatal(err)
	}
	if err := bar.SetText("Sharing desktop with: Ann, Bob"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the text update", func() bool { texts, _ := b.state(); return len(texts) == 2 })
	texts, click := b.state()
	if texts[0] != "Sharing desktop with: Ann" || texts[1] != "Sharing desktop with: Ann, Bob" {
		t.Errorf("the worker's bar showed %q", texts)
	}
	click()
	click() // a second click before the sessions end: one disconnect
	clicks.Wait()
	bar.Close()
	select {
	case <-b.closed:
	case <-ctx.Done():
		t.Fatal("the worker's bar stayed up after Close")
	}
	if n != 1 {
		t.Errorf("onDisconnect ran %d times", n)
	}

	none, _ := startWorker(t, WorkerOptions{}, Handler{})
	if _, err := none.ShowBar(ctx, "x", nil); err == nil {
		t.Error("a worker without a bar showed one")
	}
}

// The service's consent seam asks in the session the viewer chose (the
// tsid the core puts in the context), else the console's; the bar goes
// to the console session's worker.
func TestThroughWorkersSession(t *testing.T) {
	b := &memBar{closed: make(chan struct{})}
	c, _ := startWorker(t, WorkerOptions{
		Bar: b.show,
		Prompter: PrompterFunc(func(context.Context, Prompt) (Answer, error) {
			return Answer{Accepted: true}, nil
		}),
	}, Handler{})
	var mu sync.Mutex
	var asked []string
	ui := ThroughWorkers(func(ctx context.Context, tsid *uint32) (*Client, error) {
		mu.Lock()
		defer mu.Unlock()
		if tsid == nil {
			asked = append(asked, "console")
		} else {
			asked = append(asked, string(rune('0'+*tsid)))
		}
		return c, nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p := consent.Options{}.PromptFor(consent.Desktop, consent.Who{RealName: "Ann"})
	if a, err := ui.Ask(consent.WithTSID(ctx, 2), p); a != consent.Accepted || err != nil {
		t.Errorf("Ask in session 2 = %v, %v", a, err)
	}
	if a, err := ui.Ask(ctx, p); a != consent.Accepted || err != nil {
		t.Errorf("Ask = %v, %v", a, err)
	}
	if err := ui.Notify(consent.WithTSID(ctx, 5), "MeshCentral", "Ann started a remote desktop session."); err != nil {
		t.Errorf("Notify = %v", err)
	}
	bar, err := ui.ShowBar("Sharing desktop with: Ann", func() {})
	if err != nil {
		t.Fatal(err)
	}
	bar.Close()
	waitFor(t, "four worker look-ups", func() bool { mu.Lock(); defer mu.Unlock(); return len(asked) == 4 })
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"2", "console", "5", "console"}; !equal(asked, want) {
		t.Errorf("workers asked for sessions %q, want %q", asked, want)
	}

	noWorker := ThroughWorkers(func(context.Context, *uint32) (*Client, error) { return nil, ErrNoSession })
	if _, err := noWorker.Ask(ctx, p); !errors.Is(err, consent.ErrNoUI) {
		t.Errorf("Ask without a worker = %v, want ErrNoUI", err)
	}
	if _, err := noWorker.ShowBar("x", nil); !errors.Is(err, consent.ErrNoUI) {
		t.Errorf("ShowBar without a worker = %v, want ErrNoUI", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The worker's desktop session's events (the toolbar's lock) reach the
// service's LogEvent and not the viewer; the viewer's Ctrl+Alt+Del goes to
// the service's SendSAS when it works and input is allowed, and on to the
// worker when it fails or the viewer may only watch.
func TestRelayEventsAndCtrlAltDel(t *testing.T) {
	desk := func(ctx context.Context, ch session.Channel, info session.Info) error {
		for {
			f, err := ch.Read(ctx)
			if err != nil {
				return nil
			}
			if string(f.Data) == "lock" {
				SendEvent(ctx, ch, 53)
			}
			ch.Write(ctx, session.Frame{Binary: f.Binary, Data: append([]byte("w>"), f.Data...)})
		}
	}
	cad := kvm.Encode(kvm.CtrlAltDel)
	for _, tc := range []struct {
		name    string
		rights  uint32
		sasErr  error
		wantSAS bool
		wantFwd bool // the worker got the command
	}{
		{"SendSAS works", session.RightAdmin, nil, true, false},
		{"SendSAS refused", session.RightAdmin, ErrSASRefused, true, true},
		{"view only", session.RightRemoteViewOnly | session.RightRemoteControl, nil, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := startWorker(t, WorkerOptions{Desktop: desk}, Handler{})
			agent, viewer := session.Pipe(8)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			events := make(chan int, 4)
			sas := 0
			done := make(chan error, 1)
			go func() {
				done <- Relay(ctx, agent, session.Info{Rights: tc.rights}, func(context.Context) (*Client, error) { return c, nil }, RelayOptions{
					Logger:     quiet(),
					LogEvent:   func(id int) { events <- id },
					CtrlAltDel: func() error { sas++; return tc.sasErr },
				})
			}()
			viewer.Write(ctx, session.Frame{Binary: true, Data: cad})
			viewer.Write(ctx, session.Frame{Data: []byte("lock")})
			var got []string
			for len(got) < 2 {
				f, err := viewer.Read(ctx)
				if err != nil {
					t.Fatalf("viewer read: %v (got %q)", err, got)
				}
				got = append(got, string(f.Data))
				if string(f.Data) == "w>lock" {
					break
				}
			}
			fwd := got[0] == "w>"+string(cad)
			if fwd != tc.wantFwd || got[len(got)-1] != "w>lock" {
				t.Errorf("viewer got %q; Ctrl+Alt+Del forwarded %v, want %v", got, fwd, tc.wantFwd)
			}
			select {
			case id := <-events:
				if id != 53 {
					t.Errorf("event %d, want 53", id)
				}
			case <-ctx.Done():
				t.Error("the worker's lock event did not reach LogEvent")
			}
			viewer.Close()
			<-done
			if (sas > 0) != tc.wantSAS {
				t.Errorf("SendSAS called %d times, want called %v", sas, tc.wantSAS)
			}
		})
	}
}

// Frames from a worker's desktop stream: only a well-formed event frame
// is taken as an event, and nothing panics.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"meshgoWorkerEvent":53}`), false)
	f.Add([]byte(`{"meshgoWorkerEvent":"x"}`), false)
	f.Add(kvm.Encode(kvm.CtrlAltDel), true)
	f.Add([]byte{0, 10, 0, 5, 0}, true)
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		fr := session.Frame{Binary: binary, Data: data}
		if id, ok := parseEvent(fr); ok && (binary || len(data) < len(eventPrefix)) {
			t.Errorf("parseEvent(%q, binary %v) = %d, true", data, binary, id)
		}
		if isCtrlAltDel(fr) && (!binary || len(data) != 4) {
			t.Errorf("isCtrlAltDel(%q, binary %v)", data, binary)
		}
	})
}
