//go:build linux

package webui

import (
	"bufio"
	"bytes"
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

// webSSHCfg is one session of the webssh flow of testdata/webui.js.
type webSSHCfg struct {
	Name     string   `json:"name"`
	Mode     string   `json:"mode"` // "terminal" or "sftp"
	Port     int      `json:"port"`
	Auth     string   `json:"auth"` // "key" or "password"
	User     string   `json:"user"`
	KeyFile  string   `json:"keyFile,omitempty"`
	Password string   `json:"password,omitempty"`
	Command  string   `json:"command,omitempty"`
	Expect   string   `json:"expect,omitempty"`
	SFTP     *sftpCfg `json:"sftp,omitempty"`
}

// sftpCfg is what the Files tab's SFTP session does in dir.
type sftpCfg struct {
	Dir      string    `json:"dir"`
	Text     namedFile `json:"text"`
	Upload   sftpFile  `json:"upload"`
	Download sftpFile  `json:"download"`
}

type sftpFile struct {
	Path string `json:"path,omitempty"`
	Name string `json:"name"`
	Size int    `json:"size"`
}

type webSSHResult struct {
	Name         string `json:"name"`
	Error        string `json:"error"`
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
	// SFTP
	Connected     bool     `json:"connected"`
	Listed        bool     `json:"listed"`
	Names         []string `json:"names"`
	EditorMatched bool     `json:"editorMatched"`
	EditorValue   string   `json:"editorValue"`
	Uploaded      bool     `json:"uploaded"`
	DownloadPath  string   `json:"downloadPath"`
	DownloadError string   `json:"downloadError"`
}

// sshUser is an account sshd lets in.
type sshUser struct {
	Name     string
	UID      int
	Home     string // writable by the account
	Password string // for PasswordUser; KeyFile is for User
}

// sshServer is OpenSSH's sshd on a loopback port, configured entirely in
// a temporary directory: its own host key, one authorized key (KeyFile,
// for the user the test runs as), no PAM, SFTP (internal-sftp) and, when
// run as root, one password account (PasswordUser) that exists only in
// sshd's own view of /etc/passwd and /etc/shadow.
type sshServer struct {
	Port    int
	User    string
	KeyFile string // the client's private key (OpenSSH format, no passphrase)
	Dir     string
	// PasswordUser is a test account with a password the test set, or nil
	// when sshd does not run as root (it could not check passwords then).
	PasswordUser *sshUser
	log          *syncBuffer
	bindFiles    []string // private /etc files: "src:dst"
}

// startSSHD starts sshd. Run as root, sshd insists on its privilege
// separation directory /run/sshd (normally made by its systemd unit): it
// gets one in a private mount namespace (a tmpfs on /run seen only by
// this sshd, and one on /var/log for the login records it writes), so
// nothing on the machine changes. The password account is added the same
// way: copies of /etc/passwd, /etc/group and /etc/shadow with one more
// line each, bind-mounted over the real files in that namespace alone; the machine's accounts never change. Run as another
// user, sshd runs unprivileged and lets only that user in (with its key).
// The session's HOME is a directory of the test: the user's own dotfiles
// play no part.
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
	if os.Geteuid() == 0 {
		s.addPasswordUser(t)
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

// addPasswordUser makes the password account's files: passwd and group
// copies with its line appended (an unused uid and gid), a shadow file
// with its SHA-512 crypt hash (libc's crypt through perl, which Debian
// always has), and a home directory it owns.
func (s *sshServer) addPasswordUser(t *testing.T) {
	t.Helper()
	pw := &sshUser{Name: "meshgo-sshpw"}
	b := make([]byte, 9)
	rand.Read(b)
	pw.Password = "Pw-" + hex.EncodeToString(b)
	salt := make([]byte, 6)
	rand.Read(salt)
	out, err := exec.Command("perl", "-e", `print crypt($ARGV[0], $ARGV[1])`, pw.Password, "$6$"+hex.EncodeToString(salt)+"$").Output()
	hash := string(out)
	if err != nil || !strings.HasPrefix(hash, "$6$") {
		t.Logf("no SHA-512 crypt through perl (%v, %q): no password account", err, hash)
		return
	}
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	group, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Fatal(err)
	}
	// sshd checks every account's shadow entry (a missing one counts as
	// locked): the copy has the machine's, readable by root only.
	shadow, err := os.ReadFile("/etc/shadow")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, f := range [][]byte{passwd, group} {
		for _, line := range strings.Split(string(f), "\n") {
			if fs := strings.Split(line, ":"); len(fs) > 2 {
				used[fs[2]] = true
				if fs[0] == pw.Name {
					t.Fatalf("%s already exists on this machine", pw.Name)
				}
			}
		}
	}
	for pw.UID = 61000; used[strconv.Itoa(pw.UID)]; pw.UID++ {
	}
	// The account walks into the test's directory: let it through.
	for _, d := range []string{filepath.Dir(s.Dir), s.Dir} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	pw.Home = filepath.Join(s.Dir, "pwhome")
	if err := os.Mkdir(pw.Home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(pw.Home, pw.UID, pw.UID); err != nil {
		t.Fatal(err)
	}
	id := strconv.Itoa(pw.UID)
	files := map[string]string{
		"passwd": strings.TrimRight(string(passwd), "\n") + "\n" + pw.Name + ":x:" + id + ":" + id + "::" + pw.Home + ":/bin/sh\n",
		"group":  strings.TrimRight(string(group), "\n") + "\n" + pw.Name + ":x:" + id + ":\n",
		"shadow": strings.TrimRight(string(shadow), "\n") + "\n" + pw.Name + ":" + hash + ":19000:0:99999:7:::\n",
	}
	for name, content := range files {
		src := filepath.Join(s.Dir, "etc-"+name)
		mode := os.FileMode(0o644)
		if name == "shadow" {
			mode = 0o600
		}
		if err := os.WriteFile(src, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		s.bindFiles = append(s.bindFiles, src+":/etc/"+name)
	}
	s.PasswordUser = pw
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
PasswordAuthentication %s
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
AllowUsers %s
Subsystem sftp internal-sftp
LogLevel VERBOSE
Match User %s
	SetEnv HOME=%s
`, s.Port, filepath.Join(s.Dir, "host_key"), filepath.Join(s.Dir, "sshd.pid"), filepath.Join(s.Dir, "authorized_keys"),
		yesNo(s.PasswordUser != nil), s.allowed(), s.User, home)
	cfgPath := filepath.Join(s.Dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		// Each "src:dst" of bindFiles is bind-mounted in the namespace only.
		script := `mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && mount -t tmpfs -o mode=755 tmpfs /var/log &&
for b in "$@"; do mount --bind "${b%%:*}" "${b#*:}" || exit 1; done && exec "$0" -D -e -f "$SSHD_CONFIG"`
		cmd = exec.Command("unshare", append([]string{"--mount", "--propagation", "private", "sh", "-c", script, sshd}, s.bindFiles...)...)
		cmd.Env = append(os.Environ(), "SSHD_CONFIG="+cfgPath)
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

// allowed is sshd's AllowUsers list.
func (s *sshServer) allowed() string {
	if s.PasswordUser != nil {
		return s.User + " " + s.PasswordUser.Name
	}
	return s.User
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
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

// TestWebSSH: MeshCentral's own SSH client (domain "ssh" on the shared
// server) reaches an sshd on the device's loopback through our agent's
// port-forwarding tunnel, one session after the other on one sshd, one
// agent and one browser:
//   - key: the Terminal tab's "SSH Connect" with a key login, a typed
//     command that reaches the shell (it writes a file) and its output
//     back in the browser's terminal;
//   - password: the same with a password typed into MeshCentral's
//     authentication dialog, for an account sshd alone knows (as root);
//   - sftp: the Files tab's "SFTP Connect" (sshfilesrelay.ashx, the same
//     tunnel), logged in with the password (the key without root): the
//     test folder listed, a file read in the editor, one uploaded with the
//     Upload dialog (its bytes on disk, owned by the SSH account: it went
//     through sshd, not the agent's own file transfer) and one downloaded
//     through the tab (the same bytes as on disk).
//
// Each Disconnect ends its tunnel cleanly: our agent's forwarding ends
// without error, each end is in MeshCentral's event log, sshd sees every
// client go and no TCP connection to sshd is left.
func TestWebSSH(t *testing.T) {
	RequireBrowserTools(t, "web UI", "node", "npm")
	sshd := startSSHD(t)
	srv := mctest.Shared(t)
	mesh := srv.AddDeviceGroup(t, "webui-webssh")
	agent, node := startOurAgent(t, srv, srv.MSH(t, mesh))

	b := make([]byte, 6)
	rand.Read(b)
	token := "meshgo-ssh-" + hex.EncodeToString(b)
	// The output differs from the command line the terminal echoes: only
	// the remote shell computes it.
	terminal := func(name, auth, user, dir string) (webSSHCfg, string) {
		typed := filepath.Join(dir, "typed-"+name)
		return webSSHCfg{Name: name, Mode: "terminal", Port: sshd.Port, Auth: auth, User: user,
			Command: fmt.Sprintf("printf '%%s-%%d\\n' %s-%s $((6*7)) | tee %s", token, name, typed),
			Expect:  token + "-" + name + "-42"}, typed
	}
	type check struct {
		typed, want string // the file the typed command writes, and what
		login       string // sshd's log line for the login
	}
	var cases []webSSHCfg
	checks := map[string]check{}
	c, typed := terminal("key", "key", sshd.User, sshd.Dir)
	c.KeyFile = sshd.KeyFile
	cases = append(cases, c)
	checks["key"] = check{typed, c.Expect + "\n", "Accepted publickey for " + sshd.User}

	// The SFTP session works in a folder of its own account.
	sftpUser, sftpHome, sftpUID := sshd.User, filepath.Join(sshd.Dir, "sftp"), os.Geteuid()
	if pw := sshd.PasswordUser; pw != nil {
		c, typed := terminal("password", "password", pw.Name, pw.Home)
		c.Password = pw.Password
		cases = append(cases, c)
		checks["password"] = check{typed, c.Expect + "\n", "Accepted password for " + pw.Name}
		sftpUser, sftpHome, sftpUID = pw.Name, filepath.Join(pw.Home, "sftp"), pw.UID
	} else {
		t.Log("not root: no password account, SFTP with the key")
	}
	if err := os.Mkdir(sftpHome, 0o755); err != nil {
		t.Fatal(err)
	}
	text := "sftp text " + token + "\n"
	// Several of MeshCentral's SFTP download blocks (16380 bytes), the last
	// one large too: the page (agent-redir-ws) reads messages of 16000
	// bytes or more through an asynchronous FileReader and smaller ones at
	// once, so a short last block overtakes the two before it and the page
	// ends the download without them (a MeshCentral race, seen here: 32760
	// bytes short; the tunnel itself carries SSH, where a lost byte would
	// end the session).
	down := make([]byte, 18*16380+16200)
	rand.Read(down)
	up := make([]byte, 200<<10+5) // several of the page's 64 KiB slices
	rand.Read(up)
	up[0] = '{' // the page escapes a slice that starts like JSON
	upPath := filepath.Join(t.TempDir(), "up.bin")
	for path, data := range map[string][]byte{filepath.Join(sftpHome, "read.txt"): []byte(text), filepath.Join(sftpHome, "down.bin"): down, upPath: up} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(path, sftpHome) {
			os.Chown(path, sftpUID, sftpUID)
		}
	}
	os.Chown(sftpHome, sftpUID, sftpUID)
	sc := webSSHCfg{Name: "sftp", Mode: "sftp", Port: sshd.Port, User: sftpUser, SFTP: &sftpCfg{Dir: sftpHome,
		Text:     namedFile{Name: "read.txt", Content: text},
		Upload:   sftpFile{Path: upPath, Name: "up.bin", Size: len(up)},
		Download: sftpFile{Name: "down.bin", Size: len(down)}}}
	if pw := sshd.PasswordUser; pw != nil {
		sc.Auth, sc.Password = "password", pw.Password
	} else {
		sc.Auth, sc.KeyFile = "key", sshd.KeyFile
	}
	cases = append(cases, sc)
	checks["sftp"] = check{login: "Accepted " + map[string]string{"password": "password", "key": "publickey"}[sc.Auth] + " for " + sftpUser}

	// Three sessions: a loaded machine's page loads take 10 s each.
	r := runUI(t, srv, node, uiConfig{WebSSH: cases, Timeout: 5 * time.Minute})
	if len(r.WebSSH) == 0 {
		t.Fatal("the browser did not get to the Terminal tab")
	}
	for i, w := range r.WebSSH {
		c := cases[i]
		t.Run(c.Name, func(t *testing.T) {
			w.Text = strings.TrimRight(w.Text, "\n")
			t.Logf("webssh %s: %+v", c.Name, w)
			if w.Error != "" {
				t.Errorf("browser: %s", w.Error)
			}
			if !w.ButtonShown {
				t.Fatalf("the tab shows no SSH/SFTP Connect (SSH port set: %v)", w.PortSet)
			}
			if !w.AuthAsked {
				t.Fatal("Connect asked for no credentials")
			}
			if !strings.Contains(sshd.log.String(), checks[c.Name].login) {
				t.Errorf("sshd logged no %q", checks[c.Name].login)
			}
			if c.Mode == "sftp" {
				checkSFTP(t, w, c, sftpUID, up, down)
			} else {
				if !w.Prompt {
					t.Errorf("no shell prompt came back within 45 s (status %q)", w.Status)
				}
				if !w.Output {
					t.Errorf("the terminal does not show %q after the command; it holds:\n%s", c.Expect, w.Text)
				}
				ck := checks[c.Name]
				if got, err := os.ReadFile(ck.typed); err != nil || string(got) != ck.want {
					t.Errorf("the shell wrote %q (%v), want %q: the typed command did not reach it", got, err, ck.want)
				}
			}
			if !w.Disconnected {
				t.Errorf("Disconnect did not end the session in the page (status %q)", w.StatusAfter)
			}
		})
	}

	// Each tunnel's end, seen from each side. sshd names the agent's end
	// of each connection.
	target := "127.0.0.1:" + strconv.Itoa(sshd.Port)
	var agentPorts []int
	for _, m := range regexp.MustCompile(`Connection from 127\.0\.0\.1 port (\d+) on`).FindAllStringSubmatch(sshd.log.String(), -1) {
		p, _ := strconv.Atoi(m[1])
		agentPorts = append(agentPorts, p)
	}
	if len(agentPorts) != len(cases) {
		t.Errorf("sshd logged %d connections, want one a session (%d)", len(agentPorts), len(cases))
	}
	var ends []string
	var gone, conns int
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ends = ends[:0]
		for _, l := range agent.lines("port forwarding ended") {
			if strings.Contains(l, target) {
				ends = append(ends, l)
			}
		}
		sshdLog := sshd.log.String()
		gone = strings.Count(sshdLog, "Disconnected from user ") + strings.Count(sshdLog, "Connection closed by")
		conns = 0
		for _, p := range agentPorts {
			conns += established(t, sshd.Port, p)
		}
		if (len(ends) >= len(agentPorts) && gone >= len(agentPorts) && conns == 0) || time.Now().After(deadline) {
			break
		}
	}
	if len(ends) < len(agentPorts) {
		t.Errorf("our agent ended %d forwardings to %s, want %d: %q", len(ends), target, len(agentPorts), ends)
	}
	for _, l := range ends {
		if !strings.Contains(l, "clean=true") {
			t.Errorf("our agent's forwarding did not end cleanly: %q", l)
		}
	}
	if gone < len(agentPorts) {
		t.Errorf("sshd saw %d of %d clients go", gone, len(agentPorts))
	}
	if conns != 0 {
		t.Errorf("%d connections from the agent (ports %v) to sshd are still established", conns, agentPorts)
	}
	// The page also sends the agent a terminal tunnel request for the
	// same session (agent-redir-ws Start always does) that nobody pairs,
	// as with the C agent; our agent logs it as a relay that never paired.
	t.Logf("our agent on relays: %q", agent.lines("relay session"))
	want := "Ended tcp forwarding to " + target
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		n := 0
		for _, e := range srv.Events(t) {
			if strings.HasSuffix(fmt.Sprint(e["nodeid"]), node) && strings.Contains(fmt.Sprint(e["msg"]), want) {
				n++
			}
		}
		if n >= len(agentPorts) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("MeshCentral's event log has %d %q for the device, want %d", n, want, len(agentPorts))
		}
	}
}

// checkSFTP checks the SFTP session's outcome: the listing, the editor,
// the upload on disk (its bytes, and its owner the SSH account) and the
// download's bytes.
func checkSFTP(t *testing.T, w webSSHResult, c webSSHCfg, wantUID int, up, down []byte) {
	t.Helper()
	f := c.SFTP
	if !w.Connected {
		t.Fatalf("the Files tab did not reach \"Connected, SFTP\" (status %q)", w.Status)
	}
	if !w.Listed {
		t.Fatalf("the listing of %s lacks %s or %s: %q", f.Dir, f.Text.Name, f.Download.Name, w.Names)
	}
	if !w.EditorMatched {
		t.Errorf("the editor shows %q, want %q", w.EditorValue, f.Text.Content)
	}
	if !w.Uploaded {
		t.Errorf("the listing never showed %s with %d bytes", f.Upload.Name, f.Upload.Size)
	}
	path := filepath.Join(f.Dir, f.Upload.Name)
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, up) {
		t.Errorf("uploaded file on disk: %d bytes (%v), want the %d sent (same bytes: %v)", len(got), err, len(up), bytes.Equal(got, up))
	}
	if fi, err := os.Stat(path); err == nil {
		if uid := int(fi.Sys().(*syscall.Stat_t).Uid); uid != wantUID {
			t.Errorf("uploaded file owned by uid %d, want %d: not written by the SSH account's sftp session", uid, wantUID)
		}
	}
	if w.DownloadError != "" || w.DownloadPath == "" {
		t.Fatalf("download of %s: %s", f.Download.Name, w.DownloadError)
	}
	if got, err := os.ReadFile(w.DownloadPath); err != nil || !bytes.Equal(got, down) {
		t.Errorf("downloaded %d bytes (%v), want the %d on disk (same bytes: %v)", len(got), err, len(down), bytes.Equal(got, down))
	}
}
