package handshake

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"
)

type party struct {
	key *rsa.PrivateKey
	der []byte
}

var (
	partiesOnce sync.Once
	parties     [3]party // agent, server, impostor
)

func testParties(t testing.TB) (agent, server, impostor party) {
	partiesOnce.Do(func() {
		for i := range parties {
			key, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			tmpl := &x509.Certificate{
				SerialNumber: big.NewInt(int64(i + 1)),
				Subject:      pkix.Name{CommonName: "test"},
				NotBefore:    time.Now().Add(-time.Hour),
				NotAfter:     time.Now().Add(time.Hour),
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
			if err != nil {
				panic(err)
			}
			parties[i] = party{key, der}
		}
	})
	return parties[0], parties[1], parties[2]
}

// run drives both roles against each other in memory and returns the error
// that stopped either side, if any.
func run(t *testing.T, ac AgentConfig, sc ServerConfig) (*Agent, *Server, error) {
	t.Helper()
	a, err := NewAgent(ac)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(sc)
	if err != nil {
		t.Fatal(err)
	}
	toServer := a.Start()
	var toAgent [][]byte
	for round := 0; round < 10 && (len(toServer) > 0 || len(toAgent) > 0); round++ {
		for _, m := range toServer {
			out, err := s.Handle(m)
			if err != nil {
				return a, s, err
			}
			toAgent = append(toAgent, out...)
		}
		toServer = nil
		if s.Authenticated() && !a.Done() {
			toAgent = append(toAgent, EncodeConfirm())
		}
		for _, m := range toAgent {
			out, err := a.Handle(m)
			if err != nil {
				return a, s, err
			}
			toServer = append(toServer, out...)
		}
		toAgent = nil
	}
	return a, s, nil
}

func configs(t *testing.T) (AgentConfig, ServerConfig) {
	ag, sv, _ := testParties(t)
	tlsHash := CertHash([]byte("the TLS certificate"))
	sid := NodeID(&sv.key.PublicKey)
	ac := AgentConfig{
		Key: ag.key, CertDER: ag.der, ServerID: sid, TLSCertHash: tlsHash,
		Info: AuthInfo{InfoVersion: 1, AgentID: AgentIDLinuxX64, PlatformType: PlatformVM,
			Capabilities: CapConsole | CapJavaScript, Hostname: "host-1"},
		CommitDate: "2026-Nov-23 10:00:00+0000", HostInfo: "Linux - x64", AgentName: "nice name",
	}
	sc := ServerConfig{Key: sv.key, CertDER: sv.der, AcceptHash: func(h [HashLen]byte) bool { return h == tlsHash }}
	return ac, sc
}

func TestRolesFullAndSkipPath(t *testing.T) {
	ac, sc := configs(t)
	a, s, err := run(t, ac, sc)
	if err != nil {
		t.Fatalf("full path: %v", err)
	}
	if !a.Done() || !s.Authenticated() {
		t.Fatalf("full path incomplete: agent done %v, server auth %v", a.Done(), s.Authenticated())
	}
	res := s.Result()
	if want := NodeID(&ac.Key.PublicKey); res.NodeID != want {
		t.Errorf("node id %X, want %X", res.NodeID[:6], want[:6])
	}
	if res.Info.Hostname != "host-1" || res.AgentName != "nice name" || res.Skip || res.HostInfo != "Linux - x64" {
		t.Errorf("result %+v", res)
	}
	trust := a.Trust()
	if !bytes.Equal(trust, ac.TLSCertHash[:]) {
		t.Fatalf("trust %X", trust)
	}

	ac.Trusted = trust
	a, s, err = run(t, ac, sc)
	if err != nil {
		t.Fatalf("skip path: %v", err)
	}
	if !a.Skip() || !s.Result().Skip || !a.Done() || !s.Authenticated() {
		t.Fatalf("skip path: agent skip %v done %v, server skip %v auth %v", a.Skip(), a.Done(), s.Result().Skip, s.Authenticated())
	}
	if a.Trust() != nil {
		t.Error("skip path must not renew trust")
	}
}

func TestRolesRejectImpostors(t *testing.T) {
	_, _, imp := testParties(t)
	tests := []struct {
		name   string
		mutate func(*AgentConfig, *ServerConfig)
		want   error
	}{
		{"server key not matching ServerID", func(a *AgentConfig, s *ServerConfig) { s.Key, s.CertDER = imp.key, imp.der }, ErrServerID},
		{"server presents another certificate in its message 2", func(a *AgentConfig, s *ServerConfig) { s.CertDER = imp.der }, ErrServerID},
		{"server signs with a key not in its certificate", func(a *AgentConfig, s *ServerConfig) { s.Key = imp.key }, ErrSignature},
		{"TLS certificate unknown to the server (MITM)", func(a *AgentConfig, s *ServerConfig) { a.TLSCertHash = CertHash([]byte("mitm")) }, ErrCertHash},
		{"agent replays a certificate without its key", func(a *AgentConfig, s *ServerConfig) { a.Key = imp.key }, ErrSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ac, sc := configs(t)
			tc.mutate(&ac, &sc)
			a, s, err := run(t, ac, sc)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if a.Done() || s.Authenticated() {
				t.Fatal("authenticated despite failure")
			}
		})
	}
}

// A MITM that terminates TLS with its own certificate and forwards to the
// real server cannot pass: the agent's H names the MITM's certificate, and
// if the MITM rewrites H, the server's signature no longer matches the H the
// agent computed itself.
func TestMITMRewritingHashFails(t *testing.T) {
	ac, sc := configs(t)
	real := ac.TLSCertHash
	ac.TLSCertHash = CertHash([]byte("mitm cert"))
	a, _ := NewAgent(ac)
	s, _ := NewServer(sc)
	var toAgent [][]byte
	for _, m := range a.Start() {
		if c, _ := Command(m); c == CmdAuthRequest {
			r, _ := ParseAuthRequest(m)
			r.CertHash = real // the MITM substitutes the real server's hash
			m = r.Marshal()
		}
		out, err := s.Handle(m)
		if err != nil {
			t.Fatal(err)
		}
		toAgent = append(toAgent, out...)
	}
	for _, m := range toAgent {
		if c, _ := Command(m); c == CmdAuthRequest {
			r, _ := ParseAuthRequest(m)
			r.CertHash = ac.TLSCertHash // and restores the agent's view
			m = r.Marshal()
		}
		if _, err := a.Handle(m); err != nil {
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("err = %v, want signature failure", err)
			}
			return
		}
	}
	t.Fatal("agent accepted a server signature over another certificate hash")
}

func TestAgentRefusesCommandsBeforeAuth(t *testing.T) {
	ac, _ := configs(t)
	for _, m := range [][]byte{
		EncodeRequest(CmdCoreModule, 0, []byte("evil core")),
		[]byte(`{"action":"msg","type":"console","value":"eval"}`),
		EncodeConfirm(), // 4 before the server proved itself
	} {
		a, _ := NewAgent(ac)
		a.Start()
		if _, err := a.Handle(m); !errors.Is(err, ErrState) {
			t.Errorf("Handle(%q) err = %v, want ErrState", m[:2], err)
		}
		if a.Done() {
			t.Error("done")
		}
	}
}

func TestServerSignatureBeforeRequest(t *testing.T) {
	// The agent's 2 may reach the server before its 1 (control.md §4.1).
	ac, sc := configs(t)
	a, _ := NewAgent(ac)
	s, _ := NewServer(sc)
	msgs := a.Start()
	// Let the agent see a server 1 so it produces its 2 first.
	fake := AuthRequest{CertHash: ac.TLSCertHash, Nonce: s.nonce}.Marshal()
	v, err := a.Handle(fake)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range append(v, msgs...) {
		if _, err := s.Handle(m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Handle(ac.Info.Marshal()); err != nil {
		t.Fatal(err)
	}
	if !s.Authenticated() {
		t.Fatal("server did not authenticate with out-of-order signature")
	}
}

func TestAuthInfoRoundTrip(t *testing.T) {
	tests := []AuthInfo{
		{InfoVersion: 1, AgentID: 6, PlatformType: 1, Capabilities: 0x118, Hostname: "vm"},
		{InfoVersion: 1, AgentID: 4, Hostname: ""},
		{Hostname: "ünïcode-host"},
	}
	for _, in := range tests {
		in.MeshID[0], in.MeshID[47] = 0xF4, 0xB5
		got, err := ParseAuthInfo(in.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if got != in {
			t.Errorf("round trip: got %+v want %+v", got, in)
		}
	}
	// The observed 74-byte message from the C agent (control.md §4.9), with
	// a MeshID whose tail is non-zero.
	m := AuthInfo{InfoVersion: 1, AgentID: 6, PlatformType: 1, Capabilities: 0x118, Hostname: "vm"}.Marshal()
	if len(m) != 74 {
		t.Errorf("len %d, want 74", len(m))
	}
}

func TestDecodersRejectMalformed(t *testing.T) {
	tests := []struct {
		name string
		f    func([]byte) error
		msg  []byte
		want error
	}{
		{"empty", func(b []byte) error { _, err := Command(b); return err }, nil, ErrShort},
		{"auth request short", func(b []byte) error { _, err := ParseAuthRequest(b); return err }, []byte{0, 1, 2}, ErrLength},
		{"auth request wrong cmd", func(b []byte) error { _, err := ParseAuthRequest(b); return err }, make([]byte, 98), ErrCommand},
		{"auth verify cert overruns", func(b []byte) error { _, _, err := ParseAuthVerify(b); return err }, []byte{0, 2, 0xff, 0xff, 1}, ErrLength},
		{"auth verify no signature", func(b []byte) error { _, _, err := ParseAuthVerify(b); return err }, []byte{0, 2, 0, 1, 1}, ErrLength},
		{"auth verify garbage cert", func(b []byte) error { _, _, err := ParseAuthVerify(b); return err }, []byte{0, 2, 0, 2, 1, 2, 3}, ErrCertificate},
		{"auth info short", func(b []byte) error { _, err := ParseAuthInfo(b); return err }, []byte{0, 3, 1}, ErrShort},
		{"auth info hostname overrun", func(b []byte) error { _, err := ParseAuthInfo(b); return err }, append(append([]byte{0, 3}, make([]byte, 68)...), 0, 9, 'a'), ErrLength},
		{"server id short", func(b []byte) error { _, err := DecodeServerID(b); return err }, []byte{0, 5, 1}, ErrLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.f(tc.msg); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestIDText(t *testing.T) {
	id := bytes.Repeat([]byte{0xfb, 0xff, 0xbf}, 16)
	s := EncodeID(id)
	if len(s) != 64 || bytes.ContainsAny([]byte(s), "+/=") {
		t.Fatalf("EncodeID = %q", s)
	}
	back, err := DecodeID(s)
	if err != nil || !bytes.Equal(back, id) {
		t.Fatalf("DecodeID = %x, %v", back, err)
	}
	// Observed node id (control.md §1.3) decodes to 48 bytes.
	if b, err := DecodeID("MfdbNpjagLR0UC8yVbCGsh@AUt6hZRSU66SLMRayX2ourBogU1Y7K@6Z5$bNTeeX"); err != nil || len(b) != 48 {
		t.Fatalf("observed id: %d bytes, %v", len(b), err)
	}
}

func FuzzServerHandle(f *testing.F) {
	ac, sc := configs(&testing.T{})
	a, _ := NewAgent(ac)
	for _, m := range a.Start() {
		f.Add(m)
	}
	f.Add([]byte{0, 2, 0, 4, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, err := NewServer(sc)
		if err != nil {
			t.Fatal(err)
		}
		s.Handle(msg)
		if s.Authenticated() {
			t.Fatal("one message authenticated an agent")
		}
	})
}

func FuzzAgentHandle(f *testing.F) {
	ac, _ := configs(&testing.T{})
	f.Add(AuthRequest{CertHash: ac.TLSCertHash}.Marshal())
	f.Add([]byte{0, 2, 0, 4, 1, 2, 3, 4, 5})
	f.Add(EncodeConfirm())
	f.Fuzz(func(t *testing.T, msg []byte) {
		a, err := NewAgent(ac)
		if err != nil {
			t.Fatal(err)
		}
		a.Start()
		a.Handle(msg)
		if a.Done() {
			t.Fatal("one message authenticated the server")
		}
	})
}

func FuzzParsers(f *testing.F) {
	f.Add(AuthInfo{Hostname: "h"}.Marshal())
	f.Add(EncodeCommitDate("2022-Nov-2 23:01:45-0700"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		if info, err := ParseAuthInfo(msg); err == nil {
			if again, err := ParseAuthInfo(info.Marshal()); err != nil || again != info {
				t.Fatalf("auth info not stable: %v", err)
			}
		}
		ParseAuthRequest(msg)
		ParseAuthVerify(msg)
		DecodeServerID(msg)
		DecodeCommitDate(msg)
		DecodeHostInfo(msg)
		DecodeRequest(msg)
	})
}
