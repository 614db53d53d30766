package app

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/agentdl"
	"github.com/meshgo/meshagent/server-lite/certs"
	"github.com/meshgo/meshagent/server-lite/store"
)

func TestFirstStartAndRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger(t), AgentKeyBits: 2048})
	if err != nil {
		t.Fatal(err)
	}
	a.Start()
	if !a.FirstStart || a.DefaultGroup.Name != DefaultGroupName {
		t.Fatalf("first start %v group %+v", a.FirstStart, a.DefaultGroup)
	}
	msh, err := os.ReadFile(a.MshPath)
	if err != nil || !strings.Contains(string(msh), "MeshServer="+a.AgentURL()+"\r\n") || !strings.Contains(string(msh), "ServerID="+a.Certs.ServerIDHex()) {
		t.Fatalf("msh %q %v", msh, err)
	}
	// The same file is served at /meshsettings.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Get(a.URL() + "/meshsettings?id=" + strings.TrimPrefix(a.DefaultGroup.ID, "mesh//"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != string(msh) {
		t.Fatalf("served %q", body)
	}
	// Plain WebSocket upgrade without a handshake is refused cleanly, and
	// the relay refuses a request without credentials.
	resp, err = c.Get(a.URL() + "/meshrelay.ashx?id=x")
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("relay without token: %v %v", resp.StatusCode, err)
	}
	resp.Body.Close()
	id, group := a.Certs.ServerID, a.DefaultGroup.ID
	a.Close()

	a, err = New(Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.FirstStart || a.Certs.ServerID != id || a.DefaultGroup.ID != group {
		t.Fatal("identity or group changed across restart")
	}
}

func TestNewRefuses(t *testing.T) {
	broken := filepath.Join(t.TempDir(), "data")
	a, err := New(Config{DataDir: broken, Listen: "127.0.0.1:0", Logger: testLogger(t), AgentKeyBits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	os.Remove(filepath.Join(broken, certs.AgentCertFile))
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"hostname with a port", Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Hostnames: []string{"a.example:443"}}, "without scheme or port"},
		{"cert without key", Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebCertFile: "x.crt"}, "both"},
		{"missing cert file", Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebCertFile: "/nonexistent.crt", WebKeyFile: "/nonexistent.key", AgentKeyBits: 1024}, "web certificate"},
		{"bad agents dir", Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", AgentKeyBits: 1024, Downloads: agentdl.Config{Dir: "/nonexistent"}}, "not a directory"},
		{"bad address", Config{DataDir: t.TempDir(), Listen: "nonsense"}, "listen address"},
		{"incomplete identity", Config{DataDir: broken, Listen: "127.0.0.1:0"}, "incomplete"},
		{"missing core file", Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", CoreFile: "/nonexistent.js", AgentKeyBits: 1024}, "core file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = testLogger(t)
			a, err := New(tc.cfg)
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want %q", err, tc.want)
			}
		})
	}
}

// TestEventRetention: a started server deletes events older than its
// retention and keeps newer ones.
func TestEventRetention(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	a, err := New(Config{DataDir: dir, Listen: "127.0.0.1:0", Logger: testLogger(t), AgentKeyBits: 2048, EventRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if err := a.Store.AppendEvent(store.Event{Kind: store.EvConnect, Msg: "old", Time: now.Add(-2 * time.Hour)},
		store.Event{Kind: store.EvConnect, Msg: "new", Time: now.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	a.Start()
	defer a.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := a.Store.Events(store.EventFilter{Kind: store.EvConnect})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 1 && evs[0].Msg == "new" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events after pruning: %+v", evs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
