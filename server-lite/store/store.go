// Package store is server-lite's embedded database (bbolt): device groups,
// devices, users and an append-only event log. One file, survives restarts.
//
// Records are JSON values in one bucket per kind, keyed by their
// MeshCentral-style id ("mesh//…", "node//…", "user//…"), so ids that appear
// in the protocol are the keys an administrator sees.
//
// Users: the accounts package (another engineer) owns login, password
// hashing and rights policy. This package only stores User records through a
// plain CRUD (PutUser, User, Users, DeleteUser); it never interprets
// PasswordHash or Links. Add fields to User rather than a second bucket.
//
// Writes from many agent connections are coalesced with bbolt's Batch, so
// thousands of agents connecting at once share fsyncs instead of queueing
// one fsync each.
package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
	bolt "go.etcd.io/bbolt"
)

var (
	bGroups  = []byte("groups")
	bDevices = []byte("devices")
	bUsers   = []byte("users")
	bEvents  = []byte("events")
	bMeta    = []byte("meta")
	// bDevInfo holds the large, rarely read parts of device records
	// (sysinfo, netinfo), apart from the records every listing decodes
	// (issue 20, finding 2). Keys: device id + "\x00" + field name.
	bDevInfo = []byte("devinfo")
)

// MaxDeviceInfo bounds one stored sysinfo or netinfo document; agentconn
// refuses larger ones before they get here, and a write of a larger one
// fails (ErrTooLarge) rather than storing it.
const MaxDeviceInfo = 256 << 10

// ErrTooLarge is returned (wrapped) for a device field over MaxDeviceInfo.
var ErrTooLarge = errors.New("store: device information too large")

// ErrNotFound is returned (wrapped) when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrNoChange, returned by an UpdateDevice or UpdateDeviceAsync function,
// means the record already says what the caller would write: nothing is
// written (the events, if any, still are), and UpdateDevice returns the
// function's copy as it left it. Agents repeat their netinfo and
// coreinfo on every reconnect; in a reconnect storm most updates are
// these.
var ErrNoChange = errors.New("store: no change")

// MeshTypeAgent is the group type for agent-managed devices (MeshCentral
// mtype 2); the only type server-lite creates and accepts agents into.
const MeshTypeAgent = 2

// Group is a device group.
type Group struct {
	ID      string    `json:"_id"` // "mesh//<64 chars>"
	Name    string    `json:"name"`
	MType   int       `json:"mtype"`
	Desc    string    `json:"desc,omitempty"`
	Created time.Time `json:"created"`
}

// MeshIDBytes returns the 48 bytes behind the group id (the .msh MeshID and
// what agents send in AuthInfo).
func (g Group) MeshIDBytes() ([]byte, error) {
	b, err := handshake.DecodeID(strings.TrimPrefix(g.ID, handshake.MeshIDPrefix))
	if err != nil || len(b) != handshake.HashLen {
		return nil, fmt.Errorf("store: group id %q: bad id (%v)", g.ID, err)
	}
	return b, nil
}

// Device is one agent-managed machine.
type Device struct {
	ID           string `json:"_id"` // "node//<64 chars>"
	GroupID      string `json:"meshid"`
	Name         string `json:"name"`
	RName        string `json:"rname"` // computer name from AuthInfo
	Icon         uint32 `json:"icon"`  // platform type
	AgentID      uint32 `json:"agentId"`
	AgentVersion uint32 `json:"agentVer"`
	Caps         uint32 `json:"caps"`
	CommitDate   string `json:"commitDate,omitempty"`
	HostInfo     string `json:"hostInfo,omitempty"`
	Tag          string `json:"tag,omitempty"`
	CoreName     string `json:"core,omitempty"`     // coreinfo value
	CoreHash     string `json:"coreHash,omitempty"` // hex SHA-384 the agent reported
	// PinnedCoreHash is set when an administrator pushed a custom core: an
	// agent reporting this hash is current and is not sent the default.
	PinnedCoreHash string          `json:"pinnedCoreHash,omitempty"`
	OSDesc         string          `json:"osdesc,omitempty"`
	Root           bool            `json:"root,omitempty"`
	Users          []string        `json:"users,omitempty"`
	IP             string          `json:"ip,omitempty"`
	FirstConnect   time.Time       `json:"firstconnect"`
	LastConnect    time.Time       `json:"lastconnect"`
	LastSeen       time.Time       `json:"lastseen"`
	SysInfo        json.RawMessage `json:"sysinfo,omitempty"`
	// SysInfoHash is SysInfo's "hash", sent back in the server's sysinfo
	// request so that an agent whose system information has not changed
	// does not send it again (control.md §6.2, §6.5).
	SysInfoHash string          `json:"sysinfoHash,omitempty"`
	NetInfo     json.RawMessage `json:"netinfo,omitempty"`
	Tags        []string        `json:"tags,omitempty"`
	// Desc is the administrator's free-text note on the device
	// (MeshCentral's node.desc, set by changedevice).
	Desc string `json:"desc,omitempty"`
	// AgentVersionName and AgentHash are what our agent reports to
	// server-lite's update query (server-lite/updates): its version string
	// and the SHA-384 of its binary.
	AgentVersionName string `json:"agentVersionName,omitempty"`
	AgentHash        string `json:"agentHash,omitempty"`
}

// User is an account record. Its meaning belongs to the accounts package;
// see the package documentation.
type User struct {
	ID           string `json:"_id"` // "user//<name>"
	Name         string `json:"name"`
	PasswordHash string `json:"passwordHash,omitempty"` // opaque to this package
	// SiteAdmin holds server-wide rights bits (0xFFFFFFFF = full admin).
	SiteAdmin uint32 `json:"siteadmin"`
	// Links maps a group id ("mesh//…") or device id ("node//…") to
	// MeshCentral rights bits on it.
	Links   map[string]uint32 `json:"links,omitempty"`
	Email   string            `json:"email,omitempty"`
	Created time.Time         `json:"creation"`
	Extra   json.RawMessage   `json:"extra,omitempty"` // free for the accounts package
}

// Event kinds written by server-lite itself. Other packages may use their own.
const (
	EvConnect    = "connect"
	EvDisconnect = "disconnect"
	EvCorePush   = "corepush"
	EvAgentLog   = "agentlog"
	EvAdmin      = "admin"
	EvUpdate     = "agentupdate" // a step of an agent self-update (server-lite/updates)
)

// Event is one audit-log entry: who did what to which device, from where, when.
type Event struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Who    string    `json:"who,omitempty"`    // user id, or the node id for agent events
	Action string    `json:"action,omitempty"` // free text: what was done
	NodeID string    `json:"nodeid,omitempty"`
	From   string    `json:"from,omitempty"` // remote address
	Msg    string    `json:"msg,omitempty"`
}

// Store is the opened database; safe for concurrent use.
type Store struct {
	db  *bolt.DB
	log *slog.Logger

	// Write-behind queue for UpdateDeviceAsync, applied by one goroutine
	// in large transactions.
	queue   chan asyncOp
	flushed chan struct{}
	qmu     sync.RWMutex // held for reading while sending on queue
	qclosed bool

	// Groups change rarely and are read on every agent connection: they
	// are cached (plain values, safe to hand out), filled on first read
	// and dropped by PutGroup and DeleteGroup, the only writers of the
	// groups bucket.
	gmu    sync.RWMutex
	groups map[string]Group
}

type asyncOp struct {
	fn   func(tx *bolt.Tx) error
	done chan struct{} // Flush marker when fn is nil
}

const (
	asyncQueueLen = 8192
	asyncMaxBatch = 2000
	asyncDelay    = 50 * time.Millisecond
)

// Options configure Open.
type Options struct {
	// Logger receives what the write-behind queue cannot report to a
	// caller (a queued write that failed or was dropped); nil means
	// slog.Default().
	Logger *slog.Logger
}

// Open opens (creating if needed, mode 0600) the database file. At most one
// Options is used; it is variadic so that tests can omit it.
func Open(path string, opts ...Options) (*Store, error) {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	// Batches of concurrent connection updates share one commit.
	db.MaxBatchDelay = 5 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bGroups, bDevices, bUsers, bEvents, bMeta, bDevInfo} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("store: init %s: %w", path, err)
	}
	log := o.Logger.With("component", "store")
	if err := db.Update(migrateDevInfo); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: move device information apart in %s: %w", path, err)
	}
	if db, err = compactIfSparse(db, path, log); err != nil {
		return nil, err
	}
	s := &Store{db: db, log: log, queue: make(chan asyncOp, asyncQueueLen), flushed: make(chan struct{})}
	go s.writer()
	return s, nil
}

// Close flushes queued writes and closes the database.
func (s *Store) Close() error {
	s.qmu.Lock()
	if !s.qclosed {
		s.qclosed = true
		close(s.queue)
	}
	s.qmu.Unlock()
	<-s.flushed
	return s.db.Close()
}

// enqueue queues op; it reports false once the store is closed.
func (s *Store) enqueue(op asyncOp) bool {
	s.qmu.RLock()
	defer s.qmu.RUnlock()
	if s.qclosed {
		return false
	}
	s.queue <- op
	return true
}

// writer applies queued operations: whatever is queued within asyncDelay
// (up to asyncMaxBatch) shares one transaction and one fsync.
func (s *Store) writer() {
	defer close(s.flushed)
	for op := range s.queue {
		batch := []asyncOp{op}
		timer := time.NewTimer(asyncDelay)
	collect:
		for len(batch) < asyncMaxBatch {
			select {
			case op, ok := <-s.queue:
				if !ok {
					break collect
				}
				batch = append(batch, op)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, op := range batch {
				if op.fn == nil {
					continue
				}
				if err := op.fn(tx); err != nil {
					s.log.Warn("queued write failed", "err", err)
				}
			}
			return nil
		})
		if err != nil {
			s.log.Error("queued writes lost", "n", len(batch), "err", err)
		}
		for _, op := range batch {
			if op.done != nil {
				close(op.done)
			}
		}
	}
}

// Flush waits until every write queued before it is committed.
func (s *Store) Flush() {
	done := make(chan struct{})
	if s.enqueue(asyncOp{done: done}) {
		<-done
	}
}

func get[T any](tx *bolt.Tx, bucket []byte, id string) (T, error) {
	var v T
	b := tx.Bucket(bucket).Get([]byte(id))
	if b == nil {
		return v, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, fmt.Errorf("store: decode %s: %w", id, err)
	}
	return v, nil
}

func put(tx *bolt.Tx, bucket []byte, id string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("store: encode %s: %w", id, err)
	}
	return tx.Bucket(bucket).Put([]byte(id), b)
}

func list[T any](s *Store, bucket []byte) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, b []byte) error {
			var v T
			if err := json.Unmarshal(b, &v); err != nil {
				return fmt.Errorf("store: decode %s: %w", k, err)
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// NewGroupID returns a fresh group id: 48 random bytes in @/$ base64.
func NewGroupID() string {
	b := make([]byte, handshake.HashLen)
	rand.Read(b)
	return handshake.MeshIDPrefix + handshake.EncodeID(b)
}

// CreateGroup adds an agent group (mtype 2) with a new random id.
func (s *Store) CreateGroup(name string) (Group, error) {
	g := Group{ID: NewGroupID(), Name: name, MType: MeshTypeAgent, Created: time.Now().UTC()}
	return g, s.PutGroup(g)
}

// PutGroup writes a group.
func (s *Store) PutGroup(g Group) error {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	delete(s.groups, g.ID) // re-read after the write, whatever its outcome
	return s.db.Update(func(tx *bolt.Tx) error { return put(tx, bGroups, g.ID, g) })
}

// Group reads one group.
func (s *Store) Group(id string) (g Group, err error) {
	s.gmu.RLock()
	g, ok := s.groups[id]
	s.gmu.RUnlock()
	if ok {
		return g, nil
	}
	s.gmu.Lock()
	defer s.gmu.Unlock()
	err = s.db.View(func(tx *bolt.Tx) error { g, err = get[Group](tx, bGroups, id); return err })
	if err != nil {
		return g, err
	}
	if s.groups == nil {
		s.groups = map[string]Group{}
	}
	s.groups[id] = g
	return g, nil
}

// Groups lists all groups.
func (s *Store) Groups() ([]Group, error) { return list[Group](s, bGroups) }

// DeleteGroup removes a group (its devices stay until removed).
func (s *Store) DeleteGroup(id string) error {
	s.gmu.Lock()
	defer s.gmu.Unlock()
	delete(s.groups, id)
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bGroups).Delete([]byte(id)) })
}

// Device reads one device, with its SysInfo and NetInfo.
func (s *Store) Device(id string) (d Device, err error) {
	err = s.db.View(func(tx *bolt.Tx) error { d, err = getDevice(tx, id); return err })
	return d, err
}

// Devices lists all devices without SysInfo and NetInfo (read them with
// Device): listings stay fast however much an agent reports.
func (s *Store) Devices() ([]Device, error) { return list[Device](s, bDevices) }

// PutDevice writes a whole device record.
func (s *Store) PutDevice(d Device) error {
	return s.db.Update(func(tx *bolt.Tx) error { return putDevice(tx, d) })
}

// DeleteDevice removes a device and its stored information.
func (s *Store) DeleteDevice(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bDevices).Delete([]byte(id)); err != nil {
			return err
		}
		for _, f := range devInfoFields {
			if err := tx.Bucket(bDevInfo).Delete(devInfoKey(id, f)); err != nil {
				return err
			}
		}
		return nil
	})
}

var devInfoFields = []string{"sysinfo", "netinfo"}

func devInfoKey(id, field string) []byte { return []byte(id + "\x00" + field) }

// getDevice reads a device record and its large fields.
func getDevice(tx *bolt.Tx, id string) (Device, error) {
	d, err := get[Device](tx, bDevices, id)
	if err != nil {
		return d, err
	}
	b := tx.Bucket(bDevInfo)
	if v := b.Get(devInfoKey(id, "sysinfo")); v != nil {
		d.SysInfo = bytes.Clone(v)
	}
	if v := b.Get(devInfoKey(id, "netinfo")); v != nil {
		d.NetInfo = bytes.Clone(v)
	}
	return d, nil
}

// putDevice writes the record without its large fields, and each large
// field apart, only when it changed.
func putDevice(tx *bolt.Tx, d Device) error {
	b := tx.Bucket(bDevInfo)
	for _, f := range []struct {
		name string
		v    []byte
	}{{"sysinfo", d.SysInfo}, {"netinfo", d.NetInfo}} {
		if len(f.v) > MaxDeviceInfo {
			return fmt.Errorf("%w: %s of %s is %d bytes (limit %d)", ErrTooLarge, f.name, d.ID, len(f.v), MaxDeviceInfo)
		}
		k := devInfoKey(d.ID, f.name)
		old := b.Get(k)
		switch {
		case len(f.v) == 0 && old != nil:
			if err := b.Delete(k); err != nil {
				return err
			}
		case len(f.v) > 0 && !bytes.Equal(old, f.v):
			if err := b.Put(k, f.v); err != nil {
				return err
			}
		}
	}
	d.SysInfo, d.NetInfo = nil, nil
	return put(tx, bDevices, d.ID, d)
}

// migrateDevInfo moves sysinfo and netinfo that older versions kept inside
// device records into bDevInfo (once: afterwards no record has them).
func migrateDevInfo(tx *bolt.Tx) error {
	var moved []Device
	err := tx.Bucket(bDevices).ForEach(func(k, v []byte) error {
		if !bytes.Contains(v, []byte(`"sysinfo":`)) && !bytes.Contains(v, []byte(`"netinfo":`)) {
			return nil
		}
		var d Device
		if err := json.Unmarshal(v, &d); err != nil {
			return nil // left as it is; reads report it
		}
		if len(d.SysInfo) > MaxDeviceInfo {
			d.SysInfo, d.SysInfoHash = nil, "" // the agent sends it again
		}
		if len(d.NetInfo) > MaxDeviceInfo {
			d.NetInfo = nil
		}
		moved = append(moved, d)
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range moved {
		if err := putDevice(tx, d); err != nil {
			return err
		}
	}
	return nil
}

// Compaction: bbolt reuses freed pages but never shrinks its file. When at
// least compactMinFree bytes and half the file are free (devices with
// large records removed, events pruned), Open rewrites the database into
// a new file and renames it over the old one.
const compactMinFree = 16 << 20

func compactIfSparse(db *bolt.DB, path string, log *slog.Logger) (*bolt.DB, error) {
	var free, size int64
	db.View(func(tx *bolt.Tx) error {
		st := db.Stats()
		free = int64(st.FreePageN+st.PendingPageN) * int64(db.Info().PageSize)
		size = tx.Size()
		return nil
	})
	if free < compactMinFree || free*2 < size {
		return db, nil
	}
	tmp := path + ".compact"
	os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return db, nil // keep serving from the uncompacted file
	}
	if err := bolt.Compact(dst, db, 64<<20); err != nil {
		dst.Close()
		os.Remove(tmp)
		log.Warn("compaction failed; continuing", "err", err)
		return db, nil
	}
	dst.Close()
	db.Close()
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		log.Warn("compaction rename failed; continuing", "err", err)
	} else {
		log.Info("compacted", "freedBytes", free, "beforeBytes", size)
	}
	ndb, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: reopen %s after compaction: %w", path, err)
	}
	ndb.MaxBatchDelay = db.MaxBatchDelay
	return ndb, nil
}

// UpdateDevice reads the device (found=false and a zero Device with ID set
// when absent), lets fn change it, and writes it back, optionally appending
// events in the same transaction. fn returning an error aborts. fn may run
// more than once (bbolt batch retry), so it must not have side effects.
// Concurrent calls are coalesced into shared commits.
func (s *Store) UpdateDevice(id string, fn func(d *Device, found bool) error, events ...Event) (Device, error) {
	var out Device
	err := s.db.Batch(func(tx *bolt.Tx) error {
		d, err := getDevice(tx, id)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if !found {
			d = Device{ID: id}
		}
		if err := updateDevice(tx, id, &d, found, fn, events); err != nil {
			return err
		}
		out = d
		return nil
	})
	return out, err
}

// updateDevice applies fn to d and writes it back with events, unless fn
// says ErrNoChange.
func updateDevice(tx *bolt.Tx, id string, d *Device, found bool, fn func(d *Device, found bool) error, events []Event) error {
	switch err := fn(d, found); {
	case errors.Is(err, ErrNoChange):
	case err != nil:
		return err
	default:
		if err := putDevice(tx, *d); err != nil {
			return err
		}
	}
	for _, e := range events {
		if err := appendEvent(tx, e); err != nil {
			return err
		}
	}
	return nil
}

// UpdateDeviceAsync is UpdateDevice without waiting: the change is queued
// and committed with others within about 50 ms, in order with other queued
// writes. It is for high-rate writes from agent connections, where one
// fsync per connection would dominate the cost of a reconnect storm. An
// error from fn drops that change only, and is logged.
func (s *Store) UpdateDeviceAsync(id string, fn func(d *Device, found bool) error, events ...Event) {
	op := asyncOp{fn: func(tx *bolt.Tx) error {
		d, err := getDevice(tx, id)
		found := err == nil
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if !found {
			d = Device{ID: id}
		}
		return updateDevice(tx, id, &d, found, fn, events)
	}}
	if !s.enqueue(op) {
		s.log.Warn("write after close dropped", "device", id)
	}
}

// AppendEventAsync queues events like UpdateDeviceAsync.
func (s *Store) AppendEventAsync(events ...Event) {
	s.enqueue(asyncOp{fn: func(tx *bolt.Tx) error {
		for _, e := range events {
			if err := appendEvent(tx, e); err != nil {
				return err
			}
		}
		return nil
	}})
}

// PutUser creates or replaces a user.
func (s *Store) PutUser(u User) error {
	if u.ID == "" {
		return errors.New("store: user without id")
	}
	return s.db.Update(func(tx *bolt.Tx) error { return put(tx, bUsers, u.ID, u) })
}

// User reads one user.
func (s *Store) User(id string) (u User, err error) {
	err = s.db.View(func(tx *bolt.Tx) error { u, err = get[User](tx, bUsers, id); return err })
	return u, err
}

// Users lists all users.
func (s *Store) Users() ([]User, error) { return list[User](s, bUsers) }

// DeleteUser removes a user.
func (s *Store) DeleteUser(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bUsers).Delete([]byte(id)) })
}

func appendEvent(tx *bolt.Tx, e Event) error {
	b := tx.Bucket(bEvents)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	e.Seq = seq
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	v, err := json.Marshal(e)
	if err != nil {
		return err
	}
	return b.Put(k[:], v)
}

// AppendEvent adds entries to the event log (coalesced with other writers).
func (s *Store) AppendEvent(events ...Event) error {
	return s.db.Batch(func(tx *bolt.Tx) error {
		for _, e := range events {
			if err := appendEvent(tx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// pruneBatch bounds one pruning transaction, so that clearing a large
// backlog never holds the write lock for long.
const pruneBatch = 5000

// PruneEvents deletes events older than before and returns how many it
// deleted. It reads every event's time (events are nearly, not strictly,
// in time order: queued writes stamp them late), deleting in transactions
// of at most pruneBatch; an event it cannot decode is kept.
func (s *Store) PruneEvents(before time.Time) (int, error) {
	total := 0
	var resume []byte // scan from the key after this one
	for {
		var keys [][]byte
		var last []byte
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bEvents).Cursor()
			k, v := c.First()
			if resume != nil {
				if k, v = c.Seek(resume); bytes.Equal(k, resume) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(keys) < pruneBatch; k, v = c.Next() {
				var e struct {
					Time time.Time `json:"time"`
				}
				if json.Unmarshal(v, &e) == nil && e.Time.Before(before) {
					keys = append(keys, bytes.Clone(k))
				}
				last = bytes.Clone(k)
			}
			return nil
		})
		if err == nil && len(keys) > 0 {
			err = s.db.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(bEvents)
				for _, k := range keys {
					if err := b.Delete(k); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err != nil {
			return total, fmt.Errorf("store: prune events: %w", err)
		}
		total += len(keys)
		if len(keys) < pruneBatch {
			return total, nil
		}
		resume = last
	}
}

// EventFilter selects events; zero fields match everything.
type EventFilter struct {
	NodeID string
	Kind   string
	After  uint64 // only events with Seq > After
	Limit  int    // newest Limit events; 0 = all
}

// Events returns matching events, oldest first.
func (s *Store) Events(f EventFilter) ([]Event, error) {
	var out []Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bEvents).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			if binary.BigEndian.Uint64(k) <= f.After {
				break
			}
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("store: decode event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if (f.NodeID != "" && e.NodeID != f.NodeID) || (f.Kind != "" && e.Kind != f.Kind) {
				continue
			}
			out = append(out, e)
			if f.Limit > 0 && len(out) >= f.Limit {
				break
			}
		}
		return nil
	})
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, err
}

// Meta reads a small server setting (nil when absent).
func (s *Store) Meta(key string) ([]byte, error) {
	var v []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bMeta).Get([]byte(key)); b != nil {
			v = append([]byte(nil), b...)
		}
		return nil
	})
	return v, err
}

// SetMeta writes a small server setting.
func (s *Store) SetMeta(key string, value []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put([]byte(key), value) })
}
