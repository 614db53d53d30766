package adminapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/store"
)

func FuzzParseMeshAuth(f *testing.F) {
	f.Add(b64("admin") + "," + b64("pw"))
	f.Add(b64("admin") + "," + b64("pw") + "," + b64("123"))
	f.Add(",,,")
	f.Add("")
	f.Fuzz(func(t *testing.T, h string) {
		u, p, c, err := parseMeshAuth(h)
		if err != nil {
			return
		}
		u2, p2, c2, err := parseMeshAuth(b64(u) + "," + b64(p) + "," + b64(c))
		if err != nil || u2 != u || p2 != p || c2 != c {
			t.Fatalf("round trip of %q/%q/%q: %q/%q/%q %v", u, p, c, u2, p2, c2, err)
		}
	})
}

func FuzzRewriteTunnelValue(f *testing.F) {
	const node = "node//abc"
	f.Add("*/meshrelay.ashx?p=1&nodeid=node//abc&id=0123456789ab&rauth=xyz")
	f.Add("*/meshrelay.ashx?p=5&nodeid=node%2F%2Fnode%2F%2Fabc&id=x")
	f.Add("*/meshrelay.ashx?nodeid=node//other&id=1")
	f.Add("/meshrelay.ashx?p=1")
	f.Add("*/meshrelay.ashx?p=5&p=1&nodeid=node//abc&id=1")
	f.Add("*/meshrelay.ashx?p=5&%70=1&nodeid=node//abc&id=1")
	f.Fuzz(func(t *testing.T, v string) {
		out, proto, id, ok := rewriteTunnelValue(v, node)
		if !ok {
			return
		}
		// Whatever came in, what goes out has one p, the one checked.
		q, err := url.ParseQuery(strings.TrimPrefix(out, "*/meshrelay.ashx?"))
		if err != nil || len(q["p"]) != 1 || q.Get("p") != strconv.Itoa(proto) || len(q["id"]) != 1 || q.Get("id") != id {
			t.Fatalf("rewrite %q -> %q: p/id not single and checked (%v)", v, out, err)
		}
		if !strings.HasPrefix(out, "*/meshrelay.ashx?") || id == "" {
			t.Fatalf("bad rewrite %q -> %q", v, out)
		}
		for _, p := range strings.Split(strings.TrimPrefix(out, "*/meshrelay.ashx?"), "&") {
			k, val, _ := strings.Cut(p, "=")
			if k == "rauth" || k == "auth" {
				t.Fatalf("client credential kept: %q", out)
			}
			if k == "nodeid" && val != node {
				t.Fatalf("nodeid not canonical: %q", out)
			}
		}
	})
}

func FuzzNormID(f *testing.F) {
	f.Add("node//node//abc")
	f.Add("abc")
	f.Add("/")
	f.Fuzz(func(t *testing.T, id string) {
		n := normID("node", id)
		if n != "" && (!strings.HasPrefix(n, "node//") || strings.Count(n, "/") != 2) {
			t.Fatalf("normID(%q) = %q", id, n)
		}
	})
}

// fuzzServer is an API over real stores with one group, one device and an
// online fake agent, for dispatch fuzzing.
func fuzzServer(f *testing.F) (*Server, *conn) {
	st, err := store.Open(filepath.Join(f.TempDir(), "db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	acc := accounts.New(accounts.NewMemStore())
	acc.SetHashCost(bcrypt.MinCost)
	u, _ := acc.Create("admin", "pw", accounts.SiteAdmin)
	st.PutGroup(store.Group{ID: "mesh//g", Name: "G", MType: 2})
	st.PutDevice(store.Device{ID: "node//n", GroupID: "mesh//g", Name: "pc"})
	acc.SetLink(u.ID, "mesh//g", accounts.FullRights, false)
	fa := &fakeAgents{online: map[string]bool{"node//n": true}}
	s := New(Config{Store: st, Accounts: acc, Agents: fa})
	fa.api = s
	c := &conn{s: s, id: u.ID + "/x", userID: u.ID, ip: "127.0.0.1", out: make(chan []byte, 1<<16), closed: make(chan struct{})}
	s.sessions[c.id] = c
	return s, c
}

// FuzzControlDispatch feeds arbitrary frames to the control.ashx
// dispatcher: it must never panic (a recovered panic answers "Internal
// error", which fails the test), never reply with non-JSON, and never
// answer a request that has an action and responseid with silence.
func FuzzControlDispatch(f *testing.F) {
	for _, s := range []string{
		`{"action":"nodes","responseid":"x"}`,
		`{"action":"runcommands","nodeids":["n"],"type":0,"cmds":"ls","reply":true,"responseid":"x"}`,
		`{"action":"msg","type":"tunnel","nodeid":"n","value":"*/meshrelay.ashx?p=1&nodeid=node//n&id=1","responseid":"x"}`,
		`{"action":"createmesh","meshname":"a","meshtype":2,"responseid":"x"}`,
		`{"action":"addmeshuser","meshid":"g","usernames":["admin"],"meshadmin":1,"responseid":"x"}`,
		`{"action":"events","limit":-1,"user":"admin","responseid":"x"}`,
		`{"action":"changedevice","nodeid":"n","tags":"a,b,,a","icon":9,"responseid":"x"}`,
		`{"action":"adduser","username":"bob","pass":"x","siteadmin":1.5,"responseid":"x"}`,
		`{"action":"createLoginToken","name":"t","expire":"x","responseid":"x"}`,
		`{"action":"poweraction","nodeids":[1,null,"n"],"actiontype":3,"responseid":"x"}`,
		`{"action":"getsysinfo","nodeid":null,"responseid":"x"}`,
		`[]`, `null`, `{"action":7}`,
	} {
		f.Add([]byte(s))
	}
	s, c := fuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if !s.handle(c, data) {
			// "close" or a deleted account: reopen for the next input.
			c.closed = make(chan struct{})
			c.closeOnce = sync.Once{}
		}
		var req map[string]any
		wantReply := json.Unmarshal(data, &req) == nil && req["responseid"] != nil
		if a, ok := req["action"].(string); !ok || len(a) < 3 || len(a) > 32 || a == "ping" || a == "pong" || a == "close" {
			wantReply = false
		}
		if a, _ := req["action"].(string); a == "runcommands" && req["reply"] == true {
			wantReply = false // the agent answers asynchronously
		}
		got := false
		for {
			select {
			case b := <-c.out:
				var m map[string]any
				if err := json.Unmarshal(b, &m); err != nil {
					t.Fatalf("non-JSON reply %q", b)
				}
				if m["result"] == "Internal error" {
					t.Fatalf("handler failed on %q", data)
				}
				got = true
				continue
			default:
			}
			break
		}
		if wantReply && !got {
			t.Fatalf("no reply to %q", data)
		}
	})
}

func FuzzLoginForm(f *testing.F) {
	f.Add("username=admin&password=pw")
	f.Add("action=login&username=admin&password=wrong")
	f.Add("username=%zz")
	s, _ := fuzzServer(f)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		w := httptest.NewRecorder()
		s.serveLogin(w, r)
		ok := w.Code == http.StatusOK
		if ok != (len(w.Result().Cookies()) == 1) {
			t.Fatalf("status %d with cookies %v", w.Code, w.Result().Cookies())
		}
		if ok {
			r.ParseForm()
			if !strings.EqualFold(r.PostForm.Get("username"), "admin") || r.PostForm.Get("password") != "pw" {
				t.Fatalf("logged in with %q", body)
			}
		}
	})
}
