package core

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/meshgo/meshagent/internal/atomicfile"
)

// MSH is a MeshCentral agent settings file (.msh), read exactly as the C
// agent reads it (control.md §7.1): one key=value per line, split at the
// first '=', values trimmed, '#' lines are comments. Keys keep their order
// and unknown keys are kept, so a file written back loses nothing.
type MSH struct {
	keys   []string
	values map[string]string
}

// Well-known .msh keys (control.md §7.2-7.3).
const (
	MSHMeshServer    = "MeshServer"
	MSHServerID      = "ServerID"
	MSHMeshID        = "MeshID"
	MSHMeshName      = "MeshName"
	MSHMeshType      = "MeshType"
	MSHWebProxy      = "WebProxy"
	MSHIgnoreProxy   = "ignoreProxyFile"
	MSHAgentName     = "agentName"
	MSHIdleTimeout   = "controlChannelIdleTimeout"
	MSHValidateCert  = "validateWebCert"
	MSHCapabilities  = "AgentCapabilities"
	MSHNoUpdateCore  = "noUpdateCoreModule"
	MSHServiceName   = "meshServiceName"
	MSHDisplayName   = "displayName"
	MSHCoreModuleKey = "CoreModule" // refused: a core cannot be injected through .msh
)

// ParseMSH parses the text of a .msh file. It never fails on odd lines (the
// C agent skips them) but refuses a CoreModule key, which the C agent also
// refuses, and reports duplicate keys by keeping the last value as it does.
func ParseMSH(data []byte) (*MSH, error) {
	m := &MSH{values: map[string]string{}}
	for _, line := range bytes.Split(data, []byte("\n")) {
		s := strings.TrimSpace(strings.TrimSuffix(string(line), "\r"))
		if s == "" || s[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(s, "=")
		if !ok || k == "" {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if strings.EqualFold(k, MSHCoreModuleKey) {
			return nil, fmt.Errorf("msh: key %s is not allowed in a settings file", k)
		}
		if v == "" { // an empty value deletes the key, as in the C agent
			m.Delete(k)
			continue
		}
		m.Set(k, v)
	}
	return m, nil
}

// ReadMSH reads and parses a .msh file.
func ReadMSH(path string) (*MSH, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read settings: %w", err)
	}
	m, err := ParseMSH(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Get returns the value of key ("" when absent).
func (m *MSH) Get(key string) string { return m.values[key] }

// Lookup returns the value of key and whether it is present.
func (m *MSH) Lookup(key string) (string, bool) { v, ok := m.values[key]; return v, ok }

// Set sets key, keeping its position if it exists.
func (m *MSH) Set(key, value string) {
	if _, ok := m.values[key]; !ok {
		m.keys = append(m.keys, key)
	}
	m.values[key] = value
}

// Delete removes key.
func (m *MSH) Delete(key string) {
	if _, ok := m.values[key]; !ok {
		return
	}
	delete(m.values, key)
	for i, k := range m.keys {
		if k == key {
			m.keys = append(m.keys[:i], m.keys[i+1:]...)
			break
		}
	}
}

// Keys returns the keys in file order.
func (m *MSH) Keys() []string { return append([]string(nil), m.keys...) }

// Map returns a copy of all settings, for scripts (the C agent's _MSH()).
func (m *MSH) Map() map[string]string {
	out := make(map[string]string, len(m.values))
	for k, v := range m.values {
		out[k] = v
	}
	return out
}

// Bytes writes the settings back in MeshCentral's format (CRLF lines).
func (m *MSH) Bytes() []byte {
	var b bytes.Buffer
	for _, k := range m.keys {
		fmt.Fprintf(&b, "%s=%s\r\n", k, m.values[k])
	}
	return b.Bytes()
}

// Servers pairs each MeshServer URL with its ServerID (same index in the
// two comma-separated lists, control.md §7.3).
func (m *MSH) Servers() ([]Server, error) {
	urls := splitList(m.Get(MSHMeshServer))
	ids := splitList(m.Get(MSHServerID))
	if len(urls) == 0 {
		return nil, fmt.Errorf("msh: no %s entry", MSHMeshServer)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("msh: no %s entry", MSHServerID)
	}
	out := make([]Server, 0, len(urls))
	for i, u := range urls {
		if u == "local" {
			return nil, fmt.Errorf("msh: MeshServer=local (LAN discovery) is not supported")
		}
		if !strings.HasPrefix(u, "wss://") {
			return nil, fmt.Errorf("msh: server URL %q: only wss:// works (the handshake pins the TLS certificate)", u)
		}
		idText := ids[len(ids)-1]
		if i < len(ids) {
			idText = ids[i]
		}
		id, err := parseServerID(idText)
		if err != nil {
			return nil, err
		}
		out = append(out, Server{URL: u, ID: id})
	}
	return out, nil
}

// Server is one control-channel endpoint and the identity it must prove.
type Server struct {
	URL string
	ID  [48]byte // SHA-384 of the agent-server certificate's public key
}

func parseServerID(s string) ([48]byte, error) {
	var id [48]byte
	s = strings.TrimSpace(s)
	if len(s) != 96 && len(s) != 64 { // 64 = legacy SHA-256 id, zero-padded
		return id, fmt.Errorf("msh: ServerID must be 96 hex characters, got %d", len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return id, fmt.Errorf("msh: ServerID: %w", err)
	}
	copy(id[:], b)
	return id, nil
}

// MeshID decodes the group id: "0x" + 96 hex (or 64 for legacy ids,
// zero-padded, as the C agent does).
func (m *MSH) MeshID() ([48]byte, error) {
	var id [48]byte
	s := m.Get(MSHMeshID)
	if !strings.HasPrefix(s, "0x") {
		return id, fmt.Errorf("msh: MeshID must start with 0x")
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil {
		return id, fmt.Errorf("msh: MeshID: %w", err)
	}
	if len(b) != 48 && len(b) != 32 {
		return id, fmt.Errorf("msh: MeshID is %d bytes, want 48 (or 32)", len(b))
	}
	copy(id[:], b)
	return id, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// EditMSHFile sets key to value in the .msh file at path, or removes the
// key when remove is set (the console's `msh set|delete`), keeping every
// other line's key and order. The file is replaced atomically with the
// same permissions, so a crash never leaves half a settings file. Keys and
// values that the format cannot carry (line breaks, '=' in a key, a value
// that would delete the key) and the refused CoreModule key are errors.
func EditMSHFile(path, key, value string, remove bool) error {
	key = strings.TrimSpace(key)
	switch {
	case key == "" || strings.ContainsAny(key, "=\r\n") || key[0] == '#':
		return fmt.Errorf("msh: %q is not a valid settings key", key)
	case strings.EqualFold(key, MSHCoreModuleKey):
		return fmt.Errorf("msh: key %s is not allowed in a settings file", key)
	case !remove && strings.ContainsAny(value, "\r\n"):
		return fmt.Errorf("msh: the value of %s cannot contain a line break", key)
	case !remove && strings.TrimSpace(value) == "":
		return fmt.Errorf("msh: an empty value for %s would delete it; use delete", key)
	}
	m, err := ReadMSH(path)
	if err != nil {
		return err
	}
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("msh: %w", err)
	}
	if remove {
		if _, ok := m.Lookup(key); !ok {
			return fmt.Errorf("msh: no setting %s", key)
		}
		m.Delete(key)
	} else {
		m.Set(key, strings.TrimSpace(value))
	}
	if err := atomicfile.Write(path, m.Bytes(), st.Mode().Perm()); err != nil {
		return fmt.Errorf("msh: write %s: %w", path, err)
	}
	return nil
}
