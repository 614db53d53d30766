//go:build linux

package interop

import (
	"bytes"
	"crypto/tls"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// A core pushed from MeshCentral's console menu changes nothing (we report
// the zero core hash by design), and the server's agent error log
// (agenterrorlogs.txt, settings.agentLogDump) says so in one line; a custom
// core written for meshcore.js's API (MeshCentral's own meshcore.js,
// uploaded as the console's "upload custom core" does) fails, and that
// gets one clear line too.
func TestCorePushInAgentErrorLog(t *testing.T) {
	srv := mctest.Start(t, mctest.Options{Settings: map[string]any{"agentLogDump": true}})
	mesh := srv.AddDeviceGroup(t, "core-push")
	a := startAgent(t, srv.MSH(t, mesh))
	if _, ok := a.waitLog(60*time.Second, "core started"); !ok {
		t.Fatal("agent did not start its core")
	}
	id := a.nodeID()
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ShortID() == id && d.Online() }, 60*time.Second)
	logPath := filepath.Join(srv.DataDir(), "agenterrorlogs.txt")
	lines := func(sub string) []string {
		b, _ := os.ReadFile(logPath)
		var out []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, id) && strings.Contains(l, sub) {
				out = append(out, l)
			}
		}
		return out
	}
	waitLines := func(sub string) []string {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			if l := lines(sub); len(l) > 0 {
				time.Sleep(2 * time.Second) // a repeat would show by now
				return lines(sub)
			}
			time.Sleep(500 * time.Millisecond)
		}
		b, _ := os.ReadFile(logPath)
		t.Fatalf("no line with %q for this device in %s:\n%s\nagent log:\n%s", sub, logPath, b, a.log.String())
		return nil
	}

	// Console menu: "Upload default core" (meshuser.js uploadagentcore).
	u := dialControl(t, srv)
	u.send(t, map[string]any{"action": "uploadagentcore", "nodeids": []string{"node//" + id}, "type": "default"})
	if l := waitLines("zero core hash by design"); len(l) != 1 {
		t.Fatalf("want one line about the kept core, got %q", l)
	}
	if a.countLog("core started") != 1 {
		t.Fatalf("the core was restarted by a push that should change nothing:\n%s", a.log.String())
	}

	// "Upload custom core" with MeshCentral's own meshcore.js, through
	// uploadmeshcorefile.ashx as the console's file dialog posts it.
	src, err := os.ReadFile(filepath.Join(srv.MeshCentralDir(), "agents", "meshcore.js"))
	if err != nil {
		t.Fatal(err)
	}
	u.send(t, map[string]any{"action": "authcookie"})
	m := u.await(t, "authcookie", func(m map[string]any) bool { return m["action"] == "authcookie" })
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("auth", m["cookie"].(string))
	mw.WriteField("attrib", "node//"+id)
	fw, _ := mw.CreateFormFile("files", "meshcore.js")
	fw.Write(src)
	mw.Close()
	c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := c.Post(srv.HTTPSURL()+"/uploadmeshcorefile.ashx", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("uploadmeshcorefile.ashx: %s", resp.Status)
	}
	l := waitLines("meshcore.js API")
	if len(l) != 1 || !strings.Contains(l[0], "process") || !strings.Contains(l[0], "scripts/README.md") {
		t.Fatalf("want one clear line about the meshcore.js-style core, got %q", l)
	}
	t.Logf("agent error log line: %s", l[0])
}
