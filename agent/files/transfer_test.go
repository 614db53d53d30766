package files

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// randomData returns n random bytes whose 64 KiB chunk boundaries (the web
// UI's and, shifted, meshctrl's) often start with 0x00 or '{', the two
// bytes that need the upload escape.
func randomData(t testing.TB, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	for i, off := 0, 0; off < n; i, off = i+1, off+65536 {
		switch i % 3 {
		case 0:
			b[off] = 0
		case 1:
			b[off] = '{'
		}
	}
	for i, off := 0, 0; off < n; i, off = i+1, off+65564 {
		if i%2 == 0 {
			b[off] = '{'
		}
	}
	return b
}

func escape(chunk []byte) []byte {
	if len(chunk) > 0 && (chunk[0] == 0 || chunk[0] == '{') {
		return append([]byte{0}, chunk...)
	}
	return chunk
}

// uploadWebUI uploads like default.handlebars: binary commands, 64 KiB
// chunks, 1+8 chunks in flight, then uploaddone; it returns the final reply.
func uploadWebUI(c *client, dir, name string, data []byte) reply {
	c.t.Helper()
	c.cmd(true, map[string]any{"action": "upload", "reqid": 7, "path": dir, "name": name, "size": len(data)})
	r := c.nextJSON()
	if r.M["action"] != "uploadstart" {
		return r
	}
	if !r.Binary || r.M["reqid"] != float64(7) {
		c.t.Fatalf("uploadstart = %+v", r)
	}
	off := 0
	sendNext := func() {
		end := min(off+65536, len(data))
		c.sendRaw(session.Frame{Binary: true, Data: escape(data[off:end])})
		off = end
	}
	for i := 0; i < 9 && off < len(data); i++ {
		sendNext()
	}
	for off < len(data) {
		r := c.nextJSON()
		if r.M["action"] != "uploadack" {
			return r
		}
		sendNext()
	}
	c.cmd(true, map[string]any{"action": "uploaddone", "reqid": 7})
	return c.waitJSON(func(r reply) bool { return r.M["action"] != "uploadack" })
}

// uploadMeshctrl uploads like meshctrl: text command, 16 chunks of 65564
// bytes in flight, and a plain close once every chunk was acked.
func uploadMeshctrl(c *client, dir, name string, data []byte) {
	c.t.Helper()
	c.cmd(false, map[string]any{"action": "upload", "reqid": "up", "path": dir, "name": name, "size": len(data)})
	inFlight, off := 1, 0
	for {
		r := c.nextJSON()
		if r.M["reqid"] != "up" {
			continue
		}
		switch r.M["action"] {
		case "uploadack", "uploadstart":
			inFlight--
			loops := 1
			if r.M["action"] == "uploadstart" {
				loops = 16
			}
			for i := 0; i < loops && off < len(data); i++ {
				end := min(off+65564, len(data))
				c.sendRaw(session.Frame{Binary: true, Data: escape(data[off:end])})
				off = end
				inFlight++
			}
			if off >= len(data) && inFlight == 0 {
				c.ch.Close()
				return
			}
		default:
			c.t.Fatalf("meshctrl upload got %s", r.Raw)
		}
	}
}

// downloadWebUI downloads like the web UI (binary commands, numeric id).
func downloadWebUI(c *client, path string) ([]byte, reply) {
	c.t.Helper()
	id := 0.6180339
	c.cmd(true, map[string]any{"action": "download", "sub": "start", "id": id, "path": path})
	r := c.nextJSON()
	if r.Binary {
		c.t.Fatalf("download start reply must be text: %s", r.Raw)
	}
	if r.M["sub"] != "start" || r.M["id"] != id {
		return nil, r
	}
	c.cmd(true, map[string]any{"action": "download", "sub": "startack", "id": id})
	var out bytes.Buffer
	for {
		f := c.next()
		if !f.Binary || len(f.Data) < 4 || f.Data[0] == '{' {
			c.t.Fatalf("unexpected frame during download: %q", f.Data)
		}
		out.Write(f.Data[4:])
		if binary.BigEndian.Uint32(f.Data)&1 != 0 {
			return out.Bytes(), r
		}
		c.cmd(true, clientAck(id))
	}
}

// downloadMeshctrl downloads like meshctrl: text commands, id = path, end
// flag in byte 3.
func downloadMeshctrl(c *client, path string) []byte {
	c.t.Helper()
	c.cmd(false, map[string]any{"action": "download", "sub": "start", "id": path, "path": path})
	r := c.nextJSON()
	if r.M["sub"] != "start" || r.M["id"] != path {
		c.t.Fatalf("download start = %s", r.Raw)
	}
	c.cmd(false, map[string]any{"action": "download", "sub": "startack", "id": path})
	var out bytes.Buffer
	for {
		f := c.next()
		if len(f.Data) > 0 && f.Data[0] == '{' {
			c.t.Fatalf("unexpected JSON during download: %s", f.Data)
		}
		out.Write(f.Data[4:])
		if f.Data[3]&1 != 0 {
			return out.Bytes()
		}
		c.cmd(false, clientAck(path))
	}
}

func sum(b []byte) [32]byte { return sha256.Sum256(b) }

func TestUploadDownloadRoundTrip(t *testing.T) {
	data := randomData(t, 5<<20+12345)
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// web UI upload, then both downloads
			c := startFiles(t, tc.tr, adminInfo())
			if r := uploadWebUI(c, dir, "web.bin", data); r.M["action"] != "uploaddone" || r.M["reqid"] != float64(7) || !r.Binary {
				t.Fatalf("upload ended with %s", r.Raw)
			}
			got, _ := os.ReadFile(filepath.Join(dir, "web.bin"))
			if sum(got) != sum(data) {
				t.Fatalf("uploaded file differs (%d bytes, want %d)", len(got), len(data))
			}
			dl, _ := downloadWebUI(c, filepath.Join(dir, "web.bin"))
			if sum(dl) != sum(data) {
				t.Fatalf("web UI download differs (%d bytes)", len(dl))
			}
			if dl := downloadMeshctrl(c, filepath.Join(dir, "web.bin")); sum(dl) != sum(data) {
				t.Fatalf("meshctrl download differs (%d bytes)", len(dl))
			}
			c.ch.Close()
			c.serveResult()

			// meshctrl upload: no uploaddone, the close commits the file
			c = startFiles(t, tc.tr, adminInfo())
			uploadMeshctrl(c, dir, "ctl.bin", data)
			if err := c.serveResult(); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			got, _ = os.ReadFile(filepath.Join(dir, "ctl.bin"))
			if sum(got) != sum(data) {
				t.Fatalf("meshctrl upload differs (%d bytes)", len(got))
			}
			assertNoTemp(t, dir)
		})
	}
}

func assertNoTemp(t testing.TB, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), ".meshupload-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestDownloadBlockBoundaries(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name   string
		size   int
		blocks int
	}{
		{"empty", 0, 1},
		{"small", 10, 1},
		{"exact block", blockData, 2}, // ends with an empty last block
		{"two blocks", blockData + 1, 2},
	}
	c := startFiles(t, pipeTransport, adminInfo())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := randomData(t, tc.size)
			p := filepath.Join(dir, tc.name)
			os.WriteFile(p, data, 0o644)
			c.cmd(false, map[string]any{"action": "download", "sub": "start", "id": p, "path": p})
			c.nextJSON()
			c.cmd(false, map[string]any{"action": "download", "sub": "startack", "id": p, "ack": 1})
			var got []byte
			for n := 1; ; n++ {
				f := c.next()
				got = append(got, f.Data[4:]...)
				flags := binary.BigEndian.Uint32(f.Data)
				if flags == flagLast {
					if n != tc.blocks {
						t.Fatalf("%d blocks, want %d", n, tc.blocks)
					}
					break
				}
				if flags != flagMore {
					t.Fatalf("flags %#x", flags)
				}
				c.cmd(false, map[string]any{"action": "download", "sub": "ack", "id": p})
			}
			if !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
		})
	}
}

func TestDownloadRefusals(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	mkfifo(t, fifo)
	cases := []struct{ name, path string }{
		{"missing", filepath.Join(dir, "nope")},
		{"folder", dir},
		{"fifo", fifo},
	}
	c := startFiles(t, pipeTransport, adminInfo())
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.cmd(true, map[string]any{"action": "download", "sub": "start", "id": 3, "path": tc.path})
			r := c.nextJSON()
			if r.Binary || r.M["sub"] != "cancel" || r.M["id"] != float64(3) || r.M["error"] == nil {
				t.Fatalf("reply = %s", r.Raw)
			}
		})
	}
	// No path at all (reference bug §7 #6: it threw).
	c.cmd(true, map[string]any{"action": "download", "sub": "start", "id": 4})
	if r := c.nextJSON(); r.M["sub"] != "cancel" {
		t.Fatalf("reply = %s", r.Raw)
	}
}

func TestKilledMidUploadKeepsOldFile(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "doc.txt")
			old := []byte("the good old content\n")
			os.WriteFile(target, old, 0o640)
			c := startFiles(t, tc.tr, adminInfo())
			data := randomData(t, 1<<20)
			c.cmd(true, map[string]any{"action": "upload", "reqid": 1, "path": dir, "name": "doc.txt", "size": len(data)})
			if r := c.nextJSON(); r.M["action"] != "uploadstart" {
				t.Fatalf("reply %s", r.Raw)
			}
			c.sendRaw(session.Frame{Binary: true, Data: escape(data[:65536])})
			if r := c.nextJSON(); r.M["action"] != "uploadack" {
				t.Fatalf("reply %s", r.Raw)
			}
			c.ch.Close() // connection dies half way
			c.serveResult()
			got, _ := os.ReadFile(target)
			if !bytes.Equal(got, old) {
				t.Fatalf("old file changed: %q", got)
			}
			if st, _ := os.Stat(target); runtime.GOOS != "windows" && st.Mode().Perm() != 0o640 { // no POSIX modes on Windows
				t.Fatalf("mode changed: %v", st.Mode())
			}
			assertNoTemp(t, dir)
		})
	}
}

func TestUploadCancelAndReplaceKeepsMode(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "f")
	os.WriteFile(target, []byte("old"), 0o600)
	c := startFiles(t, pipeTransport, adminInfo())
	c.cmd(false, map[string]any{"action": "upload", "reqid": "x", "path": dir, "name": "f"})
	c.nextJSON()
	c.sendRaw(session.Frame{Binary: true, Data: []byte("new data")})
	c.nextJSON()
	c.cmd(false, map[string]any{"action": "uploadcancel", "reqid": "x"})
	if r := c.nextJSON(); r.M["action"] != "uploadcancel" || r.M["reqid"] != "x" {
		t.Fatalf("reply %s", r.Raw)
	}
	if got, _ := os.ReadFile(target); string(got) != "old" {
		t.Fatalf("cancel changed the file: %q", got)
	}
	// Now a complete one, with a 0x00-escaped first chunk and append.
	c.cmd(false, map[string]any{"action": "upload", "reqid": "y", "path": dir, "name": "f", "append": true})
	c.nextJSON()
	c.sendRaw(session.Frame{Binary: true, Data: []byte("\x00{more}")})
	c.nextJSON()
	c.cmd(true, map[string]any{"action": "uploaddone", "reqid": "y"})
	if r := c.nextJSON(); r.M["action"] != "uploaddone" {
		t.Fatalf("reply %s", r.Raw)
	}
	got, _ := os.ReadFile(target)
	if string(got) != "old{more}" {
		t.Fatalf("content %q", got)
	}
	if st, _ := os.Stat(target); runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 { // no POSIX modes on Windows
		t.Fatalf("mode %v", st.Mode())
	}
	// Upload without size that is dropped: discarded, old file kept.
	c.cmd(false, map[string]any{"action": "upload", "reqid": "z", "path": dir, "name": "f"})
	c.nextJSON()
	c.sendRaw(session.Frame{Binary: true, Data: []byte("partial")})
	c.nextJSON()
	c.ch.Close()
	c.serveResult()
	if got, _ := os.ReadFile(target); string(got) != "old{more}" {
		t.Fatalf("dropped sizeless upload replaced the file: %q", got)
	}
	assertNoTemp(t, dir)
}

func TestKilledMidDownload(t *testing.T) {
	for _, tc := range transports {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "big")
			os.WriteFile(p, randomData(t, 4<<20), 0o644)
			before, goroutines := countFDs(t), runtime.NumGoroutine()
			c := startFiles(t, tc.tr, adminInfo())
			c.cmd(false, map[string]any{"action": "download", "sub": "start", "id": "d", "path": p})
			c.nextJSON()
			c.cmd(false, map[string]any{"action": "download", "sub": "startack", "id": "d"})
			for i := 0; i < 3; i++ {
				c.next()
			}
			c.ch.Close()
			if err := c.serveResult(); err != nil && err != context.Canceled {
				t.Fatalf("Serve: %v", err)
			}
			if tc.name == "pipe" {
				if after := countFDs(t); after > before {
					t.Fatalf("fd leak: %d before, %d after", before, after)
				}
				waitGoroutines(t, goroutines)
			}
		})
	}
}

func TestTwoSessionsAtOnce(t *testing.T) {
	dir := t.TempDir()
	a := randomData(t, 3<<20)
	b := randomData(t, 2<<20+7)
	c1 := startFiles(t, pipeTransport, adminInfo())
	c2 := startFiles(t, wsTransport, adminInfo())
	errs := make(chan string, 2)
	go func() {
		r := uploadWebUI(c1, dir, "a", a)
		errs <- r.M["action"].(string)
	}()
	go func() {
		r := uploadWebUI(c2, dir, "b", b)
		errs <- r.M["action"].(string)
	}()
	for i := 0; i < 2; i++ {
		if got := <-errs; got != "uploaddone" {
			t.Fatalf("upload ended with %s", got)
		}
	}
	if dl, _ := downloadWebUI(c2, filepath.Join(dir, "a")); sum(dl) != sum(a) {
		t.Fatal("a differs")
	}
	if dl, _ := downloadWebUI(c1, filepath.Join(dir, "b")); sum(dl) != sum(b) {
		t.Fatal("b differs")
	}
}

func TestFileTransferProtocol10(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.bin")
	data := randomData(t, 200000)
	os.WriteFile(p, data, 0o644)
	info := adminInfo()
	info.Protocol = session.ProtoFileTransfer
	// The web UI sends Unix paths without their leading "/" and Windows
	// paths as they are; JSON-encoded, as a Windows path has backslashes.
	opts, _ := json.Marshal(map[string]string{"type": "options", "file": strings.TrimPrefix(p, "/")})
	info.Options = opts
	c := startFiles(t, pipeTransport, info)
	r := c.nextJSON()
	if r.Binary || r.M["op"] != "ok" || r.M["size"] != float64(len(data)) {
		t.Fatalf("reply %s", r.Raw)
	}
	var got []byte
	for len(got) < len(data) {
		got = append(got, c.next().Data...)
	}
	c.waitClosed()
	if !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
	info.Options = []byte(`{"file":"/nonexistent/x"}`)
	c = startFiles(t, pipeTransport, info)
	if r := c.nextJSON(); r.M["op"] != "cancel" {
		t.Fatalf("reply %s", r.Raw)
	}
}

// waitGoroutines fails if the goroutine count does not fall back to n.
func waitGoroutines(t testing.TB, n int) {
	t.Helper()
	for i := 0; i < 100 && runtime.NumGoroutine() > n; i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > n {
		t.Fatalf("goroutine leak: %d before, %d after", n, g)
	}
}

// The short last block never overtakes full blocks in flight: it is sent
// only once every earlier block was acknowledged, because MeshCentral's
// web UI writes a short last block at once and full ones asynchronously.
func TestLastBlockWaitsForAcks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f.bin")
	data := randomData(t, 3*blockData+100) // 3 full blocks and a short one
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := startFiles(t, pipeTransport, adminInfo())
	c.cmd(false, map[string]any{"action": "download", "sub": "start", "id": path, "path": path})
	if r := c.nextJSON(); r.M["sub"] != "start" {
		t.Fatalf("start: %s", r.Raw)
	}
	c.cmd(false, map[string]any{"action": "download", "sub": "startack", "id": path}) // window 8
	var got bytes.Buffer
	for i := 0; i < 3; i++ {
		f := c.next()
		if f.Data[3]&1 != 0 {
			t.Fatalf("block %d is marked last", i)
		}
		got.Write(f.Data[4:])
	}
	c.noReply(200 * time.Millisecond) // the last block waits for the acks
	for i := 0; i < 3; i++ {
		c.cmd(false, clientAck(path))
	}
	f := c.next()
	if f.Data[3]&1 == 0 {
		t.Fatal("fourth block is not the last")
	}
	got.Write(f.Data[4:])
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("downloaded data differs")
	}
}

// clientAck is a block ack as MeshCentral's clients spell it
// (JSON.stringify keeps this key order).
func clientAck(id any) any {
	return struct {
		Action string `json:"action"`
		Sub    string `json:"sub"`
		ID     any    `json:"id"`
	}{"download", "ack", id}
}

func TestIsDownloadAck(t *testing.T) {
	for _, tc := range []struct {
		data, id string
		want     bool
	}{
		{`{"action":"download","sub":"ack","id":"/tmp/a b"}`, `"/tmp/a b"`, true},
		{`{"action":"download","sub":"ack","id":0.6180339}`, `0.6180339`, true},
		{`{"action":"download","sub":"ack","id":0.6180339}`, `0.618033`, false},
		{`{"action":"download","sub":"ack","id":12}`, `1`, false},
		{`{"action":"download","sub":"ack","id":1}x`, `1`, false},
		{`{"action":"download","sub":"ack","id":1,"x":2}`, `1`, false},
		{`{"action":"download","sub":"ack","id":1`, `1`, false},
		{`{"action":"download","sub":"stop","id":1}`, `1`, false},
		{`{"action":"download","id":1,"sub":"ack"}`, `1`, false}, // the general parser's case
		{`{"action":"download","sub":"ack","id":}`, ``, false},
	} {
		if got := isDownloadAck([]byte(tc.data), []byte(tc.id)); got != tc.want {
			t.Errorf("isDownloadAck(%s, %s) = %v, want %v", tc.data, tc.id, got, tc.want)
		}
	}
}

// Acks spelled other than the clients' (other key order, spaces) take the
// general parser and drive the download the same way.
func TestDownloadAckSpellings(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f.bin")
	data := randomData(t, 5*blockData+7)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ack  func(id string) []byte
	}{
		{"clients' spelling", func(id string) []byte { b, _ := json.Marshal(clientAck(id)); return b }},
		{"sorted keys", func(id string) []byte {
			b, _ := json.Marshal(map[string]any{"action": "download", "sub": "ack", "id": id})
			return b
		}},
		{"spaces", func(id string) []byte {
			q, _ := json.Marshal(id) // a Windows path has backslashes to escape
			return []byte(`{ "action": "download", "sub": "ack", "id": ` + string(q) + ` }`)
		}},
	} {
		c := startFiles(t, wsTransport, adminInfo())
		c.cmd(false, map[string]any{"action": "download", "sub": "start", "id": p, "path": p})
		if r := c.nextJSON(); r.M["sub"] != "start" {
			t.Fatalf("%s: start reply %s", tc.name, r.Raw)
		}
		c.cmd(false, map[string]any{"action": "download", "sub": "startack", "id": p, "ack": 1})
		var out bytes.Buffer
		for {
			f := c.next()
			out.Write(f.Data[4:])
			if f.Data[3]&1 != 0 {
				break
			}
			c.sendRaw(session.Frame{Data: tc.ack(p)})
		}
		if !bytes.Equal(out.Bytes(), data) {
			t.Errorf("%s: got %d bytes, want the file's %d", tc.name, out.Len(), len(data))
		}
	}
}
