package core

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
)

func TestResolveRelayURL(t *testing.T) {
	const control = "wss://srv.example:4430/agent.ashx"
	tests := []struct {
		value, want, err string
	}{
		{"*/meshrelay.ashx?p=1&nodeid=node//ab$c@d&id=12&rauth=x$y", "wss://srv.example:4430/meshrelay.ashx?p=1&nodeid=node//ab%24c%40d&id=12&rauth=x%24y", ""},
		{"*/dom/meshrelay.ashx?id=1", "wss://srv.example:4430/dom/meshrelay.ashx?id=1", ""},
		{"wss://srv.example:4430/meshrelay.ashx?id=1", "wss://srv.example:4430/meshrelay.ashx?id=1", ""},
		{"wss://evil.example:4430/meshrelay.ashx?id=1", "", "not the control server"},
		{"wss://srv.example:443/meshrelay.ashx?id=1", "", "not the control server"},
		{"ws://srv.example:4430/meshrelay.ashx", "", "only */"},
		{"https://srv.example:4430/meshrelay.ashx", "", "only */"},
		{"*/@evil.example/meshrelay.ashx", "", ""}, // @ is escaped: stays on the control host
		{"*/agent.ashx", "", "meshrelay.ashx"},
		{"*/devicefile.ashx?id=4&rauth=a$b", "wss://srv.example:4430/devicefile.ashx?id=4&rauth=a%24b", ""},
		{"*/x/notdevicefile.ashx", "", "meshrelay.ashx"},
		{"*/../../x/meshrelay.ashx?id=1", "wss://srv.example:4430/../../x/meshrelay.ashx?id=1", ""},
		{"", "", "only */"},
	}
	for _, tc := range tests {
		got, err := resolveRelayURL(control, tc.value)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err = %v, want %q", tc.value, err, tc.err)
			}
			continue
		}
		if err != nil {
			if tc.want == "" {
				continue // refused is also fine for tricks without a fixed answer
			}
			t.Errorf("%q: %v", tc.value, err)
			continue
		}
		if tc.want != "" && got != tc.want {
			t.Errorf("%q → %q, want %q", tc.value, got, tc.want)
		}
		if !strings.HasPrefix(got, "wss://srv.example:4430/") {
			t.Errorf("%q escaped the control host: %q", tc.value, got)
		}
	}
}

func TestRefuse(t *testing.T) {
	full := session.RightAdmin
	rc := session.RightRemoteControl
	tests := []struct {
		name    string
		info    session.Info
		refused bool
	}{
		{"admin terminal", session.Info{Protocol: 1, Rights: full}, false},
		{"terminal needs remote control", session.Info{Protocol: 1, Rights: session.RightAgentConsole}, true},
		{"no terminal bit", session.Info{Protocol: 1, Rights: rc | session.RightNoTerminal}, true},
		{"admin ignores deny bits", session.Info{Protocol: 5, Rights: full}, false},
		{"no files bit", session.Info{Protocol: 5, Rights: rc | session.RightNoFiles}, true},
		{"view-only desktop may open", session.Info{Protocol: 2, Rights: session.RightRemoteViewOnly}, false},
		{"no desktop bit", session.Info{Protocol: 2, Rights: rc | session.RightNoDesktop}, true},
		{"unknown protocol needs remote control", session.Info{Protocol: 77, Rights: session.RightRemoteViewOnly}, true},
	}
	for _, tc := range tests {
		if got := refuse(tc.info) != ""; got != tc.refused {
			t.Errorf("%s: refused = %v, want %v", tc.name, got, tc.refused)
		}
	}
}

// The relay's certificate must be the control channel's (or the one named
// by servertlshash); the check fails the TLS handshake itself.
func TestRelayTLSPinning(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	// httptest servers all share one certificate: give this one its own.
	oid, err := NewIdentity(1024)
	if err != nil {
		t.Fatal(err)
	}
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	other.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{oid.CertDER}, PrivateKey: oid.Key}}}
	other.StartTLS()
	defer other.Close()
	leaf := srv.Certificate()
	h := handshake.CertHash(leaf.Raw)
	otherHash := handshake.CertHash(oid.CertDER)
	dial := func(cfg *tls.Config, addr string) error {
		c, err := tls.Dial("tcp", addr, cfg)
		if err == nil {
			c.Close()
		}
		return err
	}
	addr := strings.TrimPrefix(srv.URL, "https://")
	otherAddr := strings.TrimPrefix(other.URL, "https://")
	if err := dial(relayTLS(h, leaf.PublicKey, ""), addr); err != nil {
		t.Errorf("same certificate refused: %v", err)
	}
	if err := dial(relayTLS(otherHash, nil, ""), addr); err == nil {
		t.Error("another certificate accepted without servertlshash")
	}
	if err := dial(relayTLS(otherHash, nil, strings.ToUpper(x509HashHex(leaf))), addr); err != nil {
		t.Errorf("certificate named by servertlshash refused: %v", err)
	}
	if err := dial(relayTLS(h, leaf.PublicKey, x509HashHex(leaf)), otherAddr); err == nil {
		t.Error("a relay with another certificate was accepted")
	}
}

func x509HashHex(c *x509.Certificate) string {
	h := handshake.CertHash(c.Raw)
	return hex.EncodeToString(h[:])
}
