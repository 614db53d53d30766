// Package update is our agent's self-update with server-lite: it answers
// the server's version query, verifies a signed offer against the pinned
// ServerID, downloads the binary over the control channel in blocks
// (resuming a transfer a cut connection interrupted), checks its size,
// SHA-384 and platform, puts it in place atomically with the previous
// binary kept aside, and restarts through the service manager. A
// watchdog, run from the previous binary outside the service, restores it
// when the new one does not come online within the manifest's trial time.
// Wire format: proto/agentupdate.
//
// Steps and who takes them:
//
//  1. offer (agent): signature, ServerID, platform, size checked; refused
//     when the agent does not run as a service (nothing could restart it).
//  2. download (agent): blocks into a hidden, non-executable file beside
//     the binary; a cut connection leaves it for the next offer to resume.
//  3. check (agent): whole-file SHA-384 and size against the manifest, the
//     executable header against the platform; else the file is deleted.
//  4. install (agent): state "trial" with a deadline, Replace (previous
//     kept as <exe>.previous), watchdog started from the previous binary;
//     any failure undoes the replace and records "failed".
//  5. restart (agent): Config.Restart exits; the service manager's
//     restart-on-failure starts the new binary.
//  6. confirm (new binary): Boot finds the trial, Authenticated records
//     "confirmed" once the server has authenticated it.
//  7. rollback (watchdog): at the deadline, unless confirmed: stop the
//     service, Restore the previous binary, record "rolledback", start.
//
// With MeshCentral nothing here runs: MeshCentral never sends the query,
// and the agent keeps answering command 12 with the zero hash (core).
package update

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/meshgo/meshagent/proto/agentupdate"
	"github.com/meshgo/meshagent/proto/handshake"
)

// Conn is the control connection an exchange runs on (agent/core
// implements it).
type Conn = agentupdate.Conn

// Config configures an Updater.
type Config struct {
	Exe      string // the running binary; "": os.Executable
	DataDir  string // where StateFile lives
	Version  string
	Platform string // GOOS/GOARCH; "": this build's
	Logger   *slog.Logger
	// Service names the service this agent runs as; "" (the foreground)
	// refuses offers: nothing would start the new binary or restore the
	// old one.
	Service string
	// WatchdogArgs are the arguments the previous binary is started with
	// to watch the trial (cmd/meshagent's "update-watchdog ...").
	WatchdogArgs []string
	// Spawn starts the watchdog detached from the service; nil: Detach.
	Spawn func(exe string, args []string) error
	// Restart ends this process for the service manager to start the new
	// binary. Required with Service.
	Restart func()
	// OnStatus, if set, observes every status reported (tests).
	OnStatus func(agentupdate.Message)
}

// Updater serves the update exchange for one agent process.
type Updater struct {
	cfg Config
	log *slog.Logger

	hashOnce sync.Once
	selfHash string
	hashErr  error

	mu    sync.Mutex
	trial *State // set while this binary runs in trial
	xfer  *transfer
	busy  bool // installing: no new offer
}

type transfer struct {
	conn     Conn
	id       string
	man      agentupdate.Manifest
	hash     [handshake.HashLen]byte
	path     string
	f        *os.File
	next     uint64 // next offset to request
	recv     uint64 // next offset expected
	resumed  uint64
	started  time.Time
	finished bool
}

// New builds an Updater.
func New(cfg Config) (*Updater, error) {
	if cfg.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("update: locate executable: %w", err)
		}
		if r, err := filepath.EvalSymlinks(exe); err == nil {
			exe = r
		}
		cfg.Exe = exe
	}
	if cfg.Platform == "" {
		cfg.Platform = runtime.GOOS + "/" + runtime.GOARCH
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Spawn == nil {
		cfg.Spawn = Detach
	}
	if cfg.Service != "" && cfg.Restart == nil {
		return nil, errors.New("update: Restart is required with Service")
	}
	return &Updater{cfg: cfg, log: cfg.Logger.With("component", "update")}, nil
}

// SelfHash is the running binary's SHA-384 (hex), computed once.
func (u *Updater) SelfHash() (string, error) {
	u.hashOnce.Do(func() { u.selfHash, u.hashErr = FileSHA384(u.cfg.Exe) })
	return u.selfHash, u.hashErr
}

// Boot runs once at start-up, before the agent connects: it finds out
// whether this binary is a new one in trial and removes what a finished
// update left behind. It reports whether this run is a trial.
func (u *Updater) Boot() bool {
	st, err := ReadState(u.cfg.DataDir)
	if err != nil {
		u.log.Warn("cannot read the update state; ignoring it", "err", err)
		return false
	}
	u.cleanTemps("")
	if st == nil {
		return false
	}
	self, err := u.SelfHash()
	if err != nil {
		u.log.Warn("cannot hash this binary", "err", err)
		return false
	}
	if st.State == Trial && st.To.SHA384 == self && st.Exe == u.cfg.Exe {
		u.mu.Lock()
		u.trial = st
		u.mu.Unlock()
		left := time.Until(time.Unix(st.Deadline, 0)).Round(time.Second)
		u.log.Info("running a new binary in trial: it must come online before the watchdog restores the previous one",
			"version", u.cfg.Version, "from", st.From.Version, "left", left)
		return true
	}
	if st.State != Trial {
		// Confirmed or rolled back: the previous binary is no longer needed
		// (on Windows removing it fails while the watchdog still runs it;
		// the next start removes it).
		if p := st.Previous; p != "" && p != u.cfg.Exe {
			if err := os.Remove(p); err == nil {
				u.log.Debug("removed the previous binary", "path", p)
			}
		}
		os.Remove(u.cfg.Exe + ".failed")
	}
	if st.State == agentupdate.StateRolledBack && st.From.SHA384 == self {
		u.log.Warn("the last update was rolled back; running the previous binary", "to", st.To.Version, "why", st.Msg)
	}
	return false
}

// Authenticated is called when a server authenticated this agent: a new
// binary in trial is now confirmed.
func (u *Updater) Authenticated() {
	u.mu.Lock()
	st := u.trial
	u.trial = nil
	u.mu.Unlock()
	if st == nil {
		return
	}
	cur, err := ReadState(u.cfg.DataDir)
	if err != nil || cur == nil || cur.State != Trial || cur.To.SHA384 != st.To.SHA384 {
		u.log.Warn("update trial ended before this binary came online; not confirming", "err", err)
		return
	}
	cur.State, cur.Msg = agentupdate.StateConfirmed, "came online in "+time.Since(time.Unix(cur.Time, 0)).Round(time.Second).String()
	if err := WriteState(u.cfg.DataDir, cur); err != nil {
		u.log.Error("cannot record the update as confirmed; the watchdog will restore the previous binary", "err", err)
		return
	}
	u.log.Info("update confirmed: this binary came online within its trial", "version", u.cfg.Version, "from", cur.From.Version)
	if err := os.Remove(cur.Previous); err == nil {
		u.log.Debug("removed the previous binary", "path", cur.Previous)
	}
}

// HandleJSON serves one meshgoupdate message from the server.
func (u *Updater) HandleJSON(c Conn, b []byte) {
	m, err := agentupdate.ParseMessage(b)
	if err != nil {
		u.log.Warn("ignoring malformed update message", "err", err)
		return
	}
	switch m.Op {
	case agentupdate.OpQuery:
		u.sendInfo(c)
	case agentupdate.OpOffer:
		u.offer(c, m)
	default:
		u.log.Debug("ignoring update message", "op", m.Op)
	}
}

func (u *Updater) sendInfo(c Conn) {
	self, err := u.SelfHash()
	info := agentupdate.Message{Action: agentupdate.Action, Op: agentupdate.OpInfo, Version: u.cfg.Version, Platform: u.cfg.Platform, SHA384: self}
	switch {
	case err != nil:
		info.Why = "cannot hash this binary: " + err.Error()
	case u.cfg.Service == "":
		info.Why = "not running as a service"
	default:
		info.Updatable = true
	}
	if st, err := ReadState(u.cfg.DataDir); err == nil && st != nil {
		info.Last = st.Last()
	}
	if err := c.SendJSON(info); err != nil {
		u.log.Debug("update info not sent", "err", err)
	}
}

func (u *Updater) status(c Conn, id, state, msg string, man *agentupdate.Manifest) {
	s := agentupdate.Message{Action: agentupdate.Action, Op: agentupdate.OpStatus, ID: id, State: state, Msg: msg}
	if man != nil {
		s.Version, s.SHA384, s.Platform = man.Version, man.SHA384, man.Platform
	}
	if u.cfg.OnStatus != nil {
		u.cfg.OnStatus(s)
	}
	if c == nil {
		return
	}
	if err := c.SendJSON(s); err != nil {
		u.log.Debug("update status not sent", "state", state, "err", err)
	}
}

func (u *Updater) refuse(c Conn, id string, man *agentupdate.Manifest, err error) {
	u.log.Warn("update refused; staying on this version", "version", u.cfg.Version, "err", err)
	u.status(c, id, agentupdate.StateRefused, err.Error(), man)
}

func (u *Updater) offer(c Conn, m agentupdate.Message) {
	man, err := agentupdate.Verify(m.Offer(), c.ServerID())
	if err != nil {
		u.refuse(c, m.ID, nil, err)
		return
	}
	if man.Platform != u.cfg.Platform {
		u.refuse(c, m.ID, &man, fmt.Errorf("binary for %s, this agent runs on %s", man.Platform, u.cfg.Platform))
		return
	}
	if u.cfg.Service == "" {
		u.refuse(c, m.ID, &man, errors.New("not running as a service: nothing would start the new binary or restore this one"))
		return
	}
	self, err := u.SelfHash()
	if err != nil {
		u.refuse(c, m.ID, &man, fmt.Errorf("cannot hash this binary: %w", err))
		return
	}
	if man.SHA384 == self {
		u.status(c, m.ID, agentupdate.StateCurrent, "already running this binary", &man)
		return
	}
	hash, _ := man.Hash()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.busy {
		u.log.Info("update offer ignored: an update is being installed")
		return
	}
	if u.trial != nil {
		u.refuse(c, m.ID, &man, errors.New("this binary is itself in trial"))
		return
	}
	if x := u.xfer; x != nil {
		if x.hash == hash && x.conn == c {
			return // the same offer again: the transfer runs
		}
		x.f.Close()
		u.xfer = nil
	}
	path := tempPath(u.cfg.Exe, man.SHA384)
	u.cleanTemps(path)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		u.mu.Unlock()
		u.refuse(c, m.ID, &man, fmt.Errorf("cannot write beside the binary: %w", err))
		u.mu.Lock()
		return
	}
	x := &transfer{conn: c, id: m.ID, man: man, hash: hash, path: path, f: f, started: time.Now()}
	if st, err := f.Stat(); err == nil && st.Size() > 0 && st.Size() <= man.Size {
		// A download the last connection did not finish: its bytes are
		// kept, as received, in order; the whole-file hash at the end
		// catches anything wrong with them.
		x.resumed = uint64(st.Size())
	} else if err == nil && st.Size() > man.Size {
		f.Truncate(0)
	}
	x.next, x.recv = x.resumed, x.resumed
	u.xfer = x
	msg := fmt.Sprintf("%d bytes", man.Size)
	if x.resumed > 0 {
		msg = fmt.Sprintf("%d bytes, resuming at %d", man.Size, x.resumed)
	}
	u.log.Info("update offered and verified; downloading", "version", man.Version, "size", man.Size, "resume_at", x.resumed)
	u.status(c, m.ID, agentupdate.StateDownloading, msg, &man)
	if x.recv == uint64(man.Size) {
		x.finished = true
		go u.finish(x)
		return
	}
	u.request(x)
}

// request keeps up to Window block requests outstanding. Called with mu.
func (u *Updater) request(x *transfer) {
	for x.next < uint64(x.man.Size) && x.next < x.recv+agentupdate.Window*agentupdate.BlockSize {
		if err := x.conn.SendBinary(agentupdate.EncodeRequest(agentupdate.Request{Offset: x.next, SHA384: x.hash})); err != nil {
			return // the connection ends; Disconnected cleans up
		}
		x.next += agentupdate.BlockSize
	}
}

// HandleBlock serves one block (command 14 with request id 1).
func (u *Updater) HandleBlock(c Conn, msg []byte) {
	off, data, err := agentupdate.DecodeBlock(msg)
	u.mu.Lock()
	defer u.mu.Unlock()
	x := u.xfer
	if x == nil || x.conn != c || x.finished {
		u.log.Warn("ignoring agent update block: no update of ours in progress (MeshCentral's native update is refused)")
		return
	}
	if err == nil && (off != x.recv || off+uint64(len(data)) > uint64(x.man.Size) || len(data) == 0) {
		err = fmt.Errorf("block at %d+%d, expected %d of %d", off, len(data), x.recv, x.man.Size)
	}
	if err == nil {
		_, err = x.f.WriteAt(data, int64(off))
	}
	if err != nil {
		x.f.Close()
		os.Remove(x.path)
		u.xfer = nil
		u.mu.Unlock()
		u.log.Warn("update download failed; partial file removed", "err", err)
		u.status(c, x.id, agentupdate.StateFailed, "download: "+err.Error(), &x.man)
		u.mu.Lock()
		return
	}
	x.recv += uint64(len(data))
	if x.recv == uint64(x.man.Size) {
		x.finished = true
		go u.finish(x)
		return
	}
	u.request(x)
}

// Disconnected ends the transfer running on c; its file stays for the
// next offer to resume.
func (u *Updater) Disconnected(c Conn) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if x := u.xfer; x != nil && x.conn == c && !x.finished {
		x.f.Close()
		u.xfer = nil
		u.log.Info("update download interrupted by the connection's end; it resumes on the next offer", "received", x.recv, "size", x.man.Size)
	}
}

// finish checks the downloaded file and installs it.
func (u *Updater) finish(x *transfer) {
	fail := func(state string, err error) {
		x.f.Close()
		os.Remove(x.path)
		u.mu.Lock()
		if u.xfer == x {
			u.xfer = nil
		}
		u.busy = false
		u.mu.Unlock()
		if state == agentupdate.StateRefused {
			u.refuse(x.conn, x.id, &x.man, err)
		} else {
			u.log.Error("update failed; staying on this version", "version", u.cfg.Version, "err", err)
			u.status(x.conn, x.id, state, err.Error(), &x.man)
		}
	}
	u.mu.Lock()
	u.busy = true
	u.mu.Unlock()
	if err := x.f.Sync(); err != nil {
		fail(agentupdate.StateFailed, fmt.Errorf("sync %s: %w", x.path, err))
		return
	}
	x.f.Close()
	got, err := FileSHA384(x.path)
	if err != nil {
		fail(agentupdate.StateFailed, err)
		return
	}
	if st, err := os.Stat(x.path); err != nil || st.Size() != x.man.Size {
		fail(agentupdate.StateRefused, fmt.Errorf("downloaded file is not %d bytes", x.man.Size))
		return
	}
	if got != x.man.SHA384 {
		fail(agentupdate.StateRefused, fmt.Errorf("downloaded binary's SHA-384 %s… is not the signed %s…", got[:16], x.man.SHA384[:16]))
		return
	}
	if err := CheckPlatform(x.path, u.cfg.Platform); err != nil {
		fail(agentupdate.StateRefused, fmt.Errorf("binary is not for %s: %w", u.cfg.Platform, err))
		return
	}
	if err := os.Chmod(x.path, 0o755); err != nil {
		fail(agentupdate.StateFailed, err)
		return
	}
	u.log.Info("update downloaded and checked", "version", x.man.Version, "sha384", got[:16], "seconds", time.Since(x.started).Seconds())
	u.status(x.conn, x.id, agentupdate.StateDownloaded, fmt.Sprintf("SHA-384 and platform checked, %d bytes", x.man.Size), &x.man)

	if err := u.install(x); err != nil {
		fail(agentupdate.StateFailed, err)
		return
	}
	u.status(x.conn, x.id, agentupdate.StateInstalled, fmt.Sprintf("previous binary kept at %s; watchdog restores it unless the new one comes online within %d s", filepath.Base(PreviousPath(u.cfg.Exe)), x.man.Trial), &x.man)
	u.log.Info("new binary in place; restarting through the service manager", "service", u.cfg.Service, "version", x.man.Version)
	u.status(x.conn, x.id, agentupdate.StateRestarting, "exiting for "+u.cfg.Service+" to be restarted", &x.man)
	u.cfg.Restart()
}

// install records the trial, replaces the binary and starts the watchdog;
// on any failure it leaves the previous binary in place.
func (u *Updater) install(x *transfer) error {
	self, _ := u.SelfHash()
	prev := PreviousPath(u.cfg.Exe)
	st := &State{
		ID: x.id, State: Trial, Exe: u.cfg.Exe, Previous: prev,
		From: Build{Version: u.cfg.Version, SHA384: self}, To: Build{Version: x.man.Version, SHA384: x.man.SHA384},
		Trial: x.man.Trial, Deadline: time.Now().Add(time.Duration(x.man.Trial) * time.Second).Unix(),
	}
	if err := WriteState(u.cfg.DataDir, st); err != nil {
		return err
	}
	undoState := func(err error) error {
		st.State, st.Msg = agentupdate.StateFailed, err.Error()
		if werr := WriteState(u.cfg.DataDir, st); werr != nil {
			u.log.Error("cannot record the failed update", "err", werr)
		}
		return err
	}
	if err := Replace(u.cfg.Exe, x.path, prev); err != nil {
		return undoState(err)
	}
	err := u.cfg.Spawn(prev, u.cfg.WatchdogArgs)
	if err == nil {
		err = u.waitWatchdog(st)
	}
	if err != nil {
		err = fmt.Errorf("start the watchdog: %w", err)
		if rerr := Restore(u.cfg.Exe, prev); rerr != nil {
			// Both names hold whole binaries; the new one stays without a
			// watchdog. Say so.
			err = fmt.Errorf("%w; restoring the previous binary also failed: %v", err, rerr)
		}
		return undoState(err)
	}
	return nil
}

// WatchdogWait is how long install waits for the watchdog to report that
// it watches.
var WatchdogWait = 30 * time.Second

// waitWatchdog waits until the watchdog recorded its process id in the
// state: a watchdog that started but could not find the service (and so
// could not restore anything) must not let the update go ahead.
func (u *Updater) waitWatchdog(st *State) error {
	deadline := time.Now().Add(WatchdogWait)
	for time.Now().Before(deadline) {
		cur, err := ReadState(u.cfg.DataDir)
		if err == nil && cur != nil && cur.State == Trial && cur.To.SHA384 == st.To.SHA384 && cur.Watchdog != 0 {
			u.log.Debug("update watchdog running", "pid", cur.Watchdog)
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("it did not report within %v (see update-watchdog.log)", WatchdogWait)
}

// cleanTemps removes downloads other than keep left beside the binary.
func (u *Updater) cleanTemps(keep string) {
	dir := filepath.Dir(u.cfg.Exe)
	prefix := "." + filepath.Base(u.cfg.Exe) + ".update-"
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), prefix) && p != keep {
			if os.Remove(p) == nil {
				u.log.Debug("removed a stale update download", "path", p)
			}
		}
	}
}

// Watch is the watchdog: run by the previous binary (detached from the
// service) until the trial in dir's state ends. At the deadline, unless
// the new binary confirmed, it stops the service, restores the previous
// binary, records "rolledback" and starts the service again.
func Watch(ctx context.Context, dir string, svc Service, log *slog.Logger, poll time.Duration) error {
	if poll <= 0 {
		poll = time.Second
	}
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	if st == nil || st.State != Trial {
		log.Info("update watchdog: no trial to watch")
		return nil
	}
	st.Watchdog = os.Getpid()
	if err := WriteState(dir, st); err != nil {
		return fmt.Errorf("update watchdog: record itself: %w", err)
	}
	log.Info("update watchdog: watching the trial", "to", st.To.Version, "deadline", time.Unix(st.Deadline, 0).UTC().Format(time.RFC3339))
	for time.Now().Before(time.Unix(st.Deadline, 0)) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
		cur, err := ReadState(dir)
		if err != nil || cur == nil {
			continue
		}
		if cur.State != Trial || cur.To.SHA384 != st.To.SHA384 {
			log.Info("update watchdog: trial ended", "state", cur.State)
			return nil
		}
	}
	log.Warn("update watchdog: the new binary did not come online within its trial; stopping the service", "to", st.To.Version, "trial_s", st.Trial)
	if err := svc.Stop(ctx); err != nil {
		log.Warn("update watchdog: stopping the service failed; restoring anyway", "err", err)
	}
	if cur, err := ReadState(dir); err == nil && cur != nil && cur.State != Trial {
		log.Info("update watchdog: the new binary confirmed at the last moment; starting it again", "state", cur.State)
		return svc.Start(ctx)
	}
	if err := Restore(st.Exe, st.Previous); err != nil {
		st.State, st.Msg = agentupdate.StateFailed, "rollback: "+err.Error()
		WriteState(dir, st)
		log.Error("update watchdog: cannot restore the previous binary", "err", err)
		svc.Start(ctx)
		return err
	}
	label := st.To.Version
	if label == "" {
		label = "sha384 " + Short(st.To.SHA384)
	}
	st.State, st.Msg = agentupdate.StateRolledBack, fmt.Sprintf("version %s did not come online within %d s", label, st.Trial)
	if err := WriteState(dir, st); err != nil {
		log.Error("update watchdog: cannot record the rollback", "err", err)
	}
	log.Warn("update watchdog: previous binary restored; starting the service", "version", st.From.Version)
	if err := svc.Start(ctx); err != nil {
		return fmt.Errorf("start the service after the rollback: %w", err)
	}
	log.Info("update watchdog: service started on the previous binary")
	return nil
}

// Service is what the watchdog needs of the service manager.
type Service interface {
	Stop(ctx context.Context) error
	Start(ctx context.Context) error
}

// Short returns a hash's first 16 hex digits, for logs.
func Short(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}
