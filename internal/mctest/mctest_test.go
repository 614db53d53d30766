package mctest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// TestCAgentOnline is the reference interop test: real MeshCentral, a device
// group, its .msh, and the real C agent coming online in that group.
func TestCAgentOnline(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MeshCentral and the C agent")
	}
	begin := time.Now()
	srv := Shared(t)
	t.Logf("server ready after %s", time.Since(begin).Round(time.Millisecond))

	meshID := srv.AddDeviceGroup(t, "mctest-cagent")
	if !regexp.MustCompile(`^mesh//[A-Za-z0-9@$]{64}$`).MatchString(meshID) {
		t.Fatalf("group id %q has an unexpected form", meshID)
	}

	msh := srv.MSH(t, meshID)
	kv := ParseMSH(msh)
	for _, k := range []string{"MeshName", "MeshType", "MeshID", "ServerID", "MeshServer"} {
		if kv[k] == "" {
			t.Errorf(".msh lacks %s", k)
		}
	}
	if got, want := kv["ServerID"], srv.ServerID(t); got != want {
		t.Errorf(".msh ServerID = %s, computed %s", got, want)
	}
	if got, want := kv["MeshServer"], srv.URL()+"/agent.ashx"; got != want {
		t.Errorf(".msh MeshServer = %s, want %s", got, want)
	}
	if kv["MeshName"] != "mctest-cagent" || kv["MeshType"] != "2" {
		t.Errorf(".msh MeshName=%q MeshType=%q", kv["MeshName"], kv["MeshType"])
	}
	if !strings.HasPrefix(kv["MeshID"], "0x") || len(kv["MeshID"]) != 2+96 {
		t.Errorf(".msh MeshID = %q, want 0x + 96 hex", kv["MeshID"])
	}

	out, err := srv.Meshctrl(t, "serverinfo", "--json")
	if err != nil {
		t.Fatalf("serverinfo: %v\n%s", err, out)
	}
	var info struct {
		TLSHash string `json:"tlshash"`
	}
	if err := decodeJSON(out, &info); err != nil {
		t.Fatal(err)
	}
	if got := srv.WebCertFullHash(t); !strings.EqualFold(info.TLSHash, got) {
		t.Errorf("serverinfo tlshash %s != WebCertFullHash %s", info.TLSHash, got)
	}

	agentStart := time.Now()
	agent := StartCAgent(t, msh)
	dev := srv.WaitDevice(t, OnlineIn(meshID), 2*time.Minute)
	t.Logf("C agent online after %s: %s %q agent=%+v", time.Since(agentStart).Round(time.Millisecond), dev.ID, dev.Name, dev.Agent)
	if dev.Agent.ID == 0 {
		t.Errorf("device agent type is 0: %+v", dev.Raw)
	}
	if got := agent.NodeID(t, 10*time.Second); got != dev.ID {
		t.Errorf("meshagent -nodeid gives %s, meshctrl lists %s", got, dev.ID)
	}
	if agent.PID() == 0 {
		t.Error("PID() = 0 for a running agent")
	}

	di := srv.DeviceInfo(t, dev.ID)
	if len(di) == 0 {
		t.Error("deviceinfo --json returned nothing")
	}
	evs := srv.Events(t)
	if len(evs) == 0 {
		t.Error("listevents --json returned no events (the group creation at least is expected)")
	}

	// Restart: same node id, online again.
	agent.Stop()
	srv.WaitDevice(t, func(d Device) bool { return d.ID == dev.ID && !d.Online() }, time.Minute)
	restart := time.Now()
	agent.Restart()
	srv.WaitDevice(t, func(d Device) bool { return d.ID == dev.ID && d.Online() }, 2*time.Minute)
	t.Logf("C agent back online %s after restart", time.Since(restart).Round(time.Millisecond))
	if !strings.Contains(agent.Log(), "Connected") {
		t.Logf("C agent log does not (yet) show Connected:\n%s", agent.Log())
	}
}

// TestStartOwnServer checks Start with options: a second, private server
// whose config carries the options.
func TestStartOwnServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts MeshCentral")
	}
	begin := time.Now()
	srv := Start(t, Options{AgentIdleTimeout: 90 * time.Second, Settings: map[string]any{"AGENTPONG": 30}, Domain: map[string]any{"title": "mctest"}})
	t.Logf("private server ready after %s", time.Since(begin).Round(time.Millisecond))
	b, err := os.ReadFile(filepath.Join(srv.DataDir(), "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Settings map[string]any            `json:"settings"`
		Domains  map[string]map[string]any `json:"domains"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Settings["agentIdleTimeout"] != float64(90) || cfg.Settings["AGENTPONG"] != float64(30) || cfg.Domains[""]["title"] != "mctest" {
		t.Errorf("config.json does not carry the options: %s", b)
	}
	if devs := srv.ListDevices(t); len(devs) != 0 {
		t.Errorf("fresh server lists %d devices", len(devs))
	}
	out, err := srv.Meshctrl(t, "serverinfo")
	if err != nil || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("serverinfo: %v\n%s", err, out)
	}
	srv.Restart(t)
	if out, err := srv.Meshctrl(t, "listdevicegroups"); err != nil || strings.Contains(out, "Invalid login") {
		t.Errorf("after restart: %v\n%s", err, out)
	}
}

func TestConfigMerge(t *testing.T) {
	s := &Server{port: 1234, root: "/r", opts: Options{WebRTC: true, AgentPing: 20 * time.Second, Settings: map[string]any{"webrtc": false, "extra": "x"}}}
	cfg := s.config()
	set := cfg["settings"].(map[string]any)
	if _, ok := set["webRTC"]; ok {
		t.Error("webRTC kept despite the override webrtc")
	}
	if set["webrtc"] != false || set["extra"] != "x" || set["agentPing"] != 20 || set["port"] != 1234 {
		t.Errorf("settings = %v", set)
	}
	if set["portBind"] != "127.0.0.1" || set["noAgentUpdate"] != 1 {
		t.Errorf("loopback settings missing: %v", set)
	}
}

// TestDomainView: Options.Domains become config.json domains beside the
// default one, and a Domain view's URLs are under /ID.
func TestDomainView(t *testing.T) {
	s := &Server{port: 1234, root: "/r", opts: Options{SSH: true, Domains: map[string]map[string]any{"geo": {"ipLocation": true}}}}
	doms := s.config()["domains"].(map[string]any)
	if d, _ := doms["geo"].(map[string]any); d["ipLocation"] != true || len(doms) != 2 {
		t.Errorf("domains = %v", doms)
	}
	if d, _ := doms[""].(map[string]any); d["ssh"] != true {
		t.Errorf("default domain = %v", d)
	}
	v := s.Domain(t, "geo")
	if v.URL() != "wss://127.0.0.1:1234/geo" || v.HTTPSURL() != "https://127.0.0.1:1234/geo" || s.URL() != "wss://127.0.0.1:1234" {
		t.Errorf("URLs %s %s, server %s", v.URL(), v.HTTPSURL(), s.URL())
	}
	if v.owner() != s {
		t.Error("the view does not act on its server")
	}
}

func TestParseMSH(t *testing.T) {
	kv := ParseMSH([]byte("\r\nMeshName=g\r\nMeshType=2\r\nMeshServer=wss://127.0.0.1:1/agent.ashx\r\nx=a=b\r\n"))
	if kv["MeshName"] != "g" || kv["MeshType"] != "2" || kv["MeshServer"] != "wss://127.0.0.1:1/agent.ashx" || kv["x"] != "a=b" || len(kv) != 4 {
		t.Errorf("ParseMSH = %v", kv)
	}
}

func TestNodeIDFromHex(t *testing.T) {
	// Observed pair: `meshagent -nodeid` output and meshctrl's id for it.
	got, err := NodeIDFromHex("2786F24FFB742EB6459D738690F82B9C5DDB32A6E91D6F07FA2FCC9632046081F44B4639A6A7D764BCB1A71F868A9AAF")
	if err != nil {
		t.Fatal(err)
	}
	if want := "node//J4byT$t0LrZFnXOGkPgrnF3bMqbpHW8H@i$MljIEYIH0S0Y5pqfXZLyxpx@Gipqv"; got != want {
		t.Errorf("NodeIDFromHex = %s, want %s", got, want)
	}
	if _, err := NodeIDFromHex("abcd"); err == nil {
		t.Error("short id accepted")
	}
}

func TestIsRelayCookieFailure(t *testing.T) {
	for out, want := range map[string]bool{
		"Connecting...\nWaiting for Agent...\nConnection Closed.\n":                          true,
		"Connecting...\nWaiting for Agent...\nConnected.\nUpload done\nConnection Closed.\n": false,
		"Waiting for Agent...\n": false,
		"Invalid login.\n":       false,
		"Waiting for Agent...\nConnected, session is being recorded.\nConnection Closed.": false,
	} {
		if got := IsRelayCookieFailure(out); got != want {
			t.Errorf("IsRelayCookieFailure(%q) = %v", out, got)
		}
	}
}
