package adminapi

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/server-lite/store"
)

// These tests drive the real meshctrl.js (MeshCentral 1.1.55) against the
// admin API, with the store on disk and a stand-in agent registry.

func TestMeshctrlLogin(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	if out := e.meshctrlAs("admin", "wrong", "serverinfo"); strings.TrimSpace(out) != "Invalid login." {
		t.Fatalf("bad password: %q", out)
	}
	if out := e.meshctrlAs("nobody", "x", "serverinfo"); strings.TrimSpace(out) != "Invalid login." {
		t.Fatalf("unknown user: %q", out)
	}
	var si map[string]any
	e.mustJSON(e.meshctrl("serverinfo", "--json"), &si)
	if si["domain"] != "" || si["https"] != true || len(si["tlshash"].(string)) != 96 {
		t.Fatalf("serverinfo %v", si)
	}
	var ui map[string]any
	e.mustJSON(e.meshctrl("userinfo", "--json"), &ui)
	if ui["_id"] != "user//admin" || ui["siteadmin"] != float64(0xFFFFFFFF) {
		t.Fatalf("userinfo %v", ui)
	}
	if _, ok := ui["hash"]; ok {
		t.Fatal("userinfo leaks the password hash")
	}
	if out := e.meshctrl("serverinfo"); !strings.Contains(out, "name: 127.0.0.1") {
		t.Fatalf("serverinfo text: %q", out)
	}
}

func TestMeshctrlGroupsAndDevices(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	if out := strings.TrimSpace(e.meshctrl("listdevicegroups")); out != "None" && out != "" && !strings.Contains(out, "None") {
		t.Logf("empty listdevicegroups: %q", out)
	}
	g1 := e.createGroup("Office")
	g2 := e.createGroup("Lab")
	out := e.meshctrl("listdevicegroups")
	if !strings.Contains(out, `"Office"`) || !strings.Contains(out, strings.TrimPrefix(g1, "mesh//")) || !strings.Contains(out, `"Lab"`) {
		t.Fatalf("listdevicegroups:\n%s", out)
	}
	var groups []map[string]any
	e.mustJSON(e.meshctrl("listdevicegroups", "--json"), &groups)
	if len(groups) != 2 {
		t.Fatalf("groups %v", groups)
	}
	if out := strings.TrimSpace(e.meshctrl("adddevicegroup", "--name", "X", "--amtonly")); out != "Invalid group type" {
		t.Fatalf("amt group: %q", out)
	}

	n1 := e.addDevice(g1, "pc1", true)
	e.addDevice(g2, "pc2", false)
	out = e.meshctrl("listdevices")
	if !strings.Contains(out, `Device group: "Office"`) || !strings.Contains(out, `"`+strings.TrimPrefix(n1, "node//")+`", "pc1", 1, 1, 1`) || !strings.Contains(out, `"pc2", 1, 0, 0`) {
		t.Fatalf("listdevices:\n%s", out)
	}
	var devs []map[string]any
	e.mustJSON(e.meshctrl("listdevices", "--json"), &devs)
	if len(devs) != 2 {
		t.Fatalf("devices %v", devs)
	}
	e.mustJSON(e.meshctrl("listdevices", "--json", "--group", "Office"), &devs)
	if len(devs) != 1 || devs[0]["_id"] != n1 || devs[0]["conn"] != float64(1) {
		t.Fatalf("devices in Office %v", devs)
	}
	e.mustJSON(e.meshctrl("listdevices", "--json", "--id", strings.TrimPrefix(g2, "mesh//")), &devs)
	if len(devs) != 1 || devs[0]["name"] != "pc2" {
		t.Fatalf("devices by group id %v", devs)
	}
	if out := strings.TrimSpace(e.meshctrl("listdevices", "--group", "Nope")); out != "Invalid group id" {
		t.Fatalf("unknown group: %q", out)
	}

	// deviceinfo, with the bare and the full id.
	for _, id := range []string{n1, strings.TrimPrefix(n1, "node//")} {
		out := e.meshctrl("deviceinfo", "--id", id)
		if !strings.Contains(out, "pc1") || !strings.Contains(out, "Debian") {
			t.Fatalf("deviceinfo %s:\n%s", id, out)
		}
	}
	var info map[string]any
	e.mustJSON(e.meshctrl("deviceinfo", "--id", n1, "--json"), &info)
	if info["General"] == nil {
		t.Fatalf("deviceinfo json %v", info)
	}
	if out := strings.TrimSpace(e.meshctrl("deviceinfo", "--id", "node//nonexistent")); out != "Invalid device id" {
		t.Fatalf("deviceinfo unknown: %q", out)
	}
}

func TestMeshctrlRunCommand(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	g := e.createGroup("G")
	n := e.addDevice(g, "pc", true)
	off := e.addDevice(g, "off", false)
	if out := strings.TrimSpace(e.meshctrl("runcommand", "--id", n, "--run", "echo hi")); out != "OK" {
		t.Fatalf("runcommand: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("runcommand", "--id", n, "--run", "echo hi", "--reply")); out != "ran: echo hi" {
		t.Fatalf("runcommand --reply: %q", out)
	}
	// An agent that does not echo sessionid still reaches the one waiter.
	e.agents.mu.Lock()
	e.agents.noEcho = true
	e.agents.mu.Unlock()
	if out := strings.TrimSpace(e.meshctrl("runcommand", "--id", strings.TrimPrefix(n, "node//"), "--run", "uname", "--reply")); out != "ran: uname" {
		t.Fatalf("runcommand --reply without echo: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("runcommand", "--id", off, "--run", "x")); out != "Agent not connected" {
		t.Fatalf("offline: %q", out)
	}
	sent := e.agents.sentTo("runcommands")
	if len(sent) != 3 || sent[0]["type"] != float64(3) || sent[0]["cmds"] != "echo hi" || !strings.HasPrefix(sent[0]["sessionid"].(string), "user//admin/") {
		t.Fatalf("agent got %v", sent)
	}
	// The audit log recorded who ran what where.
	evs, _ := e.st.Events(store.EventFilter{NodeID: n})
	found := false
	for _, ev := range evs {
		if ev.Action == "runcommands" && ev.Who == "user//admin" && ev.From == "127.0.0.1" && strings.Contains(ev.Msg, "echo hi") {
			found = true
		}
	}
	if !found {
		t.Fatalf("no audit event in %+v", evs)
	}
}

func TestMeshctrlListEvents(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	g := e.createGroup("G")
	n := e.addDevice(g, "pc", true)
	e.meshctrl("runcommand", "--id", n, "--run", "echo hi")
	out := e.meshctrl("listevents")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "time,type,action,nodeid,userid,msg" || len(lines) < 3 {
		t.Fatalf("listevents:\n%s", out)
	}
	if !strings.Contains(out, "runcommands") || !strings.Contains(out, "createmesh") {
		t.Fatalf("listevents:\n%s", out)
	}
	var evs []map[string]any
	e.mustJSON(e.meshctrl("listevents", "--json"), &evs)
	// Newest first; each meshctrl run's own login is logged too (as
	// MeshCentral does), so skip those.
	i := 0
	for i < len(evs) && evs[i]["action"] == "login" {
		i++
	}
	if len(evs)-i < 2 || evs[i]["action"] != "runcommands" || evs[0]["msg"] != "Account login (x-meshauth)" {
		t.Fatalf("listevents --json %v", evs)
	}
	evs = nil
	e.mustJSON(e.meshctrl("listevents", "--json", "--id", n), &evs)
	if len(evs) != 1 || evs[0]["action"] != "runcommands" || evs[0]["nodeid"] != nil {
		t.Fatalf("listevents --id %v", evs)
	}
	evs = nil
	e.mustJSON(e.meshctrl("listevents", "--json", "--limit", "1"), &evs)
	if len(evs) != 1 {
		t.Fatalf("listevents --limit 1: %v", evs)
	}
	evs = nil
	e.mustJSON(e.meshctrl("listevents", "--json", "--userid", "user//nobody"), &evs)
	if len(evs) != 0 {
		t.Fatalf("listevents --userid nobody: %v", evs)
	}
}

func TestMeshctrlRights(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	g := e.createGroup("Secret")
	n := e.addDevice(g, "server1", true)
	if out := strings.TrimSpace(e.meshctrl("adduser", "--user", "bob", "--pass", "bobpass1")); out != "ok" {
		t.Fatalf("adduser: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("adduser", "--user", "bob", "--pass", "x")); out != "User already exists" {
		t.Fatalf("adduser dup: %q", out)
	}
	out := e.meshctrl("listusers")
	if !strings.Contains(out, "bob") || !strings.Contains(out, "admin") {
		t.Fatalf("listusers:\n%s", out)
	}
	bob := func(args ...string) string { return strings.TrimSpace(e.meshctrlAs("bob", "bobpass1", args...)) }

	// Without a link bob sees nothing and can do nothing.
	var groups []any
	e.mustJSON(bob("listdevicegroups", "--json"), &groups)
	if len(groups) != 0 {
		t.Fatalf("bob sees groups %v", groups)
	}
	var devs []any
	e.mustJSON(bob("listdevices", "--json"), &devs)
	if len(devs) != 0 {
		t.Fatalf("bob sees devices %v", devs)
	}
	if out := bob("listdevices", "--id", strings.TrimPrefix(g, "mesh//")); out != "Invalid group id" {
		t.Fatalf("bob listdevices --id: %q", out)
	}
	if out := bob("runcommand", "--id", n, "--run", "id"); out != "Invalid nodeid" {
		t.Fatalf("bob runcommand: %q", out)
	}
	if out := bob("deviceinfo", "--id", n); out != "Invalid device id" {
		t.Fatalf("bob deviceinfo: %q", out)
	}
	if out := bob("listusers"); out != "Access denied" {
		t.Fatalf("bob listusers: %q", out)
	}
	var evs []map[string]any
	e.mustJSON(bob("listevents", "--json"), &evs)
	for _, ev := range evs {
		if ev["nodeid"] == n || ev["meshid"] == g {
			t.Fatalf("bob sees event %v", ev)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"editdevice", "--id", n, "--name", "x"}, "Access Denied"},
		{[]string{"removedevice", "--id", n}, "Denied"},
		{[]string{"devicemessage", "--id", n, "--msg", "hi"}, "Unable to route"},
		{[]string{"deviceopenurl", "--id", n, "--openurl", "https://example.com/"}, "Unable to route"},
		{[]string{"devicetoast", "--id", n, "--msg", "hi"}, "Access Denied"},
		{[]string{"devicepower", "--id", n, "--reset"}, "Access Denied"},
		{[]string{"devicepower", "--id", n, "--wake"}, "Invalid nodeid"},
		{[]string{"addusertodevicegroup", "--id", strings.TrimPrefix(g, "mesh//"), "--userid", "bob", "--fullrights"}, "Unknown group"},
	} {
		if out := bob(tc.args...); out != tc.want {
			t.Errorf("bob %v: %q, want %q", tc.args, out, tc.want)
		}
	}
	if len(e.agents.sentTo("msg"))+len(e.agents.sentTo("toast"))+len(e.agents.sentTo("poweraction")) != 0 {
		t.Fatal("a refused request reached the agent")
	}
	if out := bob("removedevicegroup", "--id", strings.TrimPrefix(g, "mesh//")); out != "Invalid group identifier" {
		t.Fatalf("bob removedevicegroup: %q", out)
	}

	// Remote control only: visible, but runcommand needs 0x20000.
	if out := strings.TrimSpace(e.meshctrl("addusertodevicegroup", "--id", strings.TrimPrefix(g, "mesh//"), "--userid", "bob", "--remotecontrol")); out != "Added user bob" {
		t.Fatalf("addusertodevicegroup: %q", out)
	}
	e.mustJSON(bob("listdevices", "--json"), &devs)
	if len(devs) != 1 {
		t.Fatalf("bob with link sees %v", devs)
	}
	if out := e.meshctrl("listusersofdevicegroup", "--id", strings.TrimPrefix(g, "mesh//")); !strings.Contains(out, "bob, RemoteControl") {
		t.Fatalf("listusersofdevicegroup:\n%s", out)
	}
	if out := bob("runcommand", "--id", n, "--run", "id"); out != "Access denied" {
		t.Fatalf("bob runcommand with remote control only: %q", out)
	}
	if out := bob("adddevicegroup", "--name", "Mine"); !strings.HasPrefix(out, "ok mesh//") {
		t.Fatalf("bob adddevicegroup: %q", out)
	}
	// Full rights: runcommand works.
	e.meshctrl("addusertodevicegroup", "--group", "Secret", "--userid", "bob", "--fullrights")
	if out := bob("runcommand", "--id", n, "--run", "id", "--reply"); out != "ran: id" {
		t.Fatalf("bob runcommand with full rights: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("removeuser", "--userid", "bob")); out != "ok" {
		t.Fatalf("removeuser: %q", out)
	}
	if out := bob("serverinfo"); out != "Invalid login." {
		t.Fatalf("deleted bob: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("removedevicegroup", "--group", "Secret")); out != "ok" {
		t.Fatalf("removedevicegroup: %q", out)
	}
	if _, err := e.st.Device(n); err == nil {
		t.Fatal("device of deleted group kept")
	}
}

func TestMeshctrlLoginTokens(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	// meshctrl prints this reply with console.log, not as JSON: read the text form.
	out := e.meshctrl("logintokens", "--add", "ci", "--expire", "60")
	var user, pass string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Username: "); ok {
			user = v
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "Password: "); ok {
			pass = v
		}
	}
	if !strings.HasPrefix(user, "~t:") || pass == "" {
		t.Fatalf("logintokens --add:\n%s", out)
	}
	var ui map[string]any
	e.mustJSON(e.meshctrlAs(user, pass, "userinfo", "--json"), &ui)
	if ui["_id"] != "user//admin" {
		t.Fatalf("token login userinfo %v", ui)
	}
	if out := strings.TrimSpace(e.meshctrlAs(user, pass, "logintokens", "--add", "again")); out != "Access denied" {
		t.Fatalf("token session creating a token: %q", out)
	}
	out = e.meshctrl("logintokens")
	if !strings.Contains(out, user) {
		t.Fatalf("logintokens:\n%s", out)
	}
	e.meshctrl("logintokens", "--remove", user)
	if out := strings.TrimSpace(e.meshctrlAs(user, pass, "serverinfo")); out != "Invalid login." {
		t.Fatalf("removed token: %q", out)
	}
	if strings.Contains(e.meshctrl("listevents"), pass) {
		t.Fatal("token password in events")
	}
}

func TestMeshctrlMessagesAndPower(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	g := e.createGroup("G")
	n := e.addDevice(g, "pc", true)
	if out := strings.TrimSpace(e.meshctrl("devicemessage", "--id", n, "--msg", "hello")); out != "OK" {
		t.Fatalf("devicemessage: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("devicetoast", "--id", n, "--msg", "hello")); out != "ok" {
		t.Fatalf("devicetoast: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("devicepower", "--id", n, "--reset")); out != "ok" {
		t.Fatalf("devicepower: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("editdevice", "--id", n, "--name", "renamed", "--tags", "b, a,a", "--desc", "rack 4, left")); out != "ok" {
		t.Fatalf("editdevice: %q", out)
	}
	d, _ := e.st.Device(n)
	if d.Name != "renamed" || strings.Join(d.Tags, ",") != "a,b" || d.Desc != "rack 4, left" {
		t.Fatalf("after editdevice %+v", d)
	}
	if out := e.meshctrl("listdevices", "--json"); !strings.Contains(out, `"desc": "rack 4, left"`) {
		t.Fatalf("listdevices does not show the description: %s", out)
	}
	msgs := e.agents.sentTo("msg")
	if len(msgs) != 1 || msgs[0]["type"] != "messagebox" || msgs[0]["rights"] != float64(0xFFFFFFFF) || msgs[0]["nodeid"] != nil {
		t.Fatalf("agent msg %v", msgs)
	}
	if p := e.agents.sentTo("poweraction"); len(p) != 1 || p[0]["actiontype"] != float64(3) {
		t.Fatalf("power %v", p)
	}
	if out := strings.TrimSpace(e.meshctrl("devicepower", "--id", n, "--wake")); out != "No network information for this device" {
		t.Fatalf("devicepower --wake: %q", out)
	}
	peer := e.addDevice(g, "peer", true)
	_, err := e.st.UpdateDevice(n, func(d *store.Device, _ bool) error {
		d.NetInfo = []byte(`{"action":"netinfo","netif2":{"eth0":[{"mac":"52:54:00:12:34:56","address":"10.0.0.2"}]}}`)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if out := strings.TrimSpace(e.meshctrl("devicepower", "--id", n, "--wake")); out != "Used 1 device(s) to send wake packets" {
		t.Fatalf("devicepower --wake: %q", out)
	}
	if w := e.agents.sentTo("wakeonlan"); len(w) != 1 || w[0]["macs"].([]any)[0] != "52:54:00:12:34:56" {
		t.Fatalf("wakeonlan %v (peer %s)", w, peer)
	}
	if out := strings.TrimSpace(e.meshctrl("deviceopenurl", "--id", n, "--openurl", "https://example.com/")); out != "OK" {
		t.Fatalf("deviceopenurl: %q", out)
	}
	if out := strings.TrimSpace(e.meshctrl("removedevice", "--id", n)); out != "ok" {
		t.Fatalf("removedevice: %q", out)
	}
}

// TestMeshctrlShowEvents: live events reach meshctrl showevents, and only
// for what the user may see.
func TestMeshctrlShowEvents(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", meshctrlPath(t), "showevents", "--url", e.url, "--loginuser", e.admin, "--loginpass", e.pass)
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	for !strings.Contains(out.String(), "userinfo") {
		if ctx.Err() != nil {
			t.Fatalf("showevents did not start: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	g := e.createGroup("Live")
	n := e.addDevice(g, "pc", true)
	e.api.NodeConnect(n, g, true, time.Now())
	for !strings.Contains(out.String(), "nodeconnect") || !strings.Contains(out.String(), "createmesh") {
		if ctx.Err() != nil {
			t.Fatalf("no live events: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
