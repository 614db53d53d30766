//go:build linux

package webui

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// webRelayCfg is the webrelay flow of testdata/webui.js.
type webRelayCfg struct {
	Port       int    `json:"port"`
	PostPath   string `json:"postPath,omitempty"`
	PostBody   string `json:"postBody,omitempty"`
	NoSetPort  bool   `json:"noSetPort,omitempty"`
	Force      bool   `json:"force,omitempty"`
	LinkWaitMs int    `json:"linkWaitMs,omitempty"`
}

type webRelayResult struct {
	LinkShown  bool     `json:"linkShown"`
	Links      []string `json:"links"`
	PopupURL   string   `json:"popupURL"`
	Body       *string  `json:"body"`
	PostReply  *string  `json:"postReply"`
	Screenshot string   `json:"screenshot"`
}

// webRelayServer starts MeshCentral with its HTTP web relay server on a
// second loopback port: settings.relayPort starts webrelayserver.js
// (meshcentral.js, when relayDNS is not set), and a non-zero relay port
// is what makes the device page show the HTTP and HTTPS links
// (webRelayPort in default.handlebars).
func webRelayServer(t *testing.T) *mctest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return mctest.Start(t, mctest.Options{Settings: map[string]any{"relayPort": port, "relayPortBind": "127.0.0.1"}})
}

// localWeb is a web server on a loopback port of the device: GET / serves
// a page with marker, POST /post records the body and answers with it.
type localWeb struct {
	port   int
	marker string
	mu     sync.Mutex
	gets   int
	posts  []string
}

func startLocalWeb(t *testing.T) *localWeb {
	t.Helper()
	b := make([]byte, 12)
	rand.Read(b)
	w := &localWeb{marker: "meshgo-webrelay-" + hex.EncodeToString(b)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		w.gets++
		w.mu.Unlock()
		rw.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(rw, "<!doctype html><title>local</title><p id=m>%s</p>", w.marker)
	})
	mux.HandleFunc("POST /post", func(rw http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		w.mu.Lock()
		w.posts = append(w.posts, string(body))
		w.mu.Unlock()
		fmt.Fprintf(rw, "got %d bytes: %s", len(body), body)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w.port = l.Addr().(*net.TCPAddr).Port
	s := &http.Server{Handler: mux}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return w
}

// TestWebRelayHTTP: MeshCentral's device page "HTTP" link (the web relay,
// set to the port of a web server on the device's loopback) opens that
// server's page through our agent's port-forwarding tunnel, and a POST
// from the relayed page reaches it and its answer comes back.
func TestWebRelayHTTP(t *testing.T) {
	RequireBrowserTools(t, "web UI", "node", "npm")
	srv := webRelayServer(t)
	mesh := srv.AddDeviceGroup(t, "webui-webrelay")
	agent, node := startOurAgent(t, srv, srv.MSH(t, mesh))
	web := startLocalWeb(t)
	postBody := "posted-" + web.marker[len(web.marker)-8:] + strings.Repeat("x", 3000)
	r := runUI(t, srv, node, uiConfig{WebRelay: &webRelayCfg{Port: web.port, PostPath: "/post", PostBody: postBody}})
	wr := r.WebRelay
	if wr == nil {
		t.Fatal("the browser did not get to the web relay")
	}
	if !wr.LinkShown {
		t.Fatalf("the device page shows no HTTP/%d link (links: %v)", web.port, wr.Links)
	}
	t.Logf("relayed page %s; screenshot %s", wr.PopupURL, wr.Screenshot)
	if wr.Body == nil || !strings.Contains(*wr.Body, web.marker) {
		t.Errorf("the relayed page does not show %q: %v", web.marker, wr.Body)
	}
	want := fmt.Sprintf("200 got %d bytes: %s", len(postBody), postBody)
	if wr.PostReply == nil || *wr.PostReply != want {
		t.Errorf("POST through the relay answered %.120v, want %.120q", wr.PostReply, want)
	}
	web.mu.Lock()
	if len(web.posts) != 1 || web.posts[0] != postBody {
		t.Errorf("the local server got POST bodies %.80q, want one of %d bytes", web.posts, len(postBody))
	}
	gets := web.gets
	web.mu.Unlock()
	target := fmt.Sprintf("127.0.0.1:%d", web.port)
	fwd := 0
	for _, l := range agent.lines("port forwarding started") {
		if strings.Contains(l, target) {
			fwd++
		}
	}
	if fwd == 0 {
		t.Errorf("our agent logged no port forwarding to %s", target)
	}

	// A user whose only right on the group is view-only desktop: the page
	// hides the link, and the relay it would open (called directly)
	// reaches nothing.
	user, pass := addViewOnlyUser(t, srv, mesh)
	r = runUI(t, srv, node, uiConfig{User: user, Pass: pass,
		WebRelay: &webRelayCfg{Port: web.port, NoSetPort: true, Force: true, LinkWaitMs: 10000}})
	if wr = r.WebRelay; wr == nil {
		t.Fatal("the viewer's browser did not get to the device page")
	}
	if wr.LinkShown {
		t.Errorf("the device page shows the HTTP link to a view-only user (links %v)", wr.Links)
	}
	t.Logf("view-only user: relayed page %.80q shows %q", wr.PopupURL, deref(wr.Body))
	t.Logf("our agent on port forwarding: %q", agent.lines("forward"))
	if wr.Body != nil && strings.Contains(*wr.Body, web.marker) {
		t.Errorf("the view-only user's relay shows the local page: %q", *wr.Body)
	}
	web.mu.Lock()
	defer web.mu.Unlock()
	if web.gets != gets {
		t.Errorf("the local server got %d more requests from the view-only user's relay", web.gets-gets)
	}
}

// addViewOnlyUser creates a user whose only right on mesh is view-only
// remote desktop (no remote control, so no port forwarding) and returns
// its name and password.
func addViewOnlyUser(t *testing.T, srv *mctest.Server, mesh string) (string, string) {
	t.Helper()
	b := make([]byte, 4)
	rand.Read(b)
	name, pass := "viewer"+hex.EncodeToString(b), "Pw-"+hex.EncodeToString(b)+"-x9!"
	if out, err := srv.Meshctrl(t, "adduser", "--user", name, "--pass", pass); err != nil || !strings.Contains(out, "ok") {
		t.Fatalf("adduser: %v\n%s", err, out)
	}
	// meshctrl addusertodevicegroup prints nothing either way; the
	// control.ashx answer says whether it worked.
	msgs := srv.ControlSend(t, map[string]any{"action": "addmeshuser", "meshid": mesh, "userids": []string{"user//" + name},
		"meshadmin": 256, "responseid": "webrelay-add"}, 5*time.Second) // MESHRIGHT_REMOTEVIEWONLY only
	for _, m := range msgs {
		if m["responseid"] == "webrelay-add" {
			if fmt.Sprint(m["success"]) != "1" {
				t.Fatalf("addmeshuser: %v", m)
			}
			return name, pass
		}
	}
	t.Fatalf("addmeshuser: no answer in %v", msgs)
	return "", ""
}

func deref(s *string) string {
	if s == nil {
		return "(nothing within 30 s)"
	}
	return *s
}
