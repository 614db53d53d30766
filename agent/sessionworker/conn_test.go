package sessionworker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/consent"
	"github.com/meshgo/meshagent/agent/sessionworker/wire"
	"github.com/meshgo/meshagent/proto/session"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// memClipboard is a clipboard held in memory: the worker protocol, not a
// desktop, is under test here (the real clipboards have their own tests).
type memClipboard struct {
	mu   sync.Mutex
	text string
}

func (m *memClipboard) Read(context.Context) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.text, nil
}

func (m *memClipboard) Write(_ context.Context, t string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.text = t
	return nil
}

// echoDesktop stands in for desktop.Serve: it greets with one binary
// frame naming the worker, then echoes every frame with a prefix.
func echoDesktop(name string) func(context.Context, session.Channel, session.Info) error {
	return func(ctx context.Context, ch session.Channel, info session.Info) error {
		if err := ch.Write(ctx, session.Frame{Binary: true, Data: []byte(name + ":" + info.UserID)}); err != nil {
			return err
		}
		for {
			f, err := ch.Read(ctx)
			if err != nil {
				return nil
			}
			if err := ch.Write(ctx, session.Frame{Binary: f.Binary, Data: append([]byte(name+">"), f.Data...)}); err != nil {
				return err
			}
		}
	}
}

// startWorker connects a worker serving o to a service Conn over
// net.Pipe, as the named pipe does between the processes.
func startWorker(t *testing.T, o WorkerOptions, service Handler) (*Client, <-chan error) {
	t.Helper()
	a, b := net.Pipe()
	done := make(chan error, 1)
	if o.Logger == nil {
		o.Logger = quiet()
	}
	go func() { done <- ServeWorker(context.Background(), b, o) }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Open(ctx, a, RoleService, service, quiet())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return Dial(ctx, c), done
}

// The service's requests reach the worker's clipboard and prompter and
// come back with their answers or errors.
func TestRequestsServiceToWorker(t *testing.T) {
	clip := &memClipboard{text: "before"}
	var shown []Prompt
	var mu sync.Mutex
	c, _ := startWorker(t, WorkerOptions{
		Desktop:   echoDesktop("w"),
		Clipboard: clip,
		Prompter: PrompterFunc(func(_ context.Context, p Prompt) (Answer, error) {
			mu.Lock()
			shown = append(shown, p)
			mu.Unlock()
			if p.Kind == "consent" {
				return Answer{Accepted: false, TimedOut: true}, nil
			}
			return Answer{Accepted: true}, nil
		}),
		Info: func() WorkerInfo { return WorkerInfo{PID: 42, SessionID: 3, Desktop: "Default"} },
	}, Handler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if got, err := c.ReadClipboard(ctx); err != nil || got != "before" {
		t.Fatalf("ReadClipboard = %q, %v", got, err)
	}
	if err := c.WriteClipboard(ctx, "héllo\r\nwörld"); err != nil {
		t.Fatalf("WriteClipboard: %v", err)
	}
	if got, _ := clip.Read(ctx); got != "héllo\r\nwörld" {
		t.Fatalf("clipboard holds %q", got)
	}
	tests := []struct {
		p    Prompt
		want Answer
	}{
		{Prompt{Kind: "messagebox", Title: "Title", Text: "Hello"}, Answer{Accepted: true}},
		{Prompt{Kind: "consent", Title: consent.DefaultTitle, Text: consent.Options{}.PromptFor(consent.Desktop, consent.Who{RealName: "admin"}).Message, Timeout: time.Second}, Answer{TimedOut: true}},
	}
	for _, tt := range tests {
		got, err := c.Prompt(ctx, tt.p)
		if err != nil || got != tt.want {
			t.Errorf("Prompt(%+v) = %+v, %v; want %+v", tt.p, got, err, tt.want)
		}
	}
	mu.Lock()
	if len(shown) != 2 || shown[1].Timeout != time.Second || shown[1].Text != "admin requesting remote desktop access. Grant access?" {
		t.Errorf("worker was shown %+v", shown)
	}
	mu.Unlock()
	if wi, err := c.Info(ctx); err != nil || wi.PID != 42 || wi.SessionID != 3 {
		t.Errorf("Info = %+v, %v", wi, err)
	}
	var re *RemoteError
	if err := c.Call(ctx, "nosuch", nil, nil); !errors.As(err, &re) || !strings.Contains(re.Msg, "unknown request") {
		t.Errorf("unknown request: %v", err)
	}
}

// A worker without a clipboard or prompter answers with an error rather
// than pretending.
func TestRequestsUnavailable(t *testing.T) {
	c, _ := startWorker(t, WorkerOptions{Desktop: echoDesktop("w")}, Handler{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.ReadClipboard(ctx); err == nil {
		t.Error("getclip without a clipboard succeeded")
	}
	if _, err := c.Prompt(ctx, Prompt{Kind: "toast"}); err == nil {
		t.Error("prompt without a prompter succeeded")
	}
}

// The other direction: a worker-side Conn calls the service, and streams
// opened from either end carry frames both ways.
func TestBothDirections(t *testing.T) {
	a, b := net.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	service := Handler{
		Requests: map[string]func(context.Context, []byte) (any, error){
			"whoami": func(context.Context, []byte) (any, error) { return "service", nil },
		},
		Streams: map[string]func(context.Context, *Stream, []byte) error{
			"echo": func(ctx context.Context, s *Stream, body []byte) error {
				for {
					f, err := s.Read(ctx)
					if err != nil {
						return nil
					}
					s.Write(ctx, f)
				}
			},
		},
	}
	type res struct {
		c   *Conn
		err error
	}
	wc := make(chan res, 1)
	go func() {
		c, err := Open(ctx, b, RoleWorker, Handler{}, quiet())
		wc <- res{c, err}
	}()
	sc, err := Open(ctx, a, RoleService, service, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	r := <-wc
	if r.err != nil {
		t.Fatal(r.err)
	}
	w := r.c
	var who string
	if err := w.Call(ctx, "whoami", nil, &who); err != nil || who != "service" {
		t.Fatalf("worker -> service call = %q, %v", who, err)
	}
	var streams []*Stream
	for i := range 3 {
		s, err := w.OpenStream("echo", nil)
		if err != nil {
			t.Fatal(err)
		}
		if s.id%2 != 0 {
			t.Errorf("worker stream id %d is odd", s.id)
		}
		streams = append(streams, s)
		_ = i
	}
	for i, s := range streams {
		for j := range 5 {
			msg := fmt.Sprintf("s%d-%d", i, j)
			if err := s.Write(ctx, session.Frame{Binary: j%2 == 0, Data: []byte(msg)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, s := range streams {
		for j := range 5 {
			f, err := s.Read(ctx)
			want := fmt.Sprintf("s%d-%d", i, j)
			if err != nil || string(f.Data) != want || f.Binary != (j%2 == 0) {
				t.Fatalf("stream %d read %q binary %v, %v; want %q", i, f.Data, f.Binary, err, want)
			}
		}
	}
	if s, _ := w.OpenStream("nosuch", nil); s != nil {
		if _, err := s.Read(ctx); !errors.Is(err, session.ErrClosed) || !strings.Contains(err.Error(), "unknown stream kind") {
			t.Errorf("unknown stream: %v", err)
		}
	}
	w.Close()
	select {
	case <-sc.Done():
	case <-ctx.Done():
		t.Fatal("service side did not see the worker close")
	}
	if err := sc.Call(ctx, "x", nil, nil); !errors.Is(err, ErrConnClosed) {
		t.Errorf("call after close: %v", err)
	}
}

// A viewer's desktop session relays to the worker's desktop and back.
func TestRelayDesktop(t *testing.T) {
	c, _ := startWorker(t, WorkerOptions{Desktop: echoDesktop("w1")}, Handler{})
	agent, viewer := session.Pipe(8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Relay(ctx, agent, session.Info{UserID: "user//admin"}, func(context.Context) (*Client, error) { return c, nil }, RelayOptions{Logger: quiet()})
	}()
	expect := func(want string) {
		t.Helper()
		f, err := viewer.Read(ctx)
		if err != nil || string(f.Data) != want {
			t.Fatalf("viewer read %q, %v; want %q", f.Data, err, want)
		}
	}
	expect("w1:user//admin")
	viewer.Write(ctx, session.Frame{Binary: true, Data: []byte{0, 1, 0, 6, 0, 65}})
	expect("w1>\x00\x01\x00\x06\x00A")
	viewer.Write(ctx, session.Frame{Data: []byte(`{"type":"options"}`)})
	expect(`w1>{"type":"options"}`)
	viewer.Close()
	if err := <-done; err != nil {
		t.Errorf("Relay after the viewer left: %v", err)
	}
}

// When the worker goes away (its session ended) the viewer's session
// continues on the next worker get returns.
func TestRelayWorkerRestart(t *testing.T) {
	c1, done1 := startWorker(t, WorkerOptions{Desktop: echoDesktop("w1")}, Handler{})
	c2, _ := startWorker(t, WorkerOptions{Desktop: echoDesktop("w2")}, Handler{})
	var mu sync.Mutex
	gets := 0
	get := func(context.Context) (*Client, error) {
		mu.Lock()
		defer mu.Unlock()
		gets++
		if gets == 1 {
			return c1, nil
		}
		return c2, nil
	}
	agent, viewer := session.Pipe(8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Relay(ctx, agent, session.Info{UserID: "u"}, get, RelayOptions{Logger: quiet()}) }()
	if f, err := viewer.Read(ctx); err != nil || string(f.Data) != "w1:u" {
		t.Fatalf("first greeting %q, %v", f.Data, err)
	}
	c1.Close() // the first worker's pipe closes: its session ended
	if err := <-done1; err != nil {
		t.Errorf("worker 1 after its pipe closed: %v, want nil", err)
	}
	if f, err := viewer.Read(ctx); err != nil || string(f.Data) != "w2:u" {
		t.Fatalf("after the restart %q, %v", f.Data, err)
	}
	viewer.Write(ctx, session.Frame{Binary: true, Data: []byte("k")})
	if f, err := viewer.Read(ctx); err != nil || string(f.Data) != "w2>k" {
		t.Fatalf("input after the restart %q, %v", f.Data, err)
	}
	viewer.Close()
	<-done
}

// A worker that answers in another protocol version is refused.
func TestVersionMismatch(t *testing.T) {
	a, b := net.Pipe()
	go func() {
		buf, _ := wire.Append(nil, wire.Frame{Type: wire.Hello, Version: wire.Version + 1, Name: RoleWorker})
		b.Write(buf)
		rd := wire.NewReader(b)
		rd.Read()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Open(ctx, a, RoleService, Handler{}, quiet()); !errors.Is(err, wire.ErrVersion) {
		t.Errorf("Open with a version %d peer: %v", wire.Version+1, err)
	}
}

// A peer that never says hello does not hang the service.
func TestHelloTimeout(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	go func() { buf := make([]byte, 64); b.Read(buf) }()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := Open(ctx, a, RoleService, Handler{}, quiet()); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Open with a silent peer: %v", err)
	}
}

// testLogger logs through t, for the tests whose failures need the
// service's and worker's story.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// A request the caller gives up on is cancelled in the peer too: its
// handler's context ends (a prompt is taken down).
func TestCancelReachesPeer(t *testing.T) {
	cancelled := make(chan struct{})
	started := make(chan struct{})
	c, _ := startWorker(t, WorkerOptions{
		Desktop: echoDesktop("w"),
		Prompter: PrompterFunc(func(ctx context.Context, p Prompt) (Answer, error) {
			close(started)
			<-ctx.Done()
			close(cancelled)
			return Answer{}, ctx.Err()
		}),
	}, Handler{})
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := c.Prompt(ctx, Prompt{Kind: "consent"}); errc <- err }()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Prompt after cancel: %v", err)
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the worker's handler was not cancelled")
	}
}

// When no worker can be had (no session on the console), the viewer is
// told why, in a console message, and the session ends.
func TestRelayNoWorker(t *testing.T) {
	agent, viewer := session.Pipe(8)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- Relay(ctx, agent, session.Info{}, func(context.Context) (*Client, error) {
			return nil, fmt.Errorf("%w: no session is attached to the console", ErrNoSession)
		}, RelayOptions{Logger: quiet()})
	}()
	f, err := viewer.Read(ctx)
	if err != nil || f.Binary || !strings.Contains(string(f.Data), "no session is attached to the console") {
		t.Errorf("viewer got %q, %v", f.Data, err)
	}
	if err := <-done; !errors.Is(err, ErrNoSession) {
		t.Errorf("Relay = %v, want ErrNoSession", err)
	}
}
