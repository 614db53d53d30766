package files

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

func names(r reply) []string {
	var out []string
	dir, _ := r.M["dir"].([]any)
	for _, e := range dir {
		out = append(out, e.(map[string]any)["n"].(string))
	}
	sort.Strings(out)
	return out
}

func TestCommands(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			for _, binary := range []bool{true, false} {
				dir := t.TempDir()
				// The web UI sends Unix paths without the leading "/" and
				// the agent echoes them with it; Windows paths ("C:\\...")
				// go both ways unchanged.
				rel, echo := strings.TrimPrefix(dir, "/"), "/"+strings.TrimPrefix(dir, "/")
				if runtime.GOOS == "windows" {
					rel, echo = dir, dir
				}
				os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644)
				os.Mkdir(filepath.Join(dir, "sub"), 0o755)
				os.WriteFile(filepath.Join(dir, "sub", "inner"), []byte("x"), 0o644)
				c := startFiles(t, tc.tr, adminInfo())

				// ls: reply shape, path echo with the "/" prefix, numeric reqid kept
				c.cmd(binary, map[string]any{"action": "ls", "reqid": 1, "path": rel})
				r := c.nextJSON()
				if !r.Binary || r.M["path"] != echo || r.M["reqid"] != float64(1) {
					t.Fatalf("ls reply %s", r.Raw)
				}
				if got := names(r); strings.Join(got, ",") != "a.txt,sub" {
					t.Fatalf("ls names %v", got)
				}
				for _, e := range r.M["dir"].([]any) {
					m := e.(map[string]any)
					d, _ := time.Parse(mtimeFormat, m["d"].(string))
					if time.Since(d) > time.Hour {
						t.Fatalf("bad date %v", m["d"])
					}
					if m["n"] == "a.txt" && (m["t"] != float64(3) || m["s"] != float64(5)) {
						t.Fatalf("file entry %v", m)
					}
					if m["n"] == "sub" && (m["t"] != float64(2) || m["s"] != nil) {
						t.Fatalf("folder entry %v", m)
					}
				}
				c.cmd(binary, map[string]any{"action": "ls", "reqid": 2, "path": rel + "/missing"})
				if r := c.nextJSON(); r.M["dir"] != nil || !strings.Contains(r.Raw, `"dir":null`) {
					t.Fatalf("missing folder reply %s", r.Raw)
				}

				steps := []struct {
					name  string
					cmd   map[string]any
					check func() error
				}{
					{"mkdir", map[string]any{"action": "mkdir", "reqid": 3, "path": rel + "/new"}, func() error { return isDir(filepath.Join(dir, "new")) }},
					{"rename", map[string]any{"action": "rename", "reqid": 4, "path": rel, "oldname": "a.txt", "newname": "b.txt"}, func() error { return content(filepath.Join(dir, "b.txt"), "hello") }},
					{"copy file and folder", map[string]any{"action": "copy", "reqid": 5, "scpath": rel, "dspath": rel + "/new", "names": []string{"b.txt", "sub"}}, func() error {
						if err := content(filepath.Join(dir, "new", "b.txt"), "hello"); err != nil {
							return err
						}
						return content(filepath.Join(dir, "new", "sub", "inner"), "x")
					}},
					{"move", map[string]any{"action": "move", "reqid": 6, "scpath": rel, "dspath": rel + "/sub", "names": []string{"b.txt"}}, func() error {
						if _, err := os.Stat(filepath.Join(dir, "b.txt")); err == nil {
							return errors.New("source still there")
						}
						return content(filepath.Join(dir, "sub", "b.txt"), "hello")
					}},
					{"rm file", map[string]any{"action": "rm", "reqid": 7, "path": rel + "/sub", "delfiles": []string{"b.txt"}}, func() error { return gone(filepath.Join(dir, "sub", "b.txt")) }},
					{"rm recursive", map[string]any{"action": "rm", "reqid": 8, "path": rel, "delfiles": []string{"new"}, "rec": true}, func() error { return gone(filepath.Join(dir, "new")) }},
				}
				for _, st := range steps {
					c.cmd(binary, st.cmd)
					r := c.sync(binary, rel)
					if r.M["reqid"] != "sync" {
						t.Fatalf("%s: unexpected reply %s", st.name, r.Raw)
					}
					if err := st.check(); err != nil {
						t.Fatalf("%s: %v", st.name, err)
					}
				}
				c.ch.Close()
				c.serveResult()
			}
		})
	}
}

func isDir(p string) error {
	st, err := os.Stat(p)
	if err == nil && !st.IsDir() {
		err = errors.New("not a folder")
	}
	return err
}

func content(p, want string) error {
	b, err := os.ReadFile(p)
	if err == nil && string(b) != want {
		err = errors.New("content " + string(b))
	}
	return err
}

func gone(p string) error {
	if _, err := os.Lstat(p); err == nil {
		return errors.New(p + " still exists")
	}
	return nil
}

// TestErrorsAndTricks: failures answer with the reqid and a reason, and
// names that would reach outside the folder the protocol names are refused.
func TestErrorsAndTricks(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "full"), 0o755)
	os.WriteFile(filepath.Join(dir, "full", "f"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "victim"), []byte("keep"), 0o644)
	os.WriteFile(filepath.Join(dir, "other"), []byte("other"), 0o644)
	c := startFiles(t, pipeTransport, adminInfo())
	cases := []struct {
		name string
		cmd  map[string]any
		want string
	}{
		{"rm dotdot", map[string]any{"action": "rm", "reqid": 1, "path": dir + "/full", "delfiles": []string{"../victim"}}, "invalid name"},
		{"rm non-empty without rec", map[string]any{"action": "rm", "reqid": 2, "path": dir, "delfiles": []string{"full"}}, "(?i)directory (is )?not empty"}, // Windows: "The directory is not empty."
		{"rename onto existing", map[string]any{"action": "rename", "reqid": 3, "path": dir, "oldname": "other", "newname": "victim"}, "already exists"},
		{"rename with slash", map[string]any{"action": "rename", "reqid": 4, "path": dir, "oldname": "other", "newname": "full/x"}, "invalid name"},
		{"mkdir existing", map[string]any{"action": "mkdir", "reqid": 5, "path": dir + "/full"}, "(?i)file exists|already exists"}, // Windows: "... already exists."
		{"copy into itself", map[string]any{"action": "copy", "reqid": 6, "scpath": dir, "dspath": dir + "/full", "names": []string{"full"}}, "into itself"},
		{"nul in path", map[string]any{"action": "mkdir", "reqid": 7, "path": dir + "/a\x00b"}, "invalid path"},
		{"rm without path", map[string]any{"action": "rm", "reqid": 8, "delfiles": []string{"tmp"}, "rec": true}, "missing path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.cmd(true, tc.cmd)
			r := c.nextJSON()
			if r.M["action"] != "error" || r.M["reqid"] != float64(tc.cmd["reqid"].(int)) {
				t.Fatalf("reply %s", r.Raw)
			}
			if msg, _ := r.M["error"].(string); !regexp.MustCompile(tc.want).MatchString(msg) {
				t.Fatalf("error %q does not mention %q", msg, tc.want)
			}
			if _, has := r.M["path"]; has {
				t.Fatal("error reply carries path: the web UI would take it for a listing")
			}
			con := c.nextJSON()
			if con.Binary || con.M["type"] != "console" || !strings.HasPrefix(con.Raw, `{"ctrlChannel":"102938","type":"console"`) {
				t.Fatalf("console %s", con.Raw)
			}
		})
	}
	if err := content(filepath.Join(dir, "victim"), "keep"); err != nil {
		t.Fatal(err)
	}
	// upload names with separators are refused before anything is created
	c.cmd(false, map[string]any{"action": "upload", "reqid": "u", "path": dir + "/full", "name": "../victim"})
	if r := c.nextJSON(); r.M["action"] != "uploaderror" || r.M["reqid"] != "u" || r.M["error"] == nil {
		t.Fatalf("reply %s", r.Raw)
	}
	c.cmd(false, map[string]any{"action": "upload", "reqid": "d", "path": dir, "name": "full"})
	if r := c.nextJSON(); r.M["action"] != "uploaderror" || !strings.Contains(r.Raw, "folder") {
		t.Fatalf("reply %s", r.Raw)
	}
}

func TestControlMessages(t *testing.T) {
	c := startFiles(t, wsTransport, adminInfo())
	c.sendRaw(session.Frame{Data: []byte(`{"ctrlChannel":"102938","type":"ping"}`)})
	if r := c.nextJSON(); r.Raw != `{"ctrlChannel":"102938","type":"pong"}` || r.Binary {
		t.Fatalf("pong %s", r.Raw)
	}
	c.sendRaw(session.Frame{Data: []byte(`{"ctrlChannel":102938,"type":"rtt","time":1234567}`)})
	if r := c.nextJSON(); r.Raw != `{"ctrlChannel":"102938","type":"rtt","time":1234567}` {
		t.Fatalf("rtt %s", r.Raw)
	}
	// An action inside a control message is not a command.
	c.sendRaw(session.Frame{Binary: true, Data: []byte(`{"ctrlChannel":"102938","type":"x","action":"mkdir","path":"/tmp/never-made"}`)})
	c.sendRaw(session.Frame{Binary: true, Data: []byte("not json")})
	c.sendRaw(session.Frame{Data: []byte(`{"ctrlChannel":"102938","type":"close"}`)})
	c.waitClosed()
	if err := c.serveResult(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := os.Stat("/tmp/never-made"); err == nil {
		t.Fatal("control message ran a command")
	}
}

type countingChannel struct {
	session.Channel
	reads int
}

func (c *countingChannel) Read(ctx context.Context) (session.Frame, error) {
	c.reads++
	return c.Channel.Read(ctx)
}

func TestRightsRefusedBeforeReading(t *testing.T) {
	cases := []struct {
		name   string
		rights uint32
		proto  int
	}{
		{"no rights", 0, session.ProtoFiles},
		{"view only", session.RightRemoteViewOnly, session.ProtoFiles},
		{"no files bit", session.RightRemoteControl | session.RightNoFiles, session.ProtoFiles},
		{"no files bit, transfer", session.RightRemoteControl | session.RightNoFiles, session.ProtoFileTransfer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			a, b := session.Pipe(16)
			cc := &countingChannel{Channel: a}
			b.Write(context.Background(), session.Frame{Data: []byte(`{"action":"mkdir","path":"` + dir + `/x"}`)})
			err := Serve(context.Background(), cc, session.Info{Protocol: tc.proto, Rights: tc.rights, Options: []byte(`{"file":"/etc/hostname"}`)}, Options{})
			if !errors.Is(err, ErrNotAllowed) {
				t.Fatalf("Serve = %v", err)
			}
			if cc.reads != 0 {
				t.Fatalf("%d reads before refusing", cc.reads)
			}
			f, _ := b.Read(context.Background())
			if !strings.Contains(string(f.Data), `"type":"console"`) {
				t.Fatalf("no console message: %q", f.Data)
			}
			if _, err := os.Stat(filepath.Join(dir, "x")); err == nil {
				t.Fatal("command ran")
			}
		})
	}
}

func TestFindFile(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"a.txt", "b.log", "d1/c.txt", "d1/d2/e.txt"} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), nil, 0o644)
	}
	c := startFiles(t, pipeTransport, adminInfo())
	c.cmd(true, map[string]any{"action": "findfile", "reqid": 9, "path": dir, "filter": "*.txt"})
	var got []string
	for {
		r := c.nextJSON()
		if r.M["action"] != "findfile" || r.M["reqid"] != float64(9) {
			t.Fatalf("reply %s", r.Raw)
		}
		if r.M["r"] == nil {
			break
		}
		got = append(got, r.M["r"].(string))
	}
	sort.Strings(got)
	// Paths below the searched folder, in the OS's own separator.
	if strings.Join(got, ",") != filepath.FromSlash("/a.txt,/d1/c.txt,/d1/d2/e.txt") {
		t.Fatalf("found %v", got)
	}
	c.cmd(true, map[string]any{"action": "findfile", "reqid": 10, "path": "/", "filter": "*"})
	c.cmd(true, map[string]any{"action": "cancelfindfile", "reqid": 10})
	c.ch.Close()
	c.serveResult() // returns: the search goroutine stopped
}

func TestZipUnzip(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src", "deep"), 0o755)
	os.WriteFile(filepath.Join(dir, "src", "deep", "f.txt"), []byte("deep file"), 0o644)
	os.WriteFile(filepath.Join(dir, "top.txt"), []byte("top"), 0o644)
	c := startFiles(t, pipeTransport, adminInfo())
	c.cmd(true, map[string]any{"action": "zip", "path": dir, "files": []string{"src", "top.txt", "missing"}, "output": "out.zip"})
	if r := c.nextJSON(); r.M["action"] != "dialogmessage" || r.M["msg"] != "zipping" {
		t.Fatalf("reply %s", r.Raw)
	}
	c.waitJSON(func(r reply) bool {
		_, has := r.M["msg"]
		return r.M["action"] == "dialogmessage" && has && r.M["msg"] == nil
	})
	if r := c.nextJSON(); r.M["action"] != "refresh" {
		t.Fatalf("reply %s", r.Raw)
	}
	zr, err := zip.OpenReader(filepath.Join(dir, "out.zip"))
	if err != nil {
		t.Fatal(err)
	}
	var zn []string
	for _, f := range zr.File {
		zn = append(zn, f.Name)
	}
	zr.Close()
	sort.Strings(zn)
	if strings.Join(zn, ",") != "src/,src/deep/,src/deep/f.txt,top.txt" {
		t.Fatalf("zip entries %v", zn)
	}
	os.Mkdir(filepath.Join(dir, "dest"), 0o755)
	c.cmd(true, map[string]any{"action": "unzip", "input": dir + "/out.zip", "dest": dir + "/dest"})
	c.waitJSON(action("refresh"))
	if err := content(filepath.Join(dir, "dest", "src", "deep", "f.txt"), "deep file"); err != nil {
		t.Fatal(err)
	}

	// zip-slip: an entry climbing out of dest is refused
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("../escaped.txt")
	w.Write([]byte("evil"))
	zw.Close()
	os.WriteFile(filepath.Join(dir, "evil.zip"), buf.Bytes(), 0o644)
	c.cmd(true, map[string]any{"action": "unzip", "input": dir + "/evil.zip", "dest": dir + "/dest"})
	c.waitJSON(func(r reply) bool { return r.M["msg"] == "unziperror" })
	if _, err := os.Stat(filepath.Join(dir, "escaped.txt")); err == nil {
		t.Fatal("zip-slip entry was written")
	}
}

// A read-only directory: uploads and mkdir fail with a clear reason and the
// existing file stays. As root, permission bits do not stop us, so root
// uses a read-only tmpfs mount instead.
func TestReadOnlyDirectory(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	os.Mkdir(ro, 0o755)
	os.WriteFile(filepath.Join(ro, "keep.txt"), []byte("keep"), 0o644)
	want := "permission denied"
	if runtime.GOOS == "windows" {
		// chmod only sets the read-only attribute, which Windows ignores
		// on directories; a read-only folder needs a deny ACE, which wine
		// 8 does not keep (see agent/core's DACL tests).
		t.Skip("no read-only directory without a DACL; not yet written for Windows")
	}
	if os.Geteuid() == 0 {
		if err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", ro).Run(); err != nil {
			t.Skipf("cannot mount a tmpfs (%v); a read-only directory cannot be made as root", err)
		}
		t.Cleanup(func() { exec.Command("umount", "-l", ro).Run() })
		os.WriteFile(filepath.Join(ro, "keep.txt"), []byte("keep"), 0o644)
		if err := exec.Command("mount", "-o", "remount,ro", ro).Run(); err != nil {
			t.Skipf("cannot remount read-only: %v", err)
		}
		want = "read-only file system"
	} else {
		os.Chmod(ro, 0o555)
		t.Cleanup(func() { os.Chmod(ro, 0o755) })
	}
	c := startFiles(t, pipeTransport, adminInfo())
	c.cmd(false, map[string]any{"action": "upload", "reqid": "r", "path": ro, "name": "keep.txt", "size": 3})
	r := c.nextJSON()
	if r.M["action"] != "uploaderror" || r.M["reqid"] != "r" || !strings.Contains(r.Raw, want) {
		t.Fatalf("reply %s", r.Raw)
	}
	c.cmd(false, map[string]any{"action": "mkdir", "reqid": "m", "path": ro + "/x"})
	if r := c.nextJSON(); r.M["action"] != "error" || !strings.Contains(r.Raw, want) {
		t.Fatalf("reply %s", r.Raw)
	}
	c.nextJSON() // console line
	// listing and downloading still work
	if dl, _ := downloadWebUI(c, filepath.Join(ro, "keep.txt")); string(dl) != "keep" {
		t.Fatalf("download %q", dl)
	}
	if err := content(filepath.Join(ro, "keep.txt"), "keep"); err != nil {
		t.Fatal(err)
	}
}

// Disk full: a 1 MiB tmpfs; a 2 MiB upload fails with ENOSPC's reason, the
// old file is untouched and no temporary file is left.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs needs root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount -t tmpfs not permitted here (%v: %s); disk-full test skipped", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	target := filepath.Join(dir, "data.bin")
	old := bytes.Repeat([]byte("good"), 1000)
	os.WriteFile(target, old, 0o644)
	c := startFiles(t, pipeTransport, adminInfo())
	r := uploadWebUI(c, dir, "data.bin", randomData(t, 2<<20))
	if r.M["action"] != "uploaderror" || r.M["reqid"] != float64(7) || !strings.Contains(r.Raw, "no space left on device") {
		t.Fatalf("reply %s", r.Raw)
	}
	got, _ := os.ReadFile(target)
	if !bytes.Equal(got, old) {
		t.Fatal("old file changed")
	}
	assertNoTemp(t, dir)
	// the session goes on and the space is back
	if r := uploadWebUI(c, dir, "small.bin", []byte("fits")); r.M["action"] != "uploaddone" {
		t.Fatalf("reply %s", r.Raw)
	}
}
