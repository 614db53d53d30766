//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/agentbin"
)

// buildServerLite builds this command once per test binary.
var buildServerLite = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "server-lite-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "server-lite")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		return "", &exec.ExitError{Stderr: out}
	}
	return bin, nil
})

// liteProc is a running server-lite binary and what it printed.
type liteProc struct {
	t   *testing.T
	cmd *exec.Cmd
	mu  sync.Mutex
	out bytes.Buffer
	// done closes when the one goroutine that calls cmd.Wait has returned.
	// Nobody else may call cmd.Wait: two concurrent Waits race on the
	// copying goroutines' result channel and the loser blocks forever
	// (how TestDeployedServer once hung after SIGINT).
	done chan struct{}
}

// stop interrupts server-lite (which stops its local agent) and waits for
// it to exit, killing it after 30 s.
func (p *liteProc) stop() {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *liteProc) output() string { p.mu.Lock(); defer p.mu.Unlock(); return p.out.String() }

// waitFor waits until the output matches re and returns the submatches.
func (p *liteProc) waitFor(re string, d time.Duration) []string {
	p.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(p.output()); m != nil {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.t.Fatalf("server-lite output never matched %q:\n%s", re, p.output())
	return nil
}

func startLite(t *testing.T, dir string, args ...string) *liteProc {
	t.Helper()
	bin, err := buildServerLite()
	if err != nil {
		t.Fatalf("build server-lite: %v %s", err, err.(*exec.ExitError).Stderr)
	}
	p := &liteProc{t: t, cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Dir = dir
	p.cmd.Env = agentbin.Env() // for its --local-agent's shells
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the local agent runs in its own group
	// A local agent (or a process it started) that outlives server-lite
	// holds the output pipe open; Wait then gives up on it after this.
	p.cmd.WaitDelay = 10 * time.Second
	go func() {
		s := bufio.NewScanner(pr)
		for s.Scan() {
			p.mu.Lock()
			p.out.WriteString(s.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("server-lite output:\n%s", p.output())
		}
	})
	return p
}

// selfSigned writes a certificate and key for names to dir/<base>.crt/.key.
func selfSigned(t *testing.T, dir, base, cn string, names ...string) (certFile, keyFile string, der []byte) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: names,
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(k)
	certFile, keyFile = filepath.Join(dir, base+".crt"), filepath.Join(dir, base+".key")
	os.WriteFile(certFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile+".tmp", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600)
	os.Rename(keyFile+".tmp", keyFile)
	os.Rename(certFile+".tmp", certFile)
	return certFile, keyFile, der
}

func peerCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

func insecureClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestDeployedServer runs server-lite as an administrator deploys it: a
// config file (listen on every address, two host names, an HTTP redirect
// port, a relative data directory, the agent builds directory) with flags
// overriding it (--cert/--key, --local-agent with our agent's binary). It
// is reached over 127.0.0.1 only. It checks the names in the certificate
// the agents are told about (.msh), that our agent comes online through
// the administrator's own certificate, that SIGHUP serves a new
// certificate to new connections while the agent stays usable, the
// redirect, and /meshagents?id=6 serving the build.
func TestDeployedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs server-lite and our agent")
	}
	agent := agentbin.MustBuild(t)
	work := t.TempDir()
	builds := filepath.Join(work, "dist")
	os.MkdirAll(builds, 0o755)
	ours, _ := os.ReadFile(agent)
	os.WriteFile(filepath.Join(builds, "meshagent-linux-amd64"), ours, 0o755)
	certFile, keyFile, der1 := selfSigned(t, work, "web", "first.lite.test", "lite.example.test")

	cfg := map[string]any{"data": "data", "listen": "0.0.0.0:0", "hostnames": []string{"lite.example.test", "10.77.0.1"},
		"httpRedirect": "127.0.0.1:0", "agents": "dist", "eventDays": 3}
	b, _ := json.Marshal(cfg)
	os.WriteFile(filepath.Join(work, "server-lite.json"), b, 0o600)

	// Without the certificate first: server-lite's own one names the hosts.
	p := startLite(t, work, "--config", "server-lite.json", "--data", "data-own")
	m := p.waitFor(`listening on: (\S+:\d+) \(plain HTTP on (127\.0\.0\.1:\d+) redirects\)`, time.Minute)
	port := m[1][strings.LastIndex(m[1], ":")+1:]
	local := "127.0.0.1:" + port
	own := peerCert(t, local)
	if own.VerifyHostname("lite.example.test") != nil || own.VerifyHostname("10.77.0.1") != nil || own.VerifyHostname("127.0.0.1") != nil {
		t.Fatalf("own certificate names %v %v", own.DNSNames, own.IPAddresses)
	}
	msh, err := os.ReadFile(filepath.Join(work, "data-own", "meshagent.msh"))
	if err != nil || !bytes.Contains(msh, []byte("MeshServer=wss://lite.example.test:"+port+"/agent.ashx\r\n")) {
		t.Fatalf(".msh: %v\n%s", err, msh)
	}
	p.waitFor(`URL: +https://lite\.example\.test:`+port, time.Second)

	// The redirect answers only with a redirect to HTTPS on the same name
	// (or the primary one for a Host that is not the server's).
	for host, want := range map[string]string{"10.77.0.1": "https://10.77.0.1:" + port + "/x?y=1", "evil.test": "https://lite.example.test:" + port + "/x?y=1"} {
		req, _ := http.NewRequest("GET", "http://"+m[2]+"/x?y=1", nil)
		req.Host = host
		resp, err := insecureClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != want {
			t.Fatalf("redirect for Host %s: %d %q", host, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// /meshagents?id=6 is the build from the agents directory.
	resp, err := insecureClient().Get("https://" + local + "/meshagents?id=6")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || sha512.Sum384(served) != sha512.Sum384(ours) {
		t.Fatalf("/meshagents?id=6: %d, %d bytes (ours %d)", resp.StatusCode, len(served), len(ours))
	}
	p.stop()

	// The administrator's certificate, and our agent's binary started by
	// --local-agent with a relative --data (run in its own directory, so
	// every path handed to it must be absolute).
	p = startLite(t, work, "--config", "server-lite.json", "--data", "data-rel", "--cert", certFile, "--key", keyFile, "--local-agent", agent)
	m = p.waitFor(`listening on: \S+:(\d+)`, time.Minute)
	local = "127.0.0.1:" + m[1]
	pass := p.waitFor(`password: +(\S+)`, time.Second)[1]
	if got := peerCert(t, local); !bytes.Equal(got.Raw, der1) {
		t.Fatalf("served %q, not the administrator's certificate", got.Subject)
	}
	p.waitFor(`local agent started`, 10*time.Second)
	cli := func(args ...string) string {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, p.cmd.Path, append(args, "--url", "wss://"+local, "--user", "admin")...)
		cmd.Env = append(os.Environ(), "SERVERLITE_PASS="+pass)
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	devices := func() string { return cli("devices") }
	waitOnline := func(what string) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !strings.Contains(devices(), "online") {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no device online:\n%s", what, devices())
			}
			time.Sleep(time.Second)
		}
	}
	waitOnline("through the administrator's certificate")

	// SIGHUP: new connections get the new certificate, the agent stays
	// online.
	_, _, der2 := selfSigned(t, work, "web", "second.lite.test", "lite.example.test")
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for !bytes.Equal(peerCert(t, local).Raw, der2) {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not load the new certificate")
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.waitFor(`web certificate reloaded`, 5*time.Second)
	list := devices()
	if !strings.Contains(list, "online") {
		t.Fatal("agent not online after the reload")
	}
	// A relay session: the agent's control channel saw the first
	// certificate, its relay connection sees the second, which the tunnel
	// message names (servertlshash).
	node := strings.Fields(list)[0]
	if out := cli("shell", "--id", node, "--run", "echo relay-$((40+2))"); !strings.Contains(out, "relay-42") {
		t.Fatalf("shell after the reload:\n%s", out)
	}
	// A broken file on SIGHUP keeps the current certificate.
	os.WriteFile(certFile, []byte("not a certificate"), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	p.waitFor(`web certificate not reloaded`, 5*time.Second)
	if !bytes.Equal(peerCert(t, local).Raw, der2) {
		t.Fatal("a broken certificate file replaced the served one")
	}
	p.stop()

	// The C agent through the administrator's certificate too.
	cAgent := "/root/.cache/meshgo/meshcentral-1.1.55/node_modules/meshcentral/agents/meshagent_x86-64"
	if _, err := os.Stat(cAgent); err != nil {
		t.Logf("C agent not installed (%v): not tried with the administrator's certificate", err)
		return
	}
	certFile, keyFile, der3 := selfSigned(t, work, "web-c", "c.lite.test", "lite.example.test")
	p = startLite(t, work, "--config", "server-lite.json", "--data", "data-c", "--cert", certFile, "--key", keyFile, "--local-agent", cAgent)
	m = p.waitFor(`listening on: \S+:(\d+)`, time.Minute)
	local = "127.0.0.1:" + m[1]
	pass = p.waitFor(`password: +(\S+)`, time.Second)[1]
	if !bytes.Equal(peerCert(t, local).Raw, der3) {
		t.Fatal("not the administrator's certificate")
	}
	waitOnline("the C agent through the administrator's certificate")
}
