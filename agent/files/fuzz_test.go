package files

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/meshgo/meshagent/proto/session"
)

// FuzzParseRequest: any client frame must decode without panicking, and
// echoed ids must stay valid JSON.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"action":"ls","reqid":1,"path":""}`,
		`{"action":"upload","reqid":"up","path":"/tmp","name":"x","size":"12","append":1}`,
		`{"action":"download","sub":"startack","id":0.5,"ack":8}`,
		`{"action":"rm","path":"/x","delfiles":["a",1,null],"rec":true}`,
		`{"ctrlChannel":102938,"type":"rtt","time":1}`,
		`{"type":"offer","sdp":"v=0"}`,
		`{"size":1e300,"ack":-1}`, `{`, `[]`, "\x00",
		`{"action":"ls","path":"\\\\srv\\share\\..\\x"}`, `{"action":"ls","path":"c:/a/../.."}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := parseRequest(data)
		if err != nil {
			return
		}
		for _, raw := range []json.RawMessage{r.ReqID, r.ID, r.Tag, r.Time} {
			if raw != nil && !json.Valid(raw) {
				t.Fatalf("invalid echo %q", raw)
			}
		}
		if r.Size < -1 || r.Ack < 0 {
			t.Fatalf("size %d ack %d", r.Size, r.Ack)
		}
		// Whatever names arrive, checkName never lets a separator through.
		for _, n := range append(append(r.DelFiles, r.Names...), r.Name, r.OldName, r.NewName) {
			if checkName(n) == nil && (bytes.ContainsAny([]byte(n), nameForbidden) || n == ".." || n == ".") {
				t.Fatalf("bad name %q accepted", n)
			}
		}
		// The Windows policy is idempotent and always yields a drive or UNC path.
		if p, err := cleanWindowsPath(r.Path); err == nil {
			if p2, err := cleanWindowsPath(p); err != nil || p2 != p {
				t.Fatalf("cleanWindowsPath not idempotent: %q -> %q, %v", p, p2, err)
			}
			if !(len(p) >= 3 && p[1] == ':' && p[2] == '\\') && !strings.HasPrefix(p, `\\`) {
				t.Fatalf("cleanWindowsPath(%q) = %q", r.Path, p)
			}
		}
		// Resolved paths are absolute and clean, never relative.
		if p, err := resolvePath(r.Path); err == nil {
			if p2, _ := resolvePath(p); p2 != p {
				t.Fatalf("resolvePath not idempotent: %q -> %q", p, p2)
			}
		}
	})
}

// FuzzUploadFraming: the client-side escape (a 0x00 before chunks starting
// with 0x00 or '{') must round-trip through uploadChunk, and no frame
// starting with '{' is ever taken as data.
func FuzzUploadFraming(f *testing.F) {
	for _, s := range []string{"", "\x00", "{", "\x00{", "abc", "{\"action\":\"uploaddone\"}"} {
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, chunk []byte, binary bool) {
		frame := chunk
		if len(chunk) > 0 && (chunk[0] == 0 || chunk[0] == '{') {
			frame = append([]byte{0}, chunk...)
		}
		data, ok := uploadChunk(session.Frame{Binary: true, Data: frame}, true)
		if !ok || !bytes.Equal(data, chunk) {
			t.Fatalf("escaped chunk %q decoded as %q (ok=%v)", chunk, data, ok)
		}
		// Raw frames: text is never data, '{' is never data, and nothing is
		// data without an open upload.
		if _, ok := uploadChunk(session.Frame{Binary: binary, Data: chunk}, false); ok {
			t.Fatal("data without an upload")
		}
		d, ok := uploadChunk(session.Frame{Binary: binary, Data: chunk}, true)
		if ok && (!binary || (len(chunk) > 0 && chunk[0] == '{')) {
			t.Fatalf("frame %q taken as data", chunk)
		}
		if ok && len(d) > len(chunk) {
			t.Fatal("data grew")
		}
	})
}
