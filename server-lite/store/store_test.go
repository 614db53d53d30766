package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGroupsDevicesUsersSurviveRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	g, err := s.CreateGroup("Default")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(g.ID, "mesh//") || len(g.ID) != 6+64 || g.MType != 2 {
		t.Fatalf("group %+v", g)
	}
	if b, err := g.MeshIDBytes(); err != nil || len(b) != 48 {
		t.Fatalf("mesh id bytes %v", err)
	}
	d, err := s.UpdateDevice("node//abc", func(d *Device, found bool) error {
		if found {
			return fmt.Errorf("unexpected")
		}
		d.GroupID, d.Name = g.ID, "pc1"
		return nil
	}, Event{Kind: EvConnect, NodeID: "node//abc"})
	if err != nil || d.Name != "pc1" {
		t.Fatal(d, err)
	}
	if err := s.PutUser(User{ID: "user//admin", Name: "admin", SiteAdmin: 0xFFFFFFFF, Links: map[string]uint32{g.ID: 8}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, path)
	defer s.Close()
	tests := []struct {
		name string
		fn   func() error
	}{
		{"group", func() error { _, err := s.Group(g.ID); return err }},
		{"device", func() error {
			d, err := s.Device("node//abc")
			if err == nil && d.GroupID != g.ID {
				err = fmt.Errorf("group %q", d.GroupID)
			}
			return err
		}},
		{"user", func() error {
			u, err := s.User("user//admin")
			if err == nil && u.Links[g.ID] != 8 {
				err = fmt.Errorf("links %v", u.Links)
			}
			return err
		}},
		{"event", func() error {
			ev, err := s.Events(EventFilter{NodeID: "node//abc"})
			if err == nil && (len(ev) != 1 || ev[0].Kind != EvConnect || ev[0].Time.IsZero()) {
				err = fmt.Errorf("events %+v", ev)
			}
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.fn(); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := s.Device("node//missing"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing device: %v", err)
	}
}

func TestEventsFilterAndOrder(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	for i := 0; i < 10; i++ {
		kind := EvConnect
		if i%2 == 1 {
			kind = EvDisconnect
		}
		if err := s.AppendEvent(Event{Kind: kind, NodeID: fmt.Sprint("node//", i%3), Msg: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		f    EventFilter
		want string
	}{
		{EventFilter{}, "0123456789"},
		{EventFilter{Kind: EvDisconnect}, "13579"},
		{EventFilter{NodeID: "node//0"}, "0369"},
		{EventFilter{Limit: 3}, "789"},
		{EventFilter{After: 8}, "89"},
	}
	for _, tc := range tests {
		ev, err := s.Events(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for i, e := range ev {
			got += e.Msg
			if i > 0 && e.Seq <= ev[i-1].Seq {
				t.Fatal("not ordered")
			}
		}
		if got != tc.want {
			t.Errorf("%+v: got %q want %q", tc.f, got, tc.want)
		}
	}
}

func TestConcurrentUpdatesBatch(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	var wg sync.WaitGroup
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.UpdateDevice(fmt.Sprint("node//", i%20), func(d *Device, _ bool) error {
				d.Caps++
				return nil
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	ds, _ := s.Devices()
	total := uint32(0)
	for _, d := range ds {
		total += d.Caps
	}
	if len(ds) != 20 || total != 200 {
		t.Fatalf("%d devices, %d updates", len(ds), total)
	}
}

func TestAsyncWritesInOrderAndFlushedOnClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s := open(t, path)
	for i := 0; i < 500; i++ {
		s.UpdateDeviceAsync("node//x", func(d *Device, found bool) error {
			if found != (i > 0) {
				return fmt.Errorf("found=%v at %d", found, i)
			}
			if d.Name != fmt.Sprint(i-1) && i > 0 {
				return fmt.Errorf("out of order: %q before %d", d.Name, i)
			}
			d.Name = fmt.Sprint(i)
			return nil
		}, Event{Kind: EvConnect, NodeID: "node//x"})
	}
	s.Flush()
	if d, _ := s.Device("node//x"); d.Name != "499" {
		t.Fatalf("after flush: %q", d.Name)
	}
	s.UpdateDeviceAsync("node//y", func(d *Device, _ bool) error { d.Name = "y"; return nil })
	s.AppendEventAsync(Event{Kind: EvAdmin, Msg: "last"})
	s.Close()
	s.UpdateDeviceAsync("node//z", func(d *Device, _ bool) error { return nil }) // after close: dropped, no panic

	s = open(t, path)
	defer s.Close()
	if d, err := s.Device("node//y"); err != nil || d.Name != "y" {
		t.Fatalf("queued write lost at close: %v", err)
	}
	ev, _ := s.Events(EventFilter{})
	if len(ev) != 501 || ev[500].Msg != "last" {
		t.Fatalf("%d events", len(ev))
	}
}

// TestGroupCacheFollowsWrites reads a group (filling the cache), renames
// and deletes it: each read must see the last write.
func TestGroupCacheFollowsWrites(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	g, err := s.CreateGroup("before")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name  string
		write func() error
		want  string // "" = not found
	}{
		{"created", func() error { return nil }, "before"},
		{"renamed", func() error { g.Name = "after"; return s.PutGroup(g) }, "after"},
		{"deleted", func() error { return s.DeleteGroup(g.ID) }, ""},
		{"recreated", func() error { g.Name = "again"; return s.PutGroup(g) }, "again"},
	}
	for _, st := range steps {
		if err := st.write(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		for i := 0; i < 2; i++ { // the second read comes from the cache
			got, err := s.Group(g.ID)
			switch {
			case st.want == "" && !errors.Is(err, ErrNotFound):
				t.Fatalf("%s: read %d: %+v, %v; want not found", st.name, i, got, err)
			case st.want != "" && (err != nil || got.Name != st.want):
				t.Fatalf("%s: read %d: %+v, %v; want %q", st.name, i, got, err, st.want)
			}
		}
	}
}

// TestNoChangeWritesNothing: a function that returns ErrNoChange leaves
// the record as stored (even if it modified its copy) and the events are
// still appended, for both the synchronous and the queued update.
func TestNoChangeWritesNothing(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	if err := s.PutDevice(Device{ID: "node//a", Name: "stored"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateDevice("node//a", func(d *Device, _ bool) error {
		d.Name = "not written"
		return ErrNoChange
	}, Event{Kind: EvAdmin, NodeID: "node//a", Msg: "sync"}); err != nil {
		t.Fatal(err)
	}
	s.UpdateDeviceAsync("node//a", func(d *Device, _ bool) error {
		d.Name = "not written either"
		return ErrNoChange
	}, Event{Kind: EvAdmin, NodeID: "node//a", Msg: "async"})
	s.Flush()
	d, err := s.Device("node//a")
	if err != nil || d.Name != "stored" {
		t.Fatalf("device %+v, %v", d, err)
	}
	evs, err := s.Events(EventFilter{NodeID: "node//a"})
	if err != nil || len(evs) != 2 {
		t.Fatalf("events %+v, %v", evs, err)
	}
}

// TestPruneEvents deletes what is older than the cutoff, across more than
// one pruning transaction, and keeps the rest in order.
func TestPruneEvents(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "db"))
	defer s.Close()
	now := time.Now().UTC()
	old := make([]Event, pruneBatch+7)
	for i := range old {
		old[i] = Event{Kind: EvConnect, NodeID: "node//a", Time: now.Add(-48 * time.Hour)}
	}
	if err := s.AppendEvent(old...); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvent(Event{Kind: EvConnect, NodeID: "node//a", Msg: "recent 1", Time: now.Add(-time.Minute)},
		Event{Kind: EvDisconnect, NodeID: "node//a", Msg: "recent 2"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cutoff      time.Time
		wantDeleted int
		wantLeft    int
	}{
		{now.Add(-72 * time.Hour), 0, len(old) + 2}, // nothing that old
		{now.Add(-time.Hour), len(old), 2},
		{now.Add(-time.Hour), 0, 2}, // idempotent
	}
	for i, tt := range tests {
		n, err := s.PruneEvents(tt.cutoff)
		if err != nil || n != tt.wantDeleted {
			t.Fatalf("step %d: pruned %d, %v; want %d", i, n, err, tt.wantDeleted)
		}
		evs, err := s.Events(EventFilter{})
		if err != nil || len(evs) != tt.wantLeft {
			t.Fatalf("step %d: %d events left, %v; want %d", i, len(evs), err, tt.wantLeft)
		}
	}
	evs, _ := s.Events(EventFilter{})
	if evs[0].Msg != "recent 1" || evs[1].Msg != "recent 2" {
		t.Fatalf("kept %+v", evs)
	}
}

// TestDeviceInfoApart: sysinfo and netinfo are stored apart from the
// record, so listings never decode them; Device reads them; too large a
// document is refused; removing devices and reopening gives the space back
// (issue 20, finding 2).
func TestDeviceInfoApart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	big := []byte(`{"data":"` + strings.Repeat("x", MaxDeviceInfo-20) + `"}`)
	for i := range 100 {
		d := Device{ID: fmt.Sprintf("node//d%d", i), GroupID: "mesh//g", Name: "d", SysInfo: big, NetInfo: []byte(`{"netif2":{}}`)}
		if err := s.PutDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.Devices()
	if err != nil || len(ds) != 100 {
		t.Fatalf("Devices: %d %v", len(ds), err)
	}
	if len(ds[0].SysInfo) != 0 || len(ds[0].NetInfo) != 0 {
		t.Error("listing carries the large fields")
	}
	d, err := s.Device("node//d1")
	if err != nil || !bytes.Equal(d.SysInfo, big) || string(d.NetInfo) != `{"netif2":{}}` {
		t.Fatalf("Device: %d bytes sysinfo, %v", len(d.SysInfo), err)
	}
	// An update that does not touch them keeps them.
	if _, err := s.UpdateDevice("node//d1", func(d *Device, found bool) error { d.Name = "renamed"; return nil }); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Device("node//d1"); d.Name != "renamed" || !bytes.Equal(d.SysInfo, big) {
		t.Error("update lost the sysinfo")
	}
	tooBig := Device{ID: "node//big", SysInfo: make([]byte, MaxDeviceInfo+1)}
	if err := s.PutDevice(tooBig); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized sysinfo: %v", err)
	}
	for i := range 100 {
		if err := s.DeleteDevice(fmt.Sprintf("node//d%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	before, _ := os.Stat(path)
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	after, _ := os.Stat(path)
	t.Logf("file %d bytes after removing 100 devices, %d after reopening", before.Size(), after.Size())
	if after.Size() > before.Size()/4 {
		t.Errorf("space not reclaimed: %d -> %d bytes", before.Size(), after.Size())
	}
	if ds, _ := s.Devices(); len(ds) != 0 {
		t.Errorf("%d devices after compaction", len(ds))
	}
}

// TestDeviceInfoMigration: a record written by an older version with the
// fields inline is moved apart on Open.
func TestDeviceInfoMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	legacy := `{"_id":"node//old","meshid":"mesh//g","name":"old","sysinfo":{"hash":"h"},"netinfo":{"netif2":{}}}`
	s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bDevices).Put([]byte("node//old"), []byte(legacy)) })
	s.Close()
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ds, _ := s.Devices()
	if len(ds) != 1 || len(ds[0].SysInfo) != 0 {
		t.Fatalf("after migration the listing has %+v", ds)
	}
	d, err := s.Device("node//old")
	if err != nil || string(d.SysInfo) != `{"hash":"h"}` || string(d.NetInfo) != `{"netif2":{}}` {
		t.Errorf("migrated device %+v %v", d, err)
	}
}

func TestRecords(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, err := s.Record("q", "a"); v != nil || err != nil {
		t.Fatalf("absent: %q %v", v, err)
	}
	if ok, err := s.PutRecordIfAbsent("q", "a", []byte("1")); !ok || err != nil {
		t.Fatalf("first put: %v %v", ok, err)
	}
	if ok, err := s.PutRecordIfAbsent("q", "a", []byte("2")); ok || err != nil {
		t.Fatalf("second put wrote: %v %v", ok, err)
	}
	if err := s.PutRecord("q", "b", []byte("3")); err != nil {
		t.Fatal(err)
	}
	var got []string
	s.Records("q", func(k string, v []byte) error { got = append(got, k+"="+string(v)); return nil })
	if strings.Join(got, ",") != "a=1,b=3" {
		t.Fatalf("records %v", got)
	}
	if err := s.DeleteRecord("q", "a"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Record("q", "a"); v != nil {
		t.Fatalf("deleted record still there: %q", v)
	}
}

// BenchmarkShutdownLastSeen prices what a server shutting down with n
// agents connected writes: each agent's LastSeen and disconnect event as
// one queued write (UpdateDeviceAsync, as agentconn does), until Flush has
// committed them all.
func BenchmarkShutdownLastSeen(b *testing.B) {
	for _, n := range []int{3000, 19000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			s, err := Open(filepath.Join(b.TempDir(), "db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprintf("node//%064d", i)
				id := ids[i]
				s.UpdateDeviceAsync(id, func(d *Device, _ bool) error {
					d.Name, d.RName, d.OSDesc, d.IP = id[6:14], "sim00000", "Debian GNU/Linux 12 (bookworm)", "127.0.1.1"
					return nil
				})
			}
			s.Flush()
			b.ResetTimer()
			for b.Loop() {
				now := time.Now().UTC()
				for _, id := range ids {
					s.UpdateDeviceAsync(id, func(d *Device, found bool) error {
						if !found {
							return ErrNoChange
						}
						d.LastSeen = now
						return nil
					}, Event{Kind: EvDisconnect, NodeID: id, Who: id, From: "127.0.1.1:40000", Msg: "server shutting down"})
				}
				s.Flush()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/shutdown")
		})
	}
}
