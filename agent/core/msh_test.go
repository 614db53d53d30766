package core

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A .msh as MeshCentral 1.1.55 serves it: leading empty line, CRLF.
const sampleMSH = "\r\nMeshName=G1\r\nMeshType=2\r\n" +
	"MeshID=0x6B8C2C87053DB130614ADBCB95139080FC24167EFF0F0DB03978CA2577CCD141B7E47264A77A830F3793349F67CC380E\r\n" +
	"ServerID=BF86D89C79E61BDE0DDDE2A4EC4FAFFA964A09AA0E07F71FCBF9F35B9875949ADE3D006348F4166881872A5AB17192F8\r\n" +
	"MeshServer=wss://127.0.0.1:4430/agent.ashx\r\nignoreProxyFile=1\r\n" +
	"# a comment\r\nnoequals\r\n=novalue\r\nCustomKey = spaced value = with equals \r\ntranslation={\"en\":{\"a\":\"b\"}}\r\n"

func TestParseMSH(t *testing.T) {
	m, err := ParseMSH([]byte(sampleMSH))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"MeshName": "G1", "MeshType": "2", "ignoreProxyFile": "1",
		"CustomKey":   "spaced value = with equals",
		"translation": `{"en":{"a":"b"}}`,
	}
	for k, v := range want {
		if got := m.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if got := strings.Join(m.Keys(), ","); got != "MeshName,MeshType,MeshID,ServerID,MeshServer,ignoreProxyFile,CustomKey,translation" {
		t.Errorf("keys in order: %s", got)
	}
	srv, err := m.Servers()
	if err != nil || len(srv) != 1 || srv[0].URL != "wss://127.0.0.1:4430/agent.ashx" || srv[0].ID[0] != 0xBF || srv[0].ID[47] != 0xF8 {
		t.Fatalf("servers %+v, %v", srv, err)
	}
	mid, err := m.MeshID()
	if err != nil || mid[0] != 0x6B || mid[47] != 0x0E {
		t.Fatalf("mesh id %x, %v", mid, err)
	}
	// Written back, nothing is lost.
	again, err := ParseMSH(m.Bytes())
	if err != nil || !bytes.Equal(again.Bytes(), m.Bytes()) {
		t.Fatalf("round trip: %v", err)
	}
}

func TestMSHErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
		check            func(*MSH) error
	}{
		{"core module refused", "CoreModule=abc", "not allowed", nil},
		{"no server", "ServerID=" + strings.Repeat("A", 96), "no MeshServer", func(m *MSH) error { _, err := m.Servers(); return err }},
		{"no server id", "MeshServer=wss://h/agent.ashx", "no ServerID", func(m *MSH) error { _, err := m.Servers(); return err }},
		{"short server id", "MeshServer=wss://h/agent.ashx\nServerID=ABCD", "96 hex", func(m *MSH) error { _, err := m.Servers(); return err }},
		{"plain ws refused", "MeshServer=ws://h/agent.ashx\nServerID=" + strings.Repeat("A", 96), "only wss", func(m *MSH) error { _, err := m.Servers(); return err }},
		{"LAN mode", "MeshServer=local\nServerID=" + strings.Repeat("A", 96), "LAN", func(m *MSH) error { _, err := m.Servers(); return err }},
		{"mesh id not hex", "MeshID=0xZZ", "MeshID", func(m *MSH) error { _, err := m.MeshID(); return err }},
		{"mesh id wrong size", "MeshID=0xABCD", "bytes", func(m *MSH) error { _, err := m.MeshID(); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ParseMSH([]byte(tc.text))
			if err == nil && tc.check != nil {
				err = tc.check(m)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestMSHServerList(t *testing.T) {
	a, b := strings.Repeat("A", 96), strings.Repeat("B", 96)
	m, _ := ParseMSH([]byte("MeshServer=wss://one/agent.ashx, wss://two/agent.ashx\nServerID=" + a + "," + b))
	srv, err := m.Servers()
	if err != nil || len(srv) != 2 || srv[1].URL != "wss://two/agent.ashx" || srv[1].ID[0] != 0xBB {
		t.Fatalf("%+v %v", srv, err)
	}
}

func TestMSHEmptyValueDeletes(t *testing.T) {
	m, _ := ParseMSH([]byte("A=1\nB=2\nA=\n"))
	if _, ok := m.Lookup("A"); ok || strings.Join(m.Keys(), ",") != "B" {
		t.Fatalf("keys %v", m.Keys())
	}
}

func FuzzParseMSH(f *testing.F) {
	f.Add([]byte(sampleMSH))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMSH(data)
		if err != nil {
			return
		}
		m.Servers()
		m.MeshID()
		again, err := ParseMSH(m.Bytes())
		if err != nil {
			t.Fatalf("re-parse of written settings: %v", err)
		}
		if len(again.Keys()) != len(m.Keys()) {
			t.Fatalf("keys changed: %v vs %v", m.Keys(), again.Keys())
		}
	})
}

func TestEditMSHFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "meshagent.msh")
	orig := "MeshName=g\r\nMeshServer=wss://x/agent.ashx\r\nServerID=AB\r\n"
	steps := []struct {
		name, key, value string
		remove           bool
		want             string // file afterwards
		err              string
	}{
		{"set new", "abc", "xyz", false, orig + "abc=xyz\r\n", ""},
		{"set existing keeps order", "MeshName", " other ", false, "MeshName=other\r\nMeshServer=wss://x/agent.ashx\r\nServerID=AB\r\nabc=xyz\r\n", ""},
		{"delete", "abc", "", true, "MeshName=other\r\nMeshServer=wss://x/agent.ashx\r\nServerID=AB\r\n", ""},
		{"delete missing", "abc", "", true, "MeshName=other\r\nMeshServer=wss://x/agent.ashx\r\nServerID=AB\r\n", "no setting abc"},
		{"line break in value", "k", "a\nCoreModule=x", false, "MeshName=other\r\nMeshServer=wss://x/agent.ashx\r\nServerID=AB\r\n", "line break"},
		{"equals in key", "a=b", "c", false, "MeshName=other\r\nMeshServer=wss://x/agent.ashx\r\nServerID=AB\r\n", "not a valid settings key"},
		{"CoreModule refused", "coremodule", "x", false, "MeshName=other\r\nMeshServer=wss://x/agent.ashx\r\nServerID=AB\r\n", "not allowed"},
		{"empty value", "k", "  ", false, "MeshName=other\r\nMeshServer=wss://x/agent.ashx\r\nServerID=AB\r\n", "use delete"},
	}
	if err := os.WriteFile(p, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, st := range steps {
		err := EditMSHFile(p, st.key, st.value, st.remove)
		if (st.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), st.err)) {
			t.Fatalf("%s: err %v, want %q", st.name, err, st.err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != st.want {
			t.Fatalf("%s: file %q, want %q", st.name, b, st.want)
		}
	}
	if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600 kept", fi.Mode().Perm())
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("temporary files left: %v", ents)
	}
	if err := EditMSHFile(filepath.Join(dir, "missing.msh"), "a", "b", false); err == nil {
		t.Error("a missing file was not an error")
	}
}
