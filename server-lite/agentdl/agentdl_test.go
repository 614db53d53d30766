package agentdl

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/pe"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meshgo/meshagent/build/agentflags"
)

// mcAgents is MeshCentral 1.1.55's agents directory (its C agents and
// install scripts), installed by .ci/run.
const mcAgents = "/root/.cache/meshgo/meshcentral-1.1.55/node_modules/meshcentral/agents"

const testMsh = "\r\nMeshName=Office 2\r\nMeshType=2\r\nMeshID=0xABCD\r\nServerID=1234\r\nMeshServer=wss://lite.example.test:4443/agent.ashx\r\nignoreProxyFile=1\r\n"

// fakePE is a minimal 64-bit Windows executable header, with an
// Authenticode certificate table when signed.
func fakePE(signed bool) []byte {
	var b bytes.Buffer
	dos := make([]byte, 64)
	copy(dos, "MZ")
	binary.LittleEndian.PutUint32(dos[0x3c:], 64)
	b.Write(dos)
	b.WriteString("PE\x00\x00")
	binary.Write(&b, binary.LittleEndian, pe.FileHeader{Machine: pe.IMAGE_FILE_MACHINE_AMD64, SizeOfOptionalHeader: 240, Characteristics: 0x22})
	oh := pe.OptionalHeader64{Magic: 0x20b, NumberOfRvaAndSizes: 16, SectionAlignment: 0x1000, FileAlignment: 0x200}
	if signed {
		oh.DataDirectory[pe.IMAGE_DIRECTORY_ENTRY_SECURITY] = pe.DataDirectory{VirtualAddress: 0x400, Size: 8}
	}
	binary.Write(&b, binary.LittleEndian, oh)
	b.WriteString("program bytes")
	return b.Bytes()
}

type fixture struct {
	ours, c string
	files   map[string][]byte
}

func newFixture(t *testing.T) *fixture { return newFixtureF(t) }

func newFixtureF(t testing.TB) *fixture {
	f := &fixture{ours: t.TempDir(), c: t.TempDir(), files: map[string][]byte{}}
	put := func(dir, name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o755); err != nil {
			t.Fatal(err)
		}
		f.files[name] = b
	}
	put(f.ours, "meshagent-linux-amd64", []byte("our linux agent"))
	put(f.ours, "meshagent-windows-amd64.exe", fakePE(false))
	put(f.c, "meshagent_x86-64", []byte("C linux agent"))
	put(f.c, "meshagent_x86", []byte("C linux 32-bit agent"))
	put(f.c, "MeshService64.exe", fakePE(true))
	put(f.c, "MeshService.exe", fakePE(false))
	for _, s := range []string{"meshinstall-linux.sh", "meshinstall-linux.js"} {
		b, err := os.ReadFile(filepath.Join(mcAgents, s))
		if err != nil {
			t.Skipf("MeshCentral's install scripts: %v", err)
		}
		put(f.c, s, b)
	}
	return f
}

func (f *fixture) handler(t testing.TB, mod func(*Config)) *Handler {
	cfg := Config{Dir: f.ours, CAgentDir: f.c, Msh: func(id string) ([]byte, error) {
		if strings.TrimPrefix(id, "mesh//") == "G1" {
			return []byte(testMsh), nil
		}
		return nil, errors.New("no such group")
	}}
	if mod != nil {
		mod(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		panic(err)
	}
	return h
}

func get(h http.Handler, method, query string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, "/meshagents"+query, nil))
	return w
}

func trailer(body, extra []byte, guid string) []byte {
	g, _ := hex.DecodeString(guid)
	n := make([]byte, 4)
	binary.BigEndian.PutUint32(n, uint32(len(extra)))
	return append(append(append(append([]byte(nil), body...), extra...), n...), g...)
}

func TestDownloads(t *testing.T) {
	f := newFixture(t)
	h := f.handler(t, nil)
	preferC := f.handler(t, func(c *Config) { c.PreferCAgent = true })
	onlyOurs := f.handler(t, func(c *Config) { c.CAgentDir = "" })
	trusted := f.handler(t, func(c *Config) { c.TrustedCert = func() bool { return true } })
	cases := []struct {
		name     string
		h        *Handler
		method   string
		query    string
		code     int
		body     []byte // exact, if set
		contains string // in the body, if set
		filename string
	}{
		{"ours for id 6", h, "GET", "?id=6", 200, f.files["meshagent-linux-amd64"], "", "meshagent"},
		{"HEAD", h, "HEAD", "?id=6", 200, nil, "", "meshagent"},
		{"C agent preferred", preferC, "GET", "?id=6", 200, f.files["meshagent_x86-64"], "", "meshagent"},
		{"C agent where we build none", h, "GET", "?id=5", 200, f.files["meshagent_x86"], "", "meshagent"},
		{"unknown id", h, "GET", "?id=99", 404, nil, "no agent binary for id 99", ""},
		{"no binary for a known id", onlyOurs, "GET", "?id=5", 404, nil, "no agent binary", ""},
		{"bad id", h, "GET", "?id=x", 404, nil, "", ""},
		{"linux with meshid: binary only", h, "GET", "?id=6&meshid=G1", 200, f.files["meshagent-linux-amd64"], "", "meshagent"},
		{"windows with meshid: .msh appended", h, "GET", "?id=4&meshid=G1", 200, trailer(f.files["meshagent-windows-amd64.exe"], []byte(testMsh), meshPolicyGUID), "", "meshagent64-Office2.exe"},
		{"windows without meshid", h, "GET", "?id=4", 200, f.files["meshagent-windows-amd64.exe"], "", "meshagent64.exe"},
		{"windows, unknown group", h, "GET", "?id=4&meshid=nope", 401, nil, "", ""},
		{"signed windows C agent", preferC, "GET", "?id=4&meshid=G1", 404, nil, "signed Windows binary", ""},
		{"unsigned windows C agent", h, "GET", "?id=3&meshid=G1", 200, trailer(f.files["MeshService.exe"], []byte(testMsh), meshPolicyGUID), "", "meshagent32-Office2.exe"},
		{"installer needs the C agent", onlyOurs, "GET", "?id=G1&meshinstall=6", 404, nil, "our agent runs no appended JavaScript", ""},
		{"installer, unknown group", h, "GET", "?id=nope&meshinstall=6", 401, nil, "", ""},
		{"installer for windows", h, "GET", "?id=G1&meshinstall=4", 404, nil, "", ""},
		{"script 1, self-signed", h, "GET", "?script=1", 200, nil, "wget $url/meshagents?id=$machineid --no-check-certificate -O ./meshagent || curl -L -k --output", "meshinstall.sh"},
		{"script 1, trusted", trusted, "GET", "?script=1", 200, nil, "wget $url/meshagents?id=$machineid -O ./meshagent || curl -L --output", "meshinstall.sh"},
		{"script not provided", onlyOurs, "GET", "?script=1", 404, nil, "MeshCentral's agents directory", ""},
		{"unknown script", h, "GET", "?script=3", 404, nil, "", ""},
		{"nothing asked", h, "GET", "", 404, nil, "", ""},
		{"POST", h, "POST", "?id=6", 405, nil, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := get(tc.h, tc.method, tc.query)
			if w.Code != tc.code {
				t.Fatalf("%s %s: %d %q", tc.method, tc.query, w.Code, w.Body.String())
			}
			if tc.body != nil && !bytes.Equal(w.Body.Bytes(), tc.body) {
				t.Fatalf("body %q\nwant %q", w.Body.Bytes(), tc.body)
			}
			if tc.method == "HEAD" && w.Body.Len() != 0 {
				t.Fatal("HEAD with a body")
			}
			if tc.contains != "" && !strings.Contains(w.Body.String(), tc.contains) {
				t.Fatalf("body lacks %q:\n%.400s", tc.contains, w.Body.String())
			}
			if tc.filename != "" && w.Header().Get("Content-Disposition") != `attachment; filename="`+tc.filename+`"` {
				t.Fatalf("Content-Disposition %q", w.Header().Get("Content-Disposition"))
			}
			if tc.code == 200 && w.Header().Get("Content-Type") != "application/octet-stream" {
				t.Fatalf("Content-Type %q", w.Header().Get("Content-Type"))
			}
		})
	}
	if b := get(h, "GET", "?script=1").Body.String(); strings.Contains(b, "{{{") || strings.Contains(b, "\r\n") {
		t.Fatal("script keeps placeholders or CRLF")
	}
}

// TestInstaller: ?id=G&meshinstall=6 is the C agent followed by
// MeshCentral's meshinstall-linux.js with the group's settings merged in as
// a JSON object, its length and the JavaScript GUID, as exeHandler.js
// writes them.
func TestInstaller(t *testing.T) {
	f := newFixture(t)
	w := get(f.handler(t, nil), "GET", "?id=G1&meshinstall=6")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	b := w.Body.Bytes()
	bin := f.files["meshagent_x86-64"]
	g, _ := hex.DecodeString(javaScriptGUID)
	if !bytes.HasPrefix(b, bin) || !bytes.HasSuffix(b, g) {
		t.Fatal("not binary ... GUID")
	}
	n := binary.BigEndian.Uint32(b[len(b)-len(g)-4:])
	js := b[len(bin) : len(b)-len(g)-4]
	if int(n) != len(js) {
		t.Fatalf("length %d, script %d", n, len(js))
	}
	want := `var msh = {"MeshID":"0xABCD","MeshName":"Office 2","MeshServer":"wss://lite.example.test:4443/agent.ashx","MeshType":"2","ServerID":"1234","ignoreProxyFile":"1"};`
	if !bytes.Contains(js, []byte(want)) || bytes.Contains(js, []byte("var msh = {};")) {
		t.Fatalf("settings not merged:\n%.2000s", js)
	}
	if w.Header().Get("Content-Length") != strconv.Itoa(len(b)) {
		t.Fatalf("Content-Length %s, sent %d", w.Header().Get("Content-Length"), len(b))
	}
}

func TestNewRefusesMissingDirs(t *testing.T) {
	for _, cfg := range []Config{{Dir: "/nonexistent"}, {CAgentDir: "/nonexistent"}, {SourceTree: t.TempDir()}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}

// TestBuildOnFirstUse: with the source tree and no release build, the
// first request builds our agent (CGO_ENABLED=0 and the tags, as
// release.sh) and later ones serve the same file.
func TestBuildOnFirstUse(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go tool")
	}
	root, _ := filepath.Abs("../..")
	cache := t.TempDir()
	h, err := New(Config{SourceTree: root, CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	w := get(h, "GET", "?id=6")
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	built, err := os.ReadFile(filepath.Join(cache, "meshagent-linux-amd64"))
	if err != nil || sha256.Sum256(built) != sha256.Sum256(w.Body.Bytes()) {
		t.Fatalf("served %d bytes, cache %d (%v)", w.Body.Len(), len(built), err)
	}
	if !bytes.HasPrefix(built, []byte("\x7fELF")) {
		t.Fatal("not an ELF binary")
	}
	bi, err := buildinfo.ReadFile(filepath.Join(cache, "meshagent-linux-amd64"))
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	if settings["-tags"] != agentflags.Tags || settings["CGO_ENABLED"] != "0" {
		t.Fatalf("built with -tags %q CGO_ENABLED=%q, want %q and 0", settings["-tags"], settings["CGO_ENABLED"], agentflags.Tags)
	}
	if w2 := get(h, "GET", "?id=6"); !bytes.Equal(w2.Body.Bytes(), w.Body.Bytes()) {
		t.Fatal("second download differs")
	}
}
