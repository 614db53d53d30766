package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/meshgo/meshagent/server-lite/store"
)

// Store buckets (store.PutRecord): the queue of undelivered messages by
// idempotency key, and the keys delivered (or dropped) recently, so a
// repeated request with the same key is not sent twice.
const (
	bucketQueue = "notifyq"
	bucketSent  = "notifysent"
)

// Event log entries written by the dispatcher (store.Event.Kind).
const EvNotify = "notify"

// item is one queued message as stored.
type item struct {
	Key      string    `json:"key"`
	UserID   string    `json:"user,omitempty"`
	Handle   string    `json:"handle"`
	Subject  string    `json:"subject"`
	Text     string    `json:"text"`
	Created  time.Time `json:"created"`
	Attempts int       `json:"attempts"`
	Next     time.Time `json:"next"`
	LastErr  string    `json:"lastErr,omitempty"`
}

// limit is a provider's pace: at most one message per global interval,
// and per address (chat) one per perAddr.
type limit struct{ global, perAddr time.Duration }

// Telegram's documented bot limits: about 30 messages per second overall,
// one per second to one chat.
var limits = map[Service]limit{
	Telegram: {global: time.Second / 30, perAddr: time.Second},
	Ntfy:     {global: time.Second / 5},
	Email:    {global: time.Second / 10},
	Webhook:  {global: time.Second / 50},
}

// worker delivers one service's messages in order, paced by its limit; a
// slow or dead provider only ever holds its own worker.
type worker struct {
	svc  Service
	p    provider
	lim  limit
	in   chan string // keys
	last time.Time
	per  map[string]time.Time // address -> last send
}

// queue is the persistent, retried, deduplicated delivery queue.
type queue struct {
	n       *Notifier
	mu      sync.Mutex
	items   map[string]*item
	flight  map[string]bool
	workers map[Service]*worker
	wake    chan struct{}
	stop    chan struct{}
	wg      sync.WaitGroup
	ctx     context.Context
	cancel  context.CancelFunc
}

func newQueue(n *Notifier) (*queue, error) {
	q := &queue{n: n, items: map[string]*item{}, flight: map[string]bool{}, workers: map[Service]*worker{},
		wake: make(chan struct{}, 1), stop: make(chan struct{})}
	q.ctx, q.cancel = context.WithCancel(context.Background())
	for svc, p := range n.providers {
		q.workers[svc] = &worker{svc: svc, p: p, lim: limits[svc], in: make(chan string, 16), per: map[string]time.Time{}}
	}
	err := n.cfg.Store.Records(bucketQueue, func(k string, v []byte) error {
		var it item
		if err := json.Unmarshal(v, &it); err != nil {
			n.log.Warn("notification queue: unreadable entry dropped", "key", k, "err", err)
			n.cfg.Store.DeleteRecord(bucketQueue, k)
			return nil
		}
		q.items[k] = &it
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("notify: load queue: %w", err)
	}
	if len(q.items) > 0 {
		n.log.Info("notification queue loaded", "pending", len(q.items))
	}
	return q, nil
}

// enqueue stores a message unless its key was queued or sent already. It
// returns false for a duplicate. It does one store write and never waits
// for a provider.
func (q *queue) enqueue(it item) (bool, error) {
	st := q.n.cfg.Store
	if v, err := st.Record(bucketSent, it.Key); err != nil {
		return false, err
	} else if v != nil {
		return false, nil
	}
	b, err := json.Marshal(it)
	if err != nil {
		return false, err
	}
	wrote, err := st.PutRecordIfAbsent(bucketQueue, it.Key, b)
	if err != nil || !wrote {
		return false, err
	}
	q.mu.Lock()
	q.items[it.Key] = &it
	q.mu.Unlock()
	q.poke()
	return true, nil
}

func (q *queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) start() {
	for _, w := range q.workers {
		q.wg.Add(1)
		go q.work(w)
	}
	q.wg.Add(1)
	go q.dispatch()
}

// close stops the dispatcher and workers; an attempt in progress is
// cancelled and stays queued (it is retried after the restart).
func (q *queue) close() {
	close(q.stop)
	q.cancel()
	q.wg.Wait()
}

// dispatch hands due messages to their service's worker; a full worker
// leaves them queued for the next round.
func (q *queue) dispatch() {
	defer q.wg.Done()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-q.stop:
			return
		case <-q.wake:
		case <-t.C:
		}
		now := time.Now()
		next := now.Add(time.Minute)
		q.mu.Lock()
		for k, it := range q.items {
			if q.flight[k] {
				continue
			}
			if it.Next.After(now) {
				if it.Next.Before(next) {
					next = it.Next
				}
				continue
			}
			h, err := ParseHandle(it.Handle)
			w := q.workers[h.Service]
			if err != nil || w == nil {
				q.dropLocked(it, fmt.Sprintf("no provider for %q is configured", h.Service))
				continue
			}
			select {
			case w.in <- k:
				q.flight[k] = true
			default:
				if soon := now.Add(100 * time.Millisecond); soon.Before(next) {
					next = soon
				}
			}
		}
		q.mu.Unlock()
		t.Reset(time.Until(next))
	}
}

func (q *queue) work(w *worker) {
	defer q.wg.Done()
	for {
		var key string
		select {
		case <-q.stop:
			return
		case key = <-w.in:
		}
		q.mu.Lock()
		it := q.items[key]
		var cp item
		if it != nil {
			cp = *it
		}
		q.mu.Unlock()
		if it == nil {
			continue
		}
		h, _ := ParseHandle(cp.Handle)
		// Pace: wait out the global interval here (short); a chat still
		// inside its own interval goes back to the queue until then, so
		// other chats are not held behind it.
		now := time.Now()
		if ready := w.per[h.Addr].Add(w.lim.perAddr); w.lim.perAddr > 0 && ready.After(now) {
			q.settle(key, func(it *item) { it.Next = ready })
			continue
		}
		if wait := time.Until(w.last.Add(w.lim.global)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-q.stop:
				q.settle(key, nil)
				return
			}
		}
		w.last = time.Now()
		if len(w.per) > 10000 { // forget chats whose interval is long over
			for a, t := range w.per {
				if w.last.Sub(t) > w.lim.perAddr {
					delete(w.per, a)
				}
			}
		}
		w.per[h.Addr] = w.last
		ctx, cancel := context.WithTimeout(q.ctx, q.n.sendTimeout)
		err := w.p.Send(ctx, message{Key: cp.Key, Addr: h.Addr, Subject: cp.Subject, Text: cp.Text})
		cancel()
		if q.ctx.Err() != nil && err != nil {
			q.settle(key, nil) // shutting down: retry after restart, not a failure
			return
		}
		q.result(key, w.svc, err)
	}
}

// settle returns an in-flight key to the queue, optionally changing it.
func (q *queue) settle(key string, f func(*item)) {
	q.mu.Lock()
	delete(q.flight, key)
	if it := q.items[key]; it != nil && f != nil {
		f(it)
	}
	q.mu.Unlock()
	q.poke()
}

// result records an attempt: success removes the message and remembers
// its key; failure schedules a retry with exponential backoff (or the
// provider's Retry-After), or drops it when retrying cannot help or the
// attempts are used up. Every failure goes to the event log.
func (q *queue) result(key string, svc Service, err error) {
	st, log := q.n.cfg.Store, q.n.log
	q.mu.Lock()
	defer q.mu.Unlock()
	defer q.poke()
	delete(q.flight, key)
	it := q.items[key]
	if it == nil {
		return
	}
	if err == nil {
		q.finishLocked(it)
		log.Debug("notification sent", "service", svc, "key", key, "attempts", it.Attempts+1)
		return
	}
	it.Attempts++
	msg := q.n.redact(err.Error())
	it.LastErr = msg
	var perm *permanent
	if errors.As(err, &perm) || it.Attempts >= q.n.maxAttempts {
		q.dropLocked(it, msg)
		return
	}
	wait := q.n.retryBase << min(it.Attempts-1, 30)
	if wait > q.n.retryMax || wait <= 0 {
		wait = q.n.retryMax
	}
	var ra *retryAfter
	if errors.As(err, &ra) && ra.after > wait {
		wait = ra.after
	}
	it.Next = time.Now().Add(wait)
	if b, jerr := json.Marshal(it); jerr == nil {
		if perr := st.PutRecord(bucketQueue, key, b); perr != nil {
			log.Error("notification queue: store retry", "err", perr)
		}
	}
	log.Warn("notification failed; will retry", "service", svc, "key", key, "attempt", it.Attempts, "retryIn", wait.String(), "err", msg)
	st.AppendEventAsync(store.Event{Time: time.Now().UTC(), Kind: EvNotify, Who: it.UserID, Action: "notifyfailed",
		Msg: fmt.Sprintf("%s delivery to %s failed (attempt %d, next in %s): %s", svc, it.Handle, it.Attempts, wait.Round(time.Second), msg)})
}

// finishLocked removes a delivered message and remembers its key.
func (q *queue) finishLocked(it *item) {
	st := q.n.cfg.Store
	stamp, _ := time.Now().UTC().MarshalText()
	if err := st.PutRecord(bucketSent, it.Key, stamp); err != nil {
		q.n.log.Error("notification queue: remember sent key", "err", err)
	}
	if err := st.DeleteRecord(bucketQueue, it.Key); err != nil {
		q.n.log.Error("notification queue: remove sent", "err", err)
	}
	delete(q.items, it.Key)
}

func (q *queue) dropLocked(it *item, why string) {
	q.n.log.Warn("notification dropped", "key", it.Key, "handle", it.Handle, "attempts", it.Attempts, "err", why)
	q.n.cfg.Store.AppendEventAsync(store.Event{Time: time.Now().UTC(), Kind: EvNotify, Who: it.UserID, Action: "notifydropped",
		Msg: fmt.Sprintf("message to %s dropped after %d attempts: %s", it.Handle, it.Attempts, why)})
	q.finishLocked(it)
}

// pending is how many messages wait (for tests and the CLI).
func (q *queue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// pruneSent forgets delivered keys older than keep.
func (q *queue) pruneSent(keep time.Duration) {
	st := q.n.cfg.Store
	cut := time.Now().Add(-keep)
	var old []string
	st.Records(bucketSent, func(k string, v []byte) error {
		var t time.Time
		if t.UnmarshalText(v) != nil || t.Before(cut) {
			old = append(old, k)
		}
		return nil
	})
	for _, k := range old {
		st.DeleteRecord(bucketSent, k)
	}
}

// redactAll replaces every secret in s.
func redactAll(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "[redacted]")
		}
	}
	return s
}
