package notifytest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// MTA is a real exim4 (Debian's exim4-daemon-light) run by the test as its
// own process, on a loopback port, with its own configuration and spool in
// a temporary directory: STARTTLS with a fresh certificate (CAFile), AUTH
// PLAIN for User/Password (offered only after STARTTLS), delivering mail for
// Domain to the mailbox file Mailbox.
type MTA struct {
	Host, User, Password, Domain string
	Port                         int
	CAFile, Mailbox              string
	cmd                          *exec.Cmd
	dir                          string
}

// StartExim starts the MTA, or skips the test when exim is not installed
// (.ci/packages.txt installs it in CI).
func StartExim(t testing.TB) *MTA {
	t.Helper()
	bin, err := exec.LookPath("exim4")
	if err != nil {
		if bin, err = exec.LookPath("exim"); err != nil {
			t.Skip("exim4 not installed (apt-get install exim4-daemon-light)")
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("exim with its own configuration (-C) keeps its rights only for root")
	}
	// Exim never delivers as root (fixed never_users): the mailbox is
	// written as "nobody", so the directories on its path must let it in.
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	os.Mkdir(filepath.Join(dir, "box"), 0o777)
	os.Chmod(filepath.Join(dir, "box"), 0o777)
	certPEM, keyPEM := selfSigned(t)
	m := &MTA{Host: "127.0.0.1", User: "mailer", Password: "smtp-" + randHex(8), Domain: "example.test",
		CAFile: filepath.Join(dir, "cert.pem"), Mailbox: filepath.Join(dir, "box", "mailbox"), dir: dir}
	os.WriteFile(m.CAFile, certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	os.MkdirAll(filepath.Join(dir, "spool"), 0o750)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf(`primary_hostname = localhost
spool_directory = %[1]s/spool
log_file_path = %[1]s/%%slog
pid_file_path = %[1]s/exim.pid
exim_user = root
exim_group = root
never_users =
keep_environment =
daemon_smtp_ports = %[2]d
local_interfaces = 127.0.0.1
tls_advertise_hosts = *
tls_certificate = %[1]s/cert.pem
tls_privatekey = %[1]s/key.pem
auth_advertise_hosts = ${if eq{$tls_in_cipher}{}{}{*}}
acl_smtp_rcpt = acl_rcpt
domainlist local_domains = %[3]s
queue_only = false
begin acl
acl_rcpt:
  accept authenticated = *
  deny message = authentication required
begin routers
local:
  driver = accept
  domains = +local_domains
  transport = mbox
begin transports
mbox:
  driver = appendfile
  file = %[4]s
  user = nobody
  mode = 0644
  envelope_to_add
  return_path_add
begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  server_prompts = :
  server_condition = ${if and{{eq{$auth2}{%[5]s}}{eq{$auth3}{%[6]s}}}}
  server_set_id = $auth2
  server_advertise_condition = ${if eq{$tls_in_cipher}{}{no}{yes}}
`, dir, m.Port, m.Domain, m.Mailbox, m.User, m.Password)
	cf := filepath.Join(dir, "exim.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	// -bdf: daemon in the foreground (the test's own child, ended by PID);
	// -odi: deliver at once, no queue runner needed.
	m.cmd = exec.Command(bin, "-C", cf, "-bdf", "-odi", "-oX", fmt.Sprint(m.Port))
	m.cmd.Stdout, m.cmd.Stderr = &out, &out
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		m.cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "mainlog"))
			t.Logf("exim output:\n%s\nmainlog:\n%s", out.String(), b)
		}
	})
	for end := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.Dial("tcp", net.JoinHostPort(m.Host, fmt.Sprint(m.Port)))
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(end) {
			t.Fatalf("exim did not listen: %v\n%s", err, out.String())
		}
	}
	return m
}

// Mail returns the mailbox's content so far.
func (m *MTA) Mail() string {
	b, _ := os.ReadFile(m.Mailbox)
	return string(b)
}

// WaitMail waits until the mailbox holds n messages ("From " lines).
func (m *MTA) WaitMail(t testing.TB, n int, timeout time.Duration) string {
	t.Helper()
	for end := time.Now().Add(timeout); ; time.Sleep(100 * time.Millisecond) {
		s := m.Mail()
		if strings.Count("\n"+s, "\nFrom ") >= n {
			return s
		}
		if time.Now().After(end) {
			b, _ := os.ReadFile(filepath.Join(m.dir, "mainlog"))
			t.Fatalf("mailbox has %d messages after %v, want %d:\n%s\nmainlog:\n%s", strings.Count("\n"+s, "\nFrom "), timeout, n, s, b)
		}
	}
}

func selfSigned(t testing.TB) (certPEM, keyPEM []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return fmt.Sprintf("%x", b)
}
