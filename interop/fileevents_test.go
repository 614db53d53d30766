//go:build linux

package interop

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/proto/session"
)

// File operations done through MeshCentral's relay, as its Files tab sends
// them, land in the device's event log with meshcore.js's msgids and args
// (the web UI translates them), attributed to the user who did them.
func TestFileOperationEvents(t *testing.T) {
	srv := mctest.Shared(t)
	_, id := onlineAgent(t, srv, "file-events")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644)
	os.MkdirAll(filepath.Join(dir, "tree", "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree", "sub", "x"), []byte("x"), 0o644)
	j := func(p ...string) string { return filepath.Join(append([]string{dir}, p...)...) }

	u := dialControl(t, srv)
	ch := openRelay(t, srv, u, "node//"+id, session.ProtoFiles, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The web UI sends its paths without the leading "/" and in binary frames.
	rel := strings.TrimPrefix(dir, "/")
	send := func(m map[string]any) {
		b, _ := json.Marshal(m)
		if err := ch.Write(ctx, session.Frame{Binary: true, Data: b}); err != nil {
			t.Fatalf("send %s: %v", b, err)
		}
	}
	sync := func() { // the agent handles requests in order; ls answers
		send(map[string]any{"action": "ls", "reqid": 99, "path": rel})
		if _, err := readLs(ctx, ch); err != nil {
			t.Fatalf("ls: %v", err)
		}
	}
	send(map[string]any{"action": "mkdir", "reqid": 1, "path": rel + "/new"})
	send(map[string]any{"action": "rename", "reqid": 2, "path": rel, "oldname": "a.txt", "newname": "b.txt"})
	send(map[string]any{"action": "copy", "reqid": 3, "scpath": rel, "dspath": rel + "/new", "names": []string{"b.txt"}})
	send(map[string]any{"action": "move", "reqid": 4, "scpath": rel + "/new", "dspath": rel + "/tree", "names": []string{"b.txt"}})
	send(map[string]any{"action": "rm", "reqid": 5, "path": rel, "delfiles": []string{"b.txt"}})
	send(map[string]any{"action": "rm", "reqid": 6, "path": rel, "delfiles": []string{"tree"}, "rec": true})
	sync()
	data := bytes.Repeat([]byte("0123456789"), 10000)
	if err := uploadFile(ctx, ch, dir, "up.bin", bytes.NewReader(data), int64(len(data)), 4); err != nil {
		t.Fatalf("upload: %v", err)
	}
	var back bytes.Buffer
	if _, err := downloadFile(ctx, ch, j("up.bin"), &back); err != nil || !bytes.Equal(back.Bytes(), data) {
		t.Fatalf("download: %v (%d bytes)", err, back.Len())
	}
	ch.Close()

	want := []struct {
		id   int
		args []any
	}{
		{44, []any{j("new")}},
		{48, []any{j("a.txt"), "b.txt"}},
		{51, []any{j("b.txt"), j("new", "b.txt")}},
		{52, []any{j("new", "b.txt"), j("tree", "b.txt")}},
		{45, []any{j("b.txt")}},
		{46, []any{j("tree"), float64(4)}}, // tree, sub, x, b.txt
		{105, []any{j("up.bin"), float64(len(data))}},
		{49, []any{j("up.bin")}},
	}
	admin := strings.ToLower(srv.AdminUser())
	deadline := time.Now().Add(30 * time.Second)
	for {
		var missing []string
		evs := srv.Events(t)
		for _, w := range want {
			found := false
			for _, ev := range evs {
				if fmt.Sprint(ev["msgid"]) != fmt.Sprint(w.id) || !strings.HasSuffix(fmt.Sprint(ev["nodeid"]), id) {
					continue
				}
				args, _ := ev["msgArgs"].([]any)
				if fmt.Sprint(args) == fmt.Sprint(w.args) && strings.HasSuffix(fmt.Sprint(ev["userid"]), "/"+admin) {
					found = true
				}
			}
			if !found {
				missing = append(missing, fmt.Sprintf("%d %v", w.id, w.args))
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			var mine []string
			for _, ev := range evs {
				if strings.HasSuffix(fmt.Sprint(ev["nodeid"]), id) {
					mine = append(mine, fmt.Sprintf("%v %v %v %q", ev["msgid"], ev["msgArgs"], ev["userid"], ev["msg"]))
				}
			}
			t.Fatalf("events missing from MeshCentral's list: %v\nthis device's events:\n%s", missing, strings.Join(mine, "\n"))
		}
		time.Sleep(time.Second)
	}
}

// readLs reads frames until an ls reply (it has "dir").
func readLs(ctx context.Context, ch session.Channel) (map[string]any, error) {
	for {
		f, err := ch.Read(ctx)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if json.Unmarshal(f.Data, &m) == nil {
			if _, ok := m["dir"]; ok {
				return m, nil
			}
		}
	}
}
