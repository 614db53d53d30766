package adminapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

// fakeAgents stands in for agentconn's registry: devices listed in online
// are connected; runcommands with reply are answered like the C agent does.
type fakeAgents struct {
	mu     sync.Mutex
	online map[string]bool
	sent   []map[string]any
	api    *Server
	noEcho bool // do not echo sessionid (an older agent)
	pushed map[string][]byte
}

func (f *fakeAgents) Connected(n string) (AgentState, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.online[n] {
		return AgentState{}, false
	}
	return AgentState{ConnectTime: time.UnixMilli(1_795_000_000_000), RemoteAddr: "127.0.0.1:5555"}, true
}

func (f *fakeAgents) SendJSON(n string, v any) error {
	b, _ := json.Marshal(v)
	var m map[string]any
	json.Unmarshal(b, &m)
	f.mu.Lock()
	f.sent = append(f.sent, m)
	noEcho := f.noEcho
	f.mu.Unlock()
	if m["action"] == "runcommands" && m["reply"] == true {
		rep := map[string]any{"action": "msg", "type": "runcommands", "result": "ran: " + m["cmds"].(string) + "\n", "responseid": m["responseid"]}
		if !noEcho {
			rep["sessionid"] = m["sessionid"]
		}
		rb, _ := json.Marshal(rep)
		go f.api.AgentMessage(n, rb)
	}
	return nil
}

func (f *fakeAgents) Disconnect(n string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.online, n)
}

func (f *fakeAgents) PushScript(n string, script []byte, who string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pushed == nil {
		f.pushed = map[string][]byte{}
	}
	f.pushed[n] = script
	return nil
}

func (f *fakeAgents) sentTo(action string) []map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []map[string]any
	for _, m := range f.sent {
		if m["action"] == action {
			out = append(out, m)
		}
	}
	return out
}

type testEnv struct {
	t      *testing.T
	st     *store.Store
	acc    *accounts.Manager
	api    *Server
	agents *fakeAgents
	srv    *httptest.Server
	url    string // wss://127.0.0.1:port
	admin  string
	pass   string
}

func newEnv(t *testing.T) *testEnv {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	acc := accounts.New(accounts.FromStore(st))
	acc.SetHashCost(bcrypt.MinCost)
	name, pass, _, err := acc.EnsureAdmin()
	if err != nil {
		t.Fatal(err)
	}
	fa := &fakeAgents{online: map[string]bool{}}
	e := &testEnv{t: t, st: st, acc: acc, agents: fa, admin: name, pass: pass}
	// The handler is installed once the API exists (it needs the port and
	// the certificate); a stray early connection gets 503.
	var handler atomic.Pointer[http.Handler]
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := handler.Load(); h != nil {
			(*h).ServeHTTP(w, r)
			return
		}
		http.Error(w, "starting", http.StatusServiceUnavailable)
	}))
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	u, _ := url.Parse(e.srv.URL)
	port := 0
	fmt.Sscanf(u.Port(), "%d", &port)
	h := sha512.Sum384(e.srv.TLS.Certificates[0].Certificate[0])
	key := make([]byte, loginKeyLen)
	rand.Read(key)
	e.api = New(Config{Store: st, Accounts: acc, Agents: fa, ServerName: "127.0.0.1", Port: port, LoginKey: key,
		TLSHash: func() string { return hex.EncodeToString(h[:]) }, AgentCertHash: handshake.EncodeID(h[:])})
	fa.api = e.api
	apiHandler := e.api.Handler()
	handler.Store(&apiHandler)
	e.url = "wss://" + u.Host
	return e
}

// addDevice stores a device in group meshID; online connects it.
func (e *testEnv) addDevice(meshID, name string, online bool) string {
	e.t.Helper()
	b := make([]byte, handshake.HashLen)
	copy(b, name)
	id := "node//" + handshake.EncodeID(b)
	d := store.Device{ID: id, GroupID: meshID, Name: name, RName: name, Icon: 1, AgentID: 6, Caps: 31,
		CoreName: "test core", OSDesc: "Debian GNU/Linux 12", IP: "127.0.0.1", FirstConnect: time.Now(), LastConnect: time.Now()}
	if err := e.st.PutDevice(d); err != nil {
		e.t.Fatal(err)
	}
	e.agents.mu.Lock()
	e.agents.online[id] = online
	e.agents.mu.Unlock()
	return id
}

// meshctrlPath is MeshCentral's CLI from the interop harness's install.
func meshctrlPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(mctest.Install(t), "meshctrl.js")
}

// meshctrl runs the real CLI against the test server as user/pass.
func (e *testEnv) meshctrlAs(user, pass string, args ...string) string {
	e.t.Helper()
	p := meshctrlPath(e.t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	full := append([]string{p}, args...)
	full = append(full, "--url", e.url, "--loginuser", user, "--loginpass", pass)
	cmd := exec.CommandContext(ctx, "node", full...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		e.t.Fatalf("meshctrl %s timed out; output:\n%s", args[0], out)
	}
	if err != nil && args[0] != "agentdownload" {
		e.t.Logf("meshctrl %s: %v", args[0], err)
	}
	return string(out)
}

func (e *testEnv) meshctrl(args ...string) string { return e.meshctrlAs(e.admin, e.pass, args...) }

func (e *testEnv) mustJSON(out string, v any) {
	e.t.Helper()
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), v); err != nil {
		e.t.Fatalf("decode %q: %v", out, err)
	}
}

// createGroup creates a group through meshctrl and returns its id.
func (e *testEnv) createGroup(name string) string {
	e.t.Helper()
	out := strings.TrimSpace(e.meshctrl("adddevicegroup", "--name", name))
	id, ok := strings.CutPrefix(out, "ok ")
	if !ok || !strings.HasPrefix(id, "mesh//") || len(id) != 70 {
		e.t.Fatalf("adddevicegroup: %q", out)
	}
	return id
}

// syncBuf collects output from several goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
