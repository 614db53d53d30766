package sessionworker

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/meshgo/meshagent/agent/osuser"
	"golang.org/x/sys/windows"
)

// Manager starts session workers for the service and keeps one per
// session: a desktop viewer, a clipboard request and a prompt for the same
// session share it. A worker started for "the console" is replaced when
// the console's session or its user changes (fast user switching, logon,
// logoff); any worker is dropped when its process exits or its pipe
// breaks (the session ended), and Relay then asks for a new one.
type Manager struct {
	// Exe is the agent executable to start; "" means os.Executable().
	Exe string
	// Token gives the worker's primary token for a target; nil means
	// TokenFor (which needs LocalSystem). Tests as an ordinary user pass
	// a duplicate of their own token.
	Token func(Target) (windows.Token, error)
	// Sessions and Console read the session table; nil means
	// osuser.Sessions and ConsoleSession.
	Sessions func() ([]osuser.Session, error)
	Console  func() uint32
	// StartTimeout bounds a worker's start and hello; 0 means 30 s.
	StartTimeout time.Duration
	// WatchEvery is how often the console session is checked for a
	// change; 0 means 1 s.
	WatchEvery time.Duration
	Logger     *slog.Logger

	mu       sync.Mutex
	workers  map[uint32]*worker
	watching bool
	closed   bool
	stop     chan struct{}
}

type worker struct {
	client    *Client
	proc      windows.Handle
	pid       uint32
	target    Target
	byConsole bool
	dacl      string
	exited    chan struct{}
}

func (m *Manager) log() *slog.Logger {
	if m.Logger != nil {
		return m.Logger
	}
	return slog.Default()
}

func (m *Manager) plan(tsid *uint32) (Target, error) {
	sessions, console := osuser.Sessions, ConsoleSession
	if m.Sessions != nil {
		sessions = m.Sessions
	}
	if m.Console != nil {
		console = m.Console
	}
	list, err := sessions()
	if err != nil {
		m.log().Debug("sessionworker: session list", "err", err)
	}
	return Choose(list, console(), tsid)
}

// Get returns the worker for the viewer's chosen session (tsid) or, when
// tsid is nil, for the console session, starting it when needed.
func (m *Manager) Get(ctx context.Context, tsid *uint32) (*Client, error) {
	t, err := m.plan(tsid)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("sessionworker: %w", ErrConnClosed)
	}
	if m.workers == nil {
		m.workers = map[uint32]*worker{}
		m.stop = make(chan struct{})
	}
	if w := m.workers[t.Session]; w != nil {
		select {
		case <-w.client.Done():
		default:
			if w.target == t {
				m.mu.Unlock()
				return w.client, nil
			}
		}
		m.mu.Unlock()
		w.client.Close()
		m.mu.Lock()
	}
	if !m.watching {
		m.watching = true
		go m.watch()
	}
	m.mu.Unlock()

	w, err := m.start(ctx, t)
	if err != nil {
		return nil, err
	}
	w.byConsole = tsid == nil
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.workers[t.Session]; old != nil {
		go old.client.Close()
	}
	m.workers[t.Session] = w
	go m.reap(w)
	return w.client, nil
}

// start creates the pipe for t's token, starts the worker and waits for
// its hello.
func (m *Manager) start(ctx context.Context, t Target) (*worker, error) {
	exe := m.Exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("sessionworker: %w", err)
		}
	}
	tokenFor := m.Token
	if tokenFor == nil {
		tokenFor = TokenFor
	}
	tok, err := tokenFor(t)
	if err != nil {
		return nil, fmt.Errorf("sessionworker token for session %d: %w", t.Session, err)
	}
	defer tok.Close()
	sids, err := tokenSIDs(tok)
	if err != nil {
		return nil, fmt.Errorf("sessionworker: %w", err)
	}
	l, err := listenPipe(newPipeName(), sids)
	if err != nil {
		return nil, fmt.Errorf("sessionworker: %w", err)
	}
	defer l.Close()
	dacl, _ := l.DACL()
	proc, pid, err := spawn(tok, exe, l.name)
	if err != nil {
		return nil, fmt.Errorf("sessionworker: %w", err)
	}
	timeout := m.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	fail := func(err error) (*worker, error) {
		windows.TerminateProcess(proc, 1)
		windows.CloseHandle(proc)
		return nil, fmt.Errorf("sessionworker in session %d: %w", t.Session, err)
	}
	f, err := l.accept(sctx, pid)
	if err != nil {
		return fail(err)
	}
	h := Handler{Requests: map[string]func(context.Context, []byte) (any, error){ReqLog: logRequest(m.log(), pid, t.Session)}}
	c, err := Open(sctx, f, RoleService, h, m.log())
	if err != nil {
		return fail(err)
	}
	m.log().Info("sessionworker: started", "session", t.Session, "asUser", t.AsUser, "user", t.User, "pid", pid, "dacl", dacl)
	return &worker{client: Dial(ctx, c), proc: proc, pid: pid, target: t, dacl: dacl, exited: make(chan struct{})}, nil
}

// reap drops w when its process exits or its pipe breaks, and makes sure
// the process is gone: a worker whose pipe closed exits by itself; one
// that does not within five seconds is terminated.
func (m *Manager) reap(w *worker) {
	go func() {
		windows.WaitForSingleObject(w.proc, windows.INFINITE)
		close(w.exited)
		w.client.Close()
	}()
	<-w.client.Done()
	m.mu.Lock()
	if m.workers[w.target.Session] == w {
		delete(m.workers, w.target.Session)
	}
	m.mu.Unlock()
	select {
	case <-w.exited:
	case <-time.After(5 * time.Second):
		m.log().Warn("sessionworker: worker did not exit after its pipe closed; terminating", "pid", w.pid)
		windows.TerminateProcess(w.proc, 1)
		<-w.exited
	}
	var code uint32
	windows.GetExitCodeProcess(w.proc, &code)
	windows.CloseHandle(w.proc)
	m.log().Info("sessionworker: ended", "session", w.target.Session, "pid", w.pid, "exit", code)
}

// watch replaces console workers whose target is no longer what the
// console shows.
func (m *Manager) watch() {
	every := m.WatchEvery
	if every == 0 {
		every = time.Second
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-tick.C:
		}
		t, err := m.plan(nil)
		m.mu.Lock()
		var drop []*worker
		for _, w := range m.workers {
			if w.byConsole && (err != nil || w.target != t) {
				drop = append(drop, w)
			}
		}
		m.mu.Unlock()
		for _, w := range drop {
			m.log().Info("sessionworker: console session changed; replacing its worker", "was", w.target.Session, "now", t.Session, "err", err)
			w.client.Close()
		}
	}
}

// PipeDACL is the DACL, as SDDL, of the pipe the worker for session was
// started on ("" when there is none): for logs and tests.
func (m *Manager) PipeDACL(session uint32) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := m.workers[session]; w != nil {
		return w.dacl
	}
	return ""
}

// Close ends every worker (their pipes close and they exit) and stops
// watching.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	ws := m.workers
	m.workers = nil
	if m.stop != nil {
		close(m.stop)
	}
	m.mu.Unlock()
	for _, w := range ws {
		w.client.Close()
		select {
		case <-w.exited:
		case <-time.After(10 * time.Second):
		}
	}
	return nil
}
