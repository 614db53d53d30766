// Command probe replays issue 20's security probe against a server-lite it
// builds from a source tree and prints the figures: admin write latency
// during a tag flood, `nodes` latency, database size and RSS with agents
// reporting huge sysinfo/netinfo (and the size after removing them and
// restarting), and login attempts per minute with wrong passwords.
//
//	go run ./interop/cmd/probe                   # this tree
//	go run ./interop/cmd/probe -src /work/main   # another tree (before/after)
//
// Everything runs on loopback, with simulated agents (internal/simagent)
// and control.ashx requests as meshctrl sends them.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meshgo/meshagent/internal/simagent"
)

func main() {
	src := flag.String("src", ".", "repository root to build server-lite from")
	tags := flag.Int("tags", 100_000, "tags per flooding changedevice request")
	floods := flag.Int("floods", 3, "concurrent flooding requests")
	bloat := flag.Int("bloat", 5, "agents reporting huge sysinfo/netinfo")
	bloatMB := flag.Int("bloat-mb", 15, "MiB of sysinfo and of netinfo per bloating agent")
	loginFor := flag.Duration("login-for", 15*time.Second, "how long to send wrong passwords")
	flag.Parse()
	if err := run(*src, *tags, *floods, *bloat, *bloatMB, *loginFor); err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

type server struct {
	bin, dir, addr, pass string
	cmd                  *exec.Cmd
}

func (s *server) url() string { return "wss://" + s.addr }
func (s *server) db() int64 {
	st, err := os.Stat(filepath.Join(s.dir, "server-lite.db"))
	if err != nil {
		return -1
	}
	return st.Size()
}

func (s *server) rssMB() float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	return -1
}

func (s *server) start() error {
	s.cmd = exec.Command(s.bin, "--data", s.dir, "--listen", s.addr)
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	s.cmd.Stderr = io.Discard
	if err := s.cmd.Start(); err != nil {
		return err
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			l := strings.TrimSpace(sc.Text())
			if p, ok := strings.CutPrefix(l, "password:"); ok && s.pass == "" {
				s.pass = strings.TrimSpace(p)
			}
			if strings.HasPrefix(l, ".msh file:") || strings.HasPrefix(l, "(shown only now") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			select {
			case <-ready:
			case <-time.After(2 * time.Second):
			}
			time.Sleep(200 * time.Millisecond)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("server-lite did not start")
}

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

func run(src string, nTags, nFloods, nBloat, bloatMB int, loginFor time.Duration) error {
	tmp, err := os.MkdirTemp("", "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	s := &server{bin: filepath.Join(tmp, "server-lite"), dir: filepath.Join(tmp, "data")}
	b := exec.Command("go", "build", "-o", s.bin, "./server-lite")
	b.Dir, b.Stdout, b.Stderr = src, os.Stderr, os.Stderr
	if err := b.Run(); err != nil {
		return fmt.Errorf("build server-lite in %s: %w", src, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	ln.Close()
	if err := s.start(); err != nil {
		return err
	}
	defer func() { s.stop() }()
	if s.pass == "" {
		return errors.New("no administrator password printed")
	}
	rev, _ := exec.Command("git", "-C", src, "log", "--oneline", "-1").Output()
	fmt.Printf("server-lite from %s (%s)\n", src, strings.TrimSpace(string(rev)))

	admin, err := login(s.url(), "admin", s.pass)
	if err != nil {
		return err
	}
	if r := admin.do(map[string]any{"action": "adduser", "username": "mallory", "pass": "mallory-pw"}); r["result"] != "ok" {
		return fmt.Errorf("adduser: %v", r)
	}
	mal, err := login(s.url(), "mallory", "mallory-pw")
	if err != nil {
		return err
	}
	r := mal.do(map[string]any{"action": "createmesh", "meshname": "mallory", "meshtype": 2})
	malGroup, _ := r["meshid"].(string)
	if malGroup == "" {
		return fmt.Errorf("createmesh: %v", r)
	}
	ms, err := fetchMsh(s.addr, malGroup)
	if err != nil {
		return err
	}
	def, err := readMshFile(filepath.Join(s.dir, "meshagent.msh"))
	if err != nil {
		return err
	}
	floodNode, err := enroll(ms, "flood", nil)
	if err != nil {
		return err
	}
	victim, err := enroll(def, "victim", nil)
	if err != nil {
		return err
	}
	time.Sleep(500 * time.Millisecond)
	floodID, victimID := nodeOf(admin, mal, "flood"), nodeOf(admin, admin, "victim")

	// 1. Tag flood.
	tags := make([]string, nTags)
	for i := range tags {
		tags[i] = "t" + strconv.Itoa(i)
	}
	var wg sync.WaitGroup
	floodStart := time.Now()
	floodDur := make([]time.Duration, nFloods)
	floodRes := make([]string, nFloods)
	for i := range nFloods {
		c, err := login(s.url(), "mallory", "mallory-pw")
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			r := c.doWait(map[string]any{"action": "changedevice", "nodeid": floodID, "tags": tags}, 15*time.Minute)
			floodDur[i], floodRes[i] = time.Since(t0), truncate(fmt.Sprint(r["result"]), 40)
		}()
	}
	time.Sleep(time.Second) // the floods are decoded and being applied
	t0 := time.Now()
	admin.do(map[string]any{"action": "changedevice", "nodeid": victimID, "name": "renamed"})
	rename := time.Since(t0)
	t0 = time.Now()
	admin.do(map[string]any{"action": "adduser", "username": "bob", "pass": "bob-pw"})
	adduser := time.Since(t0)
	wg.Wait()
	fmt.Printf("tag flood (%d × %d tags): admin rename %v, adduser %v; flood requests %v (result %q), all done in %v\n",
		nFloods, nTags, rnd(rename), rnd(adduser), rndAll(floodDur), floodRes[0], rnd(time.Since(floodStart)))

	// 2. Bloating agents.
	nodesBefore := nodesLatency(admin)
	dbBefore, rssBefore := s.db(), s.rssMB()
	big := strings.Repeat("A", bloatMB<<20)
	ann := &simagent.Announce{
		CoreInfo:    []byte(`{"action":"coreinfo","value":"probe core","caps":14}`),
		NetInfo:     []byte(`{"action":"netinfo","netif2":{"eth0":[{"mac":"00:11:22:33:44:55","address":"10.0.0.9","pad":"` + big + `"}]}}`),
		SysInfo:     []byte(`{"action":"sysinfo","data":{"hash":"bloat","hardware":{"pad":"` + big + `"}}}`),
		SysInfoHash: "bloat", // sent, since the server does not know this hash yet
	}
	accepted := 0
	for i := range nBloat {
		if _, err := enroll(ms, fmt.Sprintf("bloat%d", i), ann); err == nil {
			accepted++
		} else {
			fmt.Printf("  bloating agent %d: %v\n", i, truncate(err.Error(), 80))
		}
	}
	time.Sleep(5 * time.Second) // queued writes
	nodesAfter := nodesLatency(admin)
	bob, err := login(s.url(), "bob", "bob-pw")
	if err != nil {
		return err
	}
	nodesBob := nodesLatency(bob)
	dbAfter, rssAfter := s.db(), s.rssMB()
	fmt.Printf("bloat (%d agents × %d MiB sysinfo + netinfo, %d got through the handshake): nodes %v -> %v (user who sees none: %v); database %.1f -> %.1f MB; RSS %.0f -> %.0f MB\n",
		nBloat, bloatMB, accepted, rnd(nodesBefore), rnd(nodesAfter), rnd(nodesBob), mb(dbBefore), mb(dbAfter), rssBefore, rssAfter)
	var ids []any
	for i := range nBloat {
		if id := nodeOf(admin, mal, fmt.Sprintf("bloat%d", i)); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) > 0 {
		mal.do(map[string]any{"action": "removedevices", "nodeids": ids})
	}
	admin.close()
	mal.close()
	bob.close()
	victim.WS.Close()
	floodNode.WS.Close()
	s.stop()
	if err := s.start(); err != nil {
		return err
	}
	fmt.Printf("after removing the bloating devices and restarting: database %.1f MB\n", mb(s.db()))

	// 3. Login guessing.
	var checked, refused, other atomic.Int64
	stop := time.Now().Add(loginFor)
	start := time.Now()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stop) {
				_, msg, err := tryLogin(s.url(), "admin", "wrong")
				switch {
				case err != nil:
					other.Add(1)
				case msg == "banned-1":
					refused.Add(1)
				case strings.HasPrefix(msg, "noauth"):
					checked.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Minutes()
	_, msg, _ := tryLogin(s.url(), "admin", s.pass)
	if msg == "" {
		msg = "accepted"
	}
	fmt.Printf("login guessing (8 parallel x-meshauth clients, %v): %.0f attempts/min, %.0f passwords checked/min, %.0f refused by a throttle/min; right password afterwards: %s\n",
		loginFor, float64(checked.Load()+refused.Load()+other.Load())/el, float64(checked.Load())/el, float64(refused.Load())/el, msg)
	return nil
}

func mb(n int64) float64 { return float64(n) / (1 << 20) }

func rnd(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

func rndAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = rnd(d)
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func nodesLatency(c *ctl) time.Duration {
	var ds []time.Duration
	for range 5 {
		t0 := time.Now()
		c.do(map[string]any{"action": "nodes"})
		ds = append(ds, time.Since(t0))
	}
	slices.Sort(ds)
	return ds[2]
}

// nodeOf finds a device by name among those c can see.
func nodeOf(_, c *ctl, name string) string {
	r := c.do(map[string]any{"action": "nodes"})
	nodes, _ := r["nodes"].(map[string]any)
	for _, l := range nodes {
		arr, _ := l.([]any)
		for _, n := range arr {
			m, _ := n.(map[string]any)
			if m["rname"] == name || m["name"] == name {
				id, _ := m["_id"].(string)
				return id
			}
		}
	}
	return ""
}

type mshInfo struct {
	url              string
	serverID, meshID [48]byte
}

func parseMsh(b []byte) (mshInfo, error) {
	var m mshInfo
	kv := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(l), "="); ok {
			kv[k] = v
		}
	}
	m.url = kv["MeshServer"]
	sid, err1 := hex.DecodeString(kv["ServerID"])
	mid, err2 := hex.DecodeString(strings.TrimPrefix(kv["MeshID"], "0x"))
	if err1 != nil || err2 != nil || len(sid) != 48 || len(mid) != 48 || m.url == "" {
		return m, errors.New("not a usable .msh")
	}
	copy(m.serverID[:], sid)
	copy(m.meshID[:], mid)
	return m, nil
}

func readMshFile(p string) (mshInfo, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return mshInfo{}, err
	}
	return parseMsh(b)
}

// fetchMsh downloads a group's .msh without logging in, as anyone can.
func fetchMsh(addr, groupID string) (mshInfo, error) {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Get("https://" + addr + "/meshsettings?id=" + strings.TrimPrefix(groupID, "mesh//"))
	if err != nil {
		return mshInfo{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return parseMsh(b)
}

func enroll(m mshInfo, host string, ann *simagent.Announce) (*simagent.Conn, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	id, err := simagent.NewIdentity(key)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := simagent.Connect(ctx, simagent.Options{URL: m.url, ServerID: m.serverID, MeshID: m.meshID, Identity: id, Hostname: host, Announce: ann, Timeout: 60 * time.Second})
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			if _, _, err := c.WS.ReadMessage(); err != nil {
				return
			}
		}
	}()
	return c, nil
}

// ctl is a control.ashx session.
type ctl struct {
	ws   *websocket.Conn
	mu   sync.Mutex
	wait map[string]chan map[string]any
	seq  atomic.Int64
}

func dial(url string, user, pass string) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("X-Meshauth", base64.StdEncoding.EncodeToString([]byte(user))+","+base64.StdEncoding.EncodeToString([]byte(pass)))
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, HandshakeTimeout: 20 * time.Second}
	ws, _, err := d.Dial(url+"/control.ashx", h)
	return ws, err
}

// tryLogin returns the session or the close msg.
func tryLogin(url, user, pass string) (*websocket.Conn, string, error) {
	ws, err := dial(url, user, pass)
	if err != nil {
		return nil, "", err
	}
	ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, "", err
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	if m["action"] == "close" {
		ws.Close()
		return nil, fmt.Sprint(m["msg"]), nil
	}
	ws.Close()
	return nil, "", nil
}

func login(url, user, pass string) (*ctl, error) {
	ws, err := dial(url, user, pass)
	if err != nil {
		return nil, err
	}
	c := &ctl{ws: ws, wait: map[string]chan map[string]any{}}
	go func() {
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				c.mu.Lock()
				for _, ch := range c.wait {
					close(ch)
				}
				c.wait = map[string]chan map[string]any{}
				c.mu.Unlock()
				return
			}
			var m map[string]any
			if json.Unmarshal(b, &m) != nil {
				continue
			}
			id, _ := m["responseid"].(string)
			c.mu.Lock()
			ch := c.wait[id]
			delete(c.wait, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- m
			}
		}
	}()
	return c, nil
}

func (c *ctl) do(m map[string]any) map[string]any { return c.doWait(m, 3*time.Minute) }

func (c *ctl) doWait(m map[string]any, timeout time.Duration) map[string]any {
	id := "p" + strconv.FormatInt(c.seq.Add(1), 10)
	m["responseid"] = id
	ch := make(chan map[string]any, 1)
	c.mu.Lock()
	c.wait[id] = ch
	c.mu.Unlock()
	b, _ := json.Marshal(m)
	c.mu.Lock()
	err := c.ws.WriteMessage(websocket.TextMessage, b)
	c.mu.Unlock()
	if err != nil {
		return map[string]any{"result": "write: " + err.Error()}
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return map[string]any{"result": "session closed"}
		}
		return r
	case <-time.After(timeout):
		return map[string]any{"result": "no reply"}
	}
}

func (c *ctl) close() { c.ws.Close() }
