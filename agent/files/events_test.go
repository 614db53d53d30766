package files

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/proto/session/sessiontest"
)

// serverEvent is one Options.ServerLog call.
type serverEvent struct {
	ID   int
	Args string // JSON of the args, as they go to the server
	Msg  string
}

// eventLog collects the ServerLog calls of a session.
type eventLog struct {
	mu  sync.Mutex
	all []serverEvent
}

func (l *eventLog) log(id int, args []any, msg string) {
	b, _ := json.Marshal(args)
	l.mu.Lock()
	l.all = append(l.all, serverEvent{id, string(b), msg})
	l.mu.Unlock()
}

// take returns the events so far and forgets them.
func (l *eventLog) take() []serverEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.all
	l.all = nil
	return out
}

func startFilesLogged(t testing.TB, info session.Info, l *eventLog) *client {
	c := sessiontest.Serve(t, pipeTransport, func(ctx context.Context, ch session.Channel) error {
		return Serve(ctx, ch, info, Options{Logger: quiet, ServerLog: l.log})
	})
	return &client{Client: c, t: t, ch: c.Ch}
}

// Each completed operation is reported with MeshCentral's msgid and args
// (the web UI translates them); failed ones are not reported at all.
func TestServerLogEvents(t *testing.T) {
	dir := t.TempDir()
	rel := strings.TrimPrefix(dir, "/")
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }
	os.WriteFile(j("a.txt"), []byte("hello"), 0o644)
	os.Mkdir(j("tree"), 0o755)
	os.WriteFile(j("tree", "x"), []byte("x"), 0o644)
	os.WriteFile(j("tree", "y"), []byte("y"), 0o644)
	var l eventLog
	c := startFilesLogged(t, adminInfo(), &l)
	q := func(v ...any) string { b, _ := json.Marshal(v); return string(b) }

	steps := []struct {
		name string
		cmd  map[string]any
		want []serverEvent
	}{
		{"mkdir", map[string]any{"action": "mkdir", "path": rel + "/new"},
			[]serverEvent{{44, q(j("new")), fmt.Sprintf(`Create folder: "%s"`, j("new"))}}},
		{"mkdir existing: nothing logged", map[string]any{"action": "mkdir", "path": rel + "/new"}, nil},
		{"rename", map[string]any{"action": "rename", "path": rel, "oldname": "a.txt", "newname": "b.txt"},
			[]serverEvent{{48, q(j("a.txt"), "b.txt"), fmt.Sprintf(`Rename: "%s" to "b.txt"`, j("a.txt"))}}},
		{"rename missing: nothing logged", map[string]any{"action": "rename", "path": rel, "oldname": "nope", "newname": "c"}, nil},
		{"copy", map[string]any{"action": "copy", "scpath": rel, "dspath": rel + "/new", "names": []string{"b.txt"}},
			[]serverEvent{{51, q(j("b.txt"), j("new", "b.txt")), fmt.Sprintf(`Copy: "%s" to "%s"`, j("b.txt"), j("new", "b.txt"))}}},
		{"move", map[string]any{"action": "move", "scpath": rel + "/new", "dspath": rel + "/tree", "names": []string{"b.txt"}},
			[]serverEvent{{52, q(j("new", "b.txt"), j("tree", "b.txt")), fmt.Sprintf(`Move: "%s" to "%s"`, j("new", "b.txt"), j("tree", "b.txt"))}}},
		{"delete file", map[string]any{"action": "rm", "path": rel, "delfiles": []string{"b.txt"}},
			[]serverEvent{{45, q(j("b.txt")), fmt.Sprintf(`Delete: "%s"`, j("b.txt"))}}},
		{"delete missing: nothing logged", map[string]any{"action": "rm", "path": rel, "delfiles": []string{"b.txt"}}, nil},
		{"delete", map[string]any{"action": "rm", "path": rel, "delfiles": []string{"new"}},
			[]serverEvent{{45, q(j("new")), fmt.Sprintf(`Delete: "%s"`, j("new"))}}},
		{"delete non-empty folder without rec: nothing logged", map[string]any{"action": "rm", "path": rel, "delfiles": []string{"tree"}}, nil},
		{"delete recursive", map[string]any{"action": "rm", "path": rel, "delfiles": []string{"tree"}, "rec": true},
			[]serverEvent{{46, q(j("tree"), 4), fmt.Sprintf(`Delete recursive: "%s", 4 element(s) removed`, j("tree"))}}},
	}
	for _, st := range steps {
		c.cmd(true, st.cmd)
		c.sync(true, rel)
		got := l.take()
		if fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Fatalf("%s: events\n got %v\nwant %v", st.name, got, st.want)
		}
	}

	// Upload: one event once the file is committed, with its size.
	data := []byte(strings.Repeat("z", 70000))
	if r := uploadWebUI(c, dir, "up.bin", data); r.M["action"] != "uploaddone" {
		t.Fatalf("upload: %s", r.Raw)
	}
	c.sync(true, rel)
	want := []serverEvent{{105, q(j("up.bin"), len(data)), fmt.Sprintf(`Upload: "%s", Size: %d`, j("up.bin"), len(data))}}
	if got := l.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("upload events\n got %v\nwant %v", got, want)
	}
	// Download from the files tab.
	if dl, _ := downloadWebUI(c, j("up.bin")); len(dl) != len(data) {
		t.Fatalf("download: %d bytes", len(dl))
	}
	want = []serverEvent{{49, q(j("up.bin")), fmt.Sprintf(`Download: "%s"`, j("up.bin"))}}
	if got := l.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("download events\n got %v\nwant %v", got, want)
	}
	c.ch.Close()
	c.serveResult()

	// meshctrl's upload (no uploaddone: committed at close) is reported too.
	c = startFilesLogged(t, adminInfo(), &l)
	uploadMeshctrl(c, dir, "ctl.bin", data[:1000])
	c.serveResult()
	want = []serverEvent{{105, q(j("ctl.bin"), 1000), fmt.Sprintf(`Upload: "%s", Size: 1000`, j("ctl.bin"))}}
	if got := l.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("meshctrl upload events\n got %v\nwant %v", got, want)
	}

	// devicefile.ashx (protocol 10): logged once the whole file went out.
	info := adminInfo()
	info.Protocol = session.ProtoFileTransfer
	info.Options, _ = json.Marshal(map[string]string{"file": rel + "/ctl.bin"})
	c = startFilesLogged(t, info, &l)
	if r := c.nextJSON(); r.M["op"] != "ok" {
		t.Fatalf("transfer: %s", r.Raw)
	}
	for n := 0; n < 1000; n += len(c.next().Data) {
	}
	c.waitClosed()
	want = []serverEvent{{106, q(j("ctl.bin"), 1000), fmt.Sprintf(`Download: "%s", Size: 1000`, j("ctl.bin"))}}
	if got := l.take(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("transfer events\n got %v\nwant %v", got, want)
	}
}
