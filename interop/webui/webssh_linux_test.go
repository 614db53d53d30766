//go:build linux

package webui

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// webSSHCfg is the webssh flow of testdata/webui.js.
type webSSHCfg struct {
	Port    int    `json:"port"`
	User    string `json:"user"`
	KeyFile string `json:"keyFile"`
	Command string `json:"command"`
	Expect  string `json:"expect"`
}

type webSSHResult struct {
	PortSet      bool   `json:"portSet"`
	ButtonShown  bool   `json:"buttonShown"`
	AuthAsked    bool   `json:"authAsked"`
	Prompt       bool   `json:"prompt"`
	Status       string `json:"status"`
	Output       bool   `json:"output"`
	Text         string `json:"text"`
	Disconnected bool   `json:"disconnected"`
	StatusAfter  string `json:"statusAfter"`
	Screenshot   string `json:"screenshot"`
}

// sshServer is OpenSSH's sshd on a loopback port, configured entirely in
// a temporary directory: its own host key, one authorized key (KeyFile,
// for the user the test runs as), no PAM, no passwords.
type sshServer struct {
	Port    int
	User    string
	KeyFile string // the client's private key (OpenSSH format, no passphrase)
	Dir     string
	log     *syncBuffer
}

// startSSHD starts sshd. Run as root, sshd insists on its privilege
// separation directory /run/sshd (normally made by its systemd unit): it
// gets one in a private mount namespace (a tmpfs on /run seen only by
// this sshd, and one on /var/log for the login records it writes), so
// nothing on the machine changes. Run as another user,
// sshd runs unprivileged and lets only that user in. The session's HOME
// is a directory of the test: the user's own dotfiles play no part.
func startSSHD(t *testing.T) *sshServer {
	t.Helper()
	sshd, err := exec.LookPath("sshd")
	if err != nil {
		if sshd, err = exec.LookPath("/usr/sbin/sshd"); err != nil {
			t.Skip("sshd (openssh-server) not installed")
		}
	}
	for _, tool := range []string{"ssh-keygen", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	s := &sshServer{User: u.Username, KeyFile: filepath.Join(dir, "client_key"), Dir: dir, log: &syncBuffer{}}
	for _, k := range []string{filepath.Join(dir, "host_key"), s.KeyFile} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "meshgo-test", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(s.KeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), pub, 0o600); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	// The free port may be taken before sshd binds it: try another.
	for attempt := 0; ; attempt++ {
		err := s.launch(t, sshd, home)
		if err == nil {
			return s
		}
		if attempt >= 3 || !strings.Contains(s.log.String(), "Address already in use") {
			t.Fatalf("sshd: %v:\n%s", err, s.log.String())
		}
	}
}

// launch starts sshd on a free port and waits until it listens.
func (s *sshServer) launch(t *testing.T, sshd, home string) error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
PidFile %s
AuthorizedKeysFile %s
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers %s
SetEnv HOME=%s
LogLevel VERBOSE
`, s.Port, filepath.Join(s.Dir, "host_key"), filepath.Join(s.Dir, "sshd.pid"), filepath.Join(s.Dir, "authorized_keys"), s.User, home)
	cfgPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && mount -t tmpfs -o mode=755 tmpfs /var/log && exec "$0" -D -e -f "$1"`, sshd, cfgPath)
	} else {
		cmd = exec.Command(sshd, "-D", "-e", "-f", cfgPath)
	}
	log := &syncBuffer{}
	s.log = log
	cmd.Stdout, cmd.Stderr = log, log
	// Its own process group: the per-connection children end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("sshd on %d:\n%s", s.Port, log.String())
		}
	})
	listening := fmt.Sprintf("Server listening on 127.0.0.1 port %d", s.Port)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(log.String(), listening); time.Sleep(50 * time.Millisecond) {
		select {
		case <-exited:
			return fmt.Errorf("exited before listening on %d", s.Port)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %d within 30 s", s.Port)
		}
	}
	return nil
}

// established counts the ESTABLISHED IPv4 TCP connections between the
// local ports a and b (/proc/net/tcp lists each end of a loopback
// connection), so a test can see one tunnel's connection go.
func established(t *testing.T, a, b int) int {
	t.Helper()
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pa, pb := fmt.Sprintf(":%04X", a), fmt.Sprintf(":%04X", b)
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 4 || fs[3] != "01" {
			continue
		}
		l, r := fs[1], fs[2]
		if (strings.HasSuffix(l, pa) && strings.HasSuffix(r, pb)) || (strings.HasSuffix(l, pb) && strings.HasSuffix(r, pa)) {
			n++
		}
	}
	return n
}

// TestWebSSH: MeshCentral's own SSH client (the Terminal tab's "SSH
// Connect", with domain "ssh" on the shared server) reaches an sshd on
// the device's loopback through our agent's port-forwarding tunnel: the
// key login, a typed command that reaches the shell (it writes a file)
// and its output back in the browser's terminal, then Disconnect ends
// the tunnel cleanly (our agent's forwarding ends without error, its end
// is in MeshCentral's event log, sshd sees the client go and no TCP
// connection to sshd is left).
func TestWebSSH(t *testing.T) {
	RequireBrowserTools(t, "web UI", "node", "npm")
	sshd := startSSHD(t)
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-webssh")
	agent, node := startOurAgent(t, srv, srv.MSH(t, mesh))

	b := make([]byte, 6)
	rand.Read(b)
	token := "meshgo-ssh-" + hex.EncodeToString(b)
	typed := filepath.Join(sshd.Dir, "typed")
	// The output differs from the command line the terminal echoes: only
	// the remote shell computes it.
	command := fmt.Sprintf("printf '%%s-%%d\\n' %s $((6*7)) | tee %s", token, typed)
	expect := token + "-42"
	r := runUI(t, srv, node, uiConfig{WebSSH: &webSSHCfg{Port: sshd.Port, User: sshd.User, KeyFile: sshd.KeyFile,
		Command: command, Expect: expect}})
	w := r.WebSSH
	if w == nil {
		t.Fatal("the browser did not get to the Terminal tab")
	}
	t.Logf("webssh: %+v", *w)
	if !w.ButtonShown {
		t.Fatalf("the Terminal tab shows no SSH Connect (SSH port set: %v)", w.PortSet)
	}
	if !w.AuthAsked {
		t.Fatal("SSH Connect asked for no credentials")
	}
	if !w.Prompt {
		t.Errorf("no shell prompt came back within 45 s (status %q)", w.Status)
	}
	if !w.Output {
		t.Errorf("the terminal does not show %q after the command; it holds:\n%s", expect, w.Text)
	}
	if got, err := os.ReadFile(typed); err != nil || string(got) != expect+"\n" {
		t.Errorf("the shell wrote %q (%v), want %q: the typed command did not reach it", got, err, expect+"\n")
	}
	if !w.Disconnected {
		t.Errorf("Disconnect did not end the session in the page (status %q)", w.StatusAfter)
	}
	if !strings.Contains(sshd.log.String(), "Accepted publickey for "+sshd.User) {
		t.Errorf("sshd logged no key login for %s", sshd.User)
	}

	// The tunnel's end, seen from each side. sshd names the agent's end
	// of the connection.
	target := "127.0.0.1:" + strconv.Itoa(sshd.Port)
	m := regexp.MustCompile(`Connection from 127\.0\.0\.1 port (\d+) on`).FindStringSubmatch(sshd.log.String())
	if m == nil {
		t.Fatal("sshd logged no connection")
	}
	agentPort, _ := strconv.Atoi(m[1])
	var endLine string
	var gone bool
	conns := -1
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		for _, l := range agent.lines("port forwarding ended") {
			if strings.Contains(l, target) {
				endLine = l
			}
		}
		sshdLog := sshd.log.String()
		gone = strings.Contains(sshdLog, "Disconnected from user "+sshd.User) || strings.Contains(sshdLog, "Connection closed by")
		conns = established(t, sshd.Port, agentPort)
		if (endLine != "" && gone && conns == 0) || time.Now().After(deadline) {
			break
		}
	}
	if endLine == "" || !strings.Contains(endLine, "clean=true") {
		t.Errorf("our agent's forwarding did not end cleanly: %q", endLine)
	}
	if !gone {
		t.Error("sshd did not see the client go")
	}
	if conns != 0 {
		t.Errorf("the connection agent (port %d) to sshd is still established", agentPort)
	}
	// The page also sends the agent a terminal tunnel request for the
	// same session (agent-redir-ws Start always does) that nobody pairs,
	// as with the C agent; our agent logs it as a relay that never paired.
	t.Logf("our agent on relays: %q", agent.lines("relay session"))
	want := "Ended tcp forwarding to " + target
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		found := false
		for _, e := range srv.Events(t) {
			if strings.HasSuffix(fmt.Sprint(e["nodeid"]), node) && strings.Contains(fmt.Sprint(e["msg"]), want) {
				found = true
			}
		}
		if found {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MeshCentral's event log has no %q for the device", want)
		}
	}
}
