package adminapi

import (
	"strings"
	"testing"
)

// TestMeshctrlDeviceDescription: meshctrl editdevice --desc is stored and
// read back by listdevices (MeshCentral's node.desc), kept when only other
// fields change, cleared by a bare --desc, and an over-long one is refused
// with the stored one kept.
func TestMeshctrlDeviceDescription(t *testing.T) {
	e := newEnv(t)
	t.Parallel()
	g := e.createGroup("G")
	n := e.addDevice(g, "pc", true)
	desc := func() any {
		var devs []map[string]any
		e.mustJSON(e.meshctrl("listdevices", "--json"), &devs)
		if len(devs) != 1 {
			t.Fatalf("devices %v", devs)
		}
		return devs[0]["desc"]
	}
	if d := desc(); d != nil {
		t.Fatalf("new device has desc %v", d)
	}
	if out := strings.TrimSpace(e.meshctrl("editdevice", "--id", n, "--desc", "rack 4, ask Ana")); out != "ok" {
		t.Fatalf("editdevice --desc: %q", out)
	}
	if d := desc(); d != "rack 4, ask Ana" {
		t.Fatalf("desc after editdevice: %v", d)
	}
	if out := strings.TrimSpace(e.meshctrl("editdevice", "--id", n, "--tags", "x")); out != "ok" {
		t.Fatalf("editdevice --tags: %q", out)
	}
	if d := desc(); d != "rack 4, ask Ana" {
		t.Fatalf("desc lost by a tags change: %v", d)
	}
	if out := strings.TrimSpace(e.meshctrl("editdevice", "--id", n, "--desc", strings.Repeat("é", maxDeviceDesc+1))); out != "Invalid description" {
		t.Fatalf("over-long desc: %q", out)
	}
	if d := desc(); d != "rack 4, ask Ana" {
		t.Fatalf("desc after a refused change: %v", d)
	}
	if out := strings.TrimSpace(e.meshctrl("editdevice", "--id", n, "--desc")); out != "ok" {
		t.Fatalf("editdevice --desc (clear): %q", out)
	}
	if d := desc(); d != nil {
		t.Fatalf("desc not cleared: %v", d)
	}
	if st, _ := e.st.Device(n); st.Desc != "" {
		t.Fatalf("stored desc %q", st.Desc)
	}
}
