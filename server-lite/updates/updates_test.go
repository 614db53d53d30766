package updates

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/meshgo/meshagent/proto/agentupdate"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/agentconn"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/store"
)

type fakeAgents struct {
	mu     sync.Mutex
	online map[string]bool
	sent   map[string][]agentupdate.Message
}

func (f *fakeAgents) SendJSON(n string, v any) error {
	b, _ := json.Marshal(v)
	m, err := agentupdate.ParseMessage(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.sent[n] = append(f.sent[n], m)
	f.mu.Unlock()
	return nil
}

func (f *fakeAgents) Agent(n string) (agentconn.AgentInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return agentconn.AgentInfo{NodeID: n}, f.online[n]
}

// take returns and forgets what was sent to n.
func (f *fakeAgents) take(n string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ops []string
	for _, m := range f.sent[n] {
		ops = append(ops, m.Op)
	}
	delete(f.sent, n)
	return ops
}

func setup(t *testing.T, nodes int) (*Manager, *fakeAgents, *certs.Set, []string, string) {
	t.Helper()
	dir := t.TempDir()
	set, _, err := certs.LoadOrCreate(filepath.Join(dir, "data"), certs.Options{AgentKeyBits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dist := filepath.Join(dir, "dist")
	os.MkdirAll(dist, 0o755)
	self, _ := os.Executable() // a Go binary, for the stamped-version path
	b, _ := os.ReadFile(self)
	os.WriteFile(filepath.Join(dist, "meshagent-linux-amd64"), b, 0o755)
	os.WriteFile(filepath.Join(dist, "README"), []byte("not a build"), 0o644)
	fa := &fakeAgents{online: map[string]bool{}, sent: map[string][]agentupdate.Message{}}
	var ids []string
	for i := range nodes {
		id := fmt.Sprintf("node//dev%02d", i)
		ids = append(ids, id)
		fa.online[id] = true
	}
	m := New(Config{Agents: fa, Store: st, Certs: set, Dir: dist})
	cat, err := LoadCatalog(dist)
	if err != nil || len(cat) != 1 {
		t.Fatalf("catalog %v %v", cat, err)
	}
	return m, fa, set, ids, cat["linux/amd64"].SHA384
}

func info(m *Manager, node, sha, platform string, last *agentupdate.Last) {
	b, _ := json.Marshal(agentupdate.Message{Action: agentupdate.Action, Op: agentupdate.OpInfo, Version: "v-" + sha[:4], Platform: platform, SHA384: sha, Updatable: true, Last: last})
	m.Event(agentconn.Event{Kind: agentconn.Message, NodeID: node, Action: agentupdate.Action, Data: b})
}

func status(m *Manager, node, id, state string) {
	b, _ := json.Marshal(agentupdate.Message{Action: agentupdate.Action, Op: agentupdate.OpStatus, ID: id, State: state})
	m.Event(agentconn.Event{Kind: agentconn.Message, NodeID: node, Action: agentupdate.Action, Data: b})
}

const oldHash = "0000aaaa" + "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

func stateOf(ro Rollout, n string) string {
	for _, d := range ro.Devices {
		if d.NodeID == n {
			return d.State
		}
	}
	return "?"
}

func TestStagedRollout(t *testing.T) {
	m, fa, set, ids, newHash := setup(t, 5)
	ro, err := m.Start(Request{NodeIDs: ids, Percent: 40, Trial: 30, Who: "user//admin"})
	if err != nil {
		t.Fatal(err)
	}
	if ro.StageSize != 2 || ro.Stages != 3 {
		t.Fatalf("stages %d of %d", ro.Stages, ro.StageSize)
	}
	// Stage 1 is queried, nobody else.
	for i, n := range ids {
		got := strings.Join(fa.take(n), ",")
		if want := map[bool]string{true: "query", false: ""}[i < 2]; got != want {
			t.Errorf("%s got %q, want %q", n, got, want)
		}
	}
	// dev00 answers on the old build: offered, and may download it; dev04
	// (not in the stage) may not.
	info(m, ids[0], oldHash, "linux/amd64", nil)
	if got := fa.take(ids[0]); len(got) != 1 || got[0] != agentupdate.OpOffer {
		t.Fatalf("offer: %v", got)
	}
	var h [handshake.HashLen]byte
	hex.Decode(h[:], []byte(newHash))
	if blk := m.Block(ids[0], agentupdate.EncodeRequest(agentupdate.Request{Offset: 0, SHA384: h})); blk == nil {
		t.Fatal("offered device refused a block")
	} else if off, data, err := agentupdate.DecodeBlock(blk); err != nil || off != 0 || len(data) != agentupdate.BlockSize {
		t.Fatalf("block %d %d %v", off, len(data), err)
	}
	if m.Block(ids[4], agentupdate.EncodeRequest(agentupdate.Request{SHA384: h})) != nil {
		t.Error("a device nothing was offered to got a block")
	}
	var other [handshake.HashLen]byte
	if m.Block(ids[0], agentupdate.EncodeRequest(agentupdate.Request{SHA384: other})) != nil {
		t.Error("block of another binary served")
	}
	// The offer verifies against the server's own ServerID.
	m.mu.Lock()
	o := m.rollouts[0].offers["linux/amd64"]
	m.mu.Unlock()
	if man, err := agentupdate.Verify(o, set.ServerID); err != nil || man.SHA384 != newHash || man.Trial != 30 {
		t.Fatalf("offer verify: %v %+v", err, man)
	}

	// dev01 is already current.
	info(m, ids[1], newHash, "linux/amd64", nil)
	// dev00 goes through the steps, restarts, comes back on the new hash.
	for _, s := range []string{agentupdate.StateDownloading, agentupdate.StateDownloaded, agentupdate.StateInstalled, agentupdate.StateRestarting} {
		status(m, ids[0], ro.ID, s)
	}
	if got := fa.take(ids[2]); len(got) != 0 {
		t.Fatalf("stage 2 started before stage 1 was online on the new version: %v", got)
	}
	m.Event(agentconn.Event{Kind: agentconn.Connected, NodeID: ids[0]})
	if got := fa.take(ids[0]); len(got) != 1 || got[0] != agentupdate.OpQuery {
		t.Fatalf("reconnect: %v", got)
	}
	info(m, ids[0], newHash, "linux/amd64", &agentupdate.Last{ID: ro.ID, State: agentupdate.StateConfirmed})
	ro = m.Rollouts()[0]
	if stateOf(ro, ids[0]) != DevDone || stateOf(ro, ids[1]) != DevDone || ro.Stage != 1 {
		t.Fatalf("after stage 1: %+v", ro)
	}
	if got := fa.take(ids[2]); len(got) != 1 || got[0] != agentupdate.OpQuery {
		t.Fatalf("stage 2 not queried: %v", got)
	}
	// Stage 2: dev02 has no build for its platform (skipped), dev03 rolls back.
	info(m, ids[2], oldHash, "windows/arm64", nil)
	info(m, ids[3], oldHash, "linux/amd64", nil)
	status(m, ids[3], ro.ID, agentupdate.StateRestarting)
	info(m, ids[3], oldHash, "linux/amd64", &agentupdate.Last{ID: ro.ID, State: agentupdate.StateRolledBack, Msg: "did not come online"})
	ro = m.Rollouts()[0]
	if ro.State != RollHalted || !strings.Contains(ro.Msg, "rolled back") || stateOf(ro, ids[2]) != DevSkipped {
		t.Fatalf("after a rollback: %+v", ro)
	}
	if got := fa.take(ids[4]); len(got) != 0 {
		t.Errorf("stage 3 started after a halt: %v", got)
	}
	if m.Block(ids[3], agentupdate.EncodeRequest(agentupdate.Request{SHA384: h})) != nil {
		t.Error("blocks still served after the halt")
	}
	m.cfg.Store.Flush()
	evs, _ := m.cfg.Store.Events(store.EventFilter{Limit: 1000})
	var steps []string
	for _, e := range evs {
		if e.Kind == store.EvUpdate {
			steps = append(steps, e.Action)
		}
	}
	all := strings.Join(steps, "|")
	for _, want := range []string{"started", "agent update offered", "agent update restarting", "agent update online on the new version", "agent update already current", "agent update skipped", "agent update rolled back", "halted"} {
		if !strings.Contains(all, want) {
			t.Errorf("event log lacks %q: %s", want, all)
		}
	}
	// A second rollout may start now; a third while it runs may not.
	if _, err := m.Start(Request{NodeIDs: ids[4:], Who: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Start(Request{NodeIDs: ids[4:], Who: "x"}); err == nil {
		t.Error("two rollouts at once")
	}
}

func TestCatalog(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadCatalog(dir); err == nil {
		t.Error("empty directory accepted")
	}
	os.WriteFile(filepath.Join(dir, "meshagent-windows-amd64"), []byte("MZ"), 0o644) // no .exe: not a release name
	os.WriteFile(filepath.Join(dir, "meshagent-windows-amd64.exe"), []byte("MZ"), 0o644)
	os.WriteFile(filepath.Join(dir, "meshagent-darwin-arm64"), []byte("\xcf\xfa"), 0o644)
	os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.2.3\n"), 0o644)
	c, err := LoadCatalog(dir)
	if err != nil || len(c) != 2 || c["windows/amd64"] == nil || c["darwin/arm64"] == nil {
		t.Fatalf("%v %v", c, err)
	}
	if v := c["darwin/arm64"].Version; v != "1.2.3" {
		t.Errorf("version %q from VERSION", v)
	}
}
