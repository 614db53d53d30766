//go:build linux

// Command loadgen connects many simulated agents to server-lite (or to any
// MeshCentral-compatible server given its .msh and process id) over
// loopback and prints, for the full and the skip handshake path:
// handshakes per second, server CPU seconds per 1,000 handshakes (from
// /proc/<pid>/stat) and server RSS per connected agent.
//
// It is a measuring program, not a test: figures drift with the machine's
// load, so compare runs side by side.
//
//	go run ./interop/cmd/loadgen -n 1000
//	go run ./interop/cmd/loadgen -n 10000 -c 64
//	go run ./interop/cmd/loadgen -msh meshagent.msh -pid 1234 -n 1000   # an already running server
//	go run ./interop/cmd/loadgen -n 5000 -restart   # and the reconnect storm after a restart
//	go run ./interop/cmd/loadgen -n 19000 -only skip -restart -key-bits 1024
//
// Agents connect from loopback source addresses 127.0.1.1 and up
// (-sources; all of 127.0.0.0/8 is loopback on Linux), so that ephemeral
// ports (~28,000 per source address) do not run out, and loadgen raises
// RLIMIT_NOFILE for itself and the server it starts: soft to hard, and the
// hard limit to what -n needs when the process has CAP_SYS_RESOURCE. It
// prints what it did and warns when the limit stays too low: that limit,
// not memory or ports, decides the largest -n a machine takes.
//
// With -restart, after the connect phase every agent stays connected,
// server-lite is interrupted and started again on the same data, and the
// agents reconnect on our agent's schedule (proto/reconnect; or the old one
// with -legacy-backoff). loadgen prints when all were back, time offline per
// agent, the new server's CPU until then and the storm's shape.
//
// Agent identities are RSA-3072 like the C agent's. Generating 100,000
// RSA-3072 keys would take days, so identities are derived: a pool of
// 1536-bit primes (cached in -keys) gives a modulus per pair, and each
// modulus many distinct public keys by varying the public exponent over
// small odd values coprime with φ(n) (65537 plus values with at most 4 bits
// set, all 17 bits long). Each has its own node id; the server's
// verification cost is that of a 17-bit exponent with up to 4 bits set, a
// few percent above e = 65537. Certificates (self-signed, one RSA-3072
// signature each: about 5 minutes of CPU for 100,000) are cached too;
// -keys-only fills the cache and exits.
package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/meshgo/meshagent/agent/sysinfo"
	"github.com/meshgo/meshagent/internal/simagent"
	"github.com/meshgo/meshagent/proto/handshake"
)

// config is one load run.
type config struct {
	n, conc    int
	keysDir    string
	mshPath    string
	pid        int
	oneSource  bool
	serverBin  string
	serverArgs []string
	serverCPUs int
	only       string
	announce   bool
	tls12      bool
	keysOnly   bool
	sources    int
	restart    bool
	keyBits    int
	storm      stormConfig
}

func main() {
	var c config
	flag.IntVar(&c.n, "n", 1000, "number of simulated agents")
	flag.IntVar(&c.conc, "c", 4*runtime.NumCPU(), "concurrent handshakes")
	flag.StringVar(&c.keysDir, "keys", filepath.Join(os.TempDir(), "meshgo-loadgen-keys"), "cache of agent identities")
	flag.StringVar(&c.mshPath, "msh", "", "use an already running server: its .msh")
	flag.IntVar(&c.pid, "pid", 0, "with -msh: the server's process id; CPU and RSS are summed over it and its descendants")
	flag.BoolVar(&c.oneSource, "one-source", false, "connect from 127.0.0.1 only (servers that allow no other loopback address)")
	flag.StringVar(&c.serverBin, "server", "", "server-lite binary to start (default: go build ./server-lite)")
	flag.IntVar(&c.serverCPUs, "server-cpus", 0, "GOMAXPROCS for the started server-lite (0 = all), to see throughput grow with cores")
	flag.StringVar(&c.only, "only", "", `run one phase: "full" or "skip" (skip trusts the server's TLS hash directly)`)
	flag.BoolVar(&c.announce, "announce", false, "after the core check, send coreinfo, netinfo and (when the server's hash differs) sysinfo as our agent's core does, with this machine's real system information: the store work of a real reconnect")
	flag.BoolVar(&c.tls12, "tls12", false, "agents offer at most TLS 1.2: prices the skip path with TLS 1.2 session-ticket resumption, which needs no key exchange (and gives resumed sessions no forward secrecy of their own)")
	flag.BoolVar(&c.keysOnly, "keys-only", false, "generate and cache the -n identities, then exit (certificates cost one RSA-3072 signature each)")
	flag.IntVar(&c.sources, "sources", 0, "loopback source addresses 127.0.1.1.. to spread agents over (0: one per 50 agents, at least 4): each address has its own ~28,000 ephemeral ports, and server-lite limits pending handshakes per address")
	flag.IntVar(&c.keyBits, "key-bits", 3072, "agent RSA key size; 3072 is the C agent's. Smaller keys (e.g. 1024) cut loadgen's own signing CPU when 2 CPUs must simulate 100,000 agents; the server then verifies shorter signatures and stores shorter certificates, so calibrate against 3072 at a smaller -n")
	flag.BoolVar(&c.restart, "restart", false, "after the connect phase, keep every agent connected, restart server-lite and measure the reconnect storm (agents use our agent's backoff)")
	flag.DurationVar(&c.storm.spread, "spread", 5*time.Second, "with -restart: agents' first retry after losing the connection is spread over this (agent/core's BackoffSpread default)")
	flag.DurationVar(&c.storm.limit, "storm-limit", 10*time.Minute, "with -restart: stop waiting for all agents after this")
	flag.BoolVar(&c.storm.legacy, "legacy-backoff", false, "with -restart: agents retry on agent/core's schedule before proto/reconnect ([d, 1.5d), d doubling from 1 s; Retry-After ignored), to compare")
	serverArgs := flag.String("server-args", "", "extra arguments for the started server-lite, space separated (e.g. -cpuprofile /tmp/cpu.out)")
	flag.Parse()
	c.serverArgs = strings.Fields(*serverArgs)
	if err := run(c); err != nil {
		fatal(err)
	}
}

func run(c config) error {
	raiseFileLimit(c.n)
	if c.keyBits == 0 {
		c.keyBits = 3072
	}
	ids, err := loadIdentities(c.keysDir, c.n, c.keyBits)
	if err != nil {
		return err
	}
	if c.keysOnly {
		return nil
	}
	if c.sources <= 0 {
		// Real agents come from many addresses; server-lite limits pending
		// handshakes per address (32), which a few shared addresses would
		// make the bottleneck of a storm.
		c.sources = max(4, (c.n+49)/50)
	}
	var srv *liteServer
	if c.mshPath == "" {
		if srv, err = startServer(c.serverBin, c.serverArgs, c.serverCPUs); err != nil {
			return err
		}
		defer func() { srv.stop(); srv.remove() }()
		c.mshPath, c.pid = srv.msh(), srv.pid()
		gcSignal = true
	} else if c.restart {
		return errors.New("-restart needs the server-lite that loadgen starts (no -msh)")
	}
	if c.pid == 0 {
		return errors.New("-pid is required with -msh")
	}
	m, err := readMsh(c.mshPath)
	if err != nil {
		return err
	}
	fmt.Printf("server pid %d at %s, %d agents, %d concurrent, %d CPUs, GOMAXPROCS %d\n", c.pid, m.url, c.n, c.conc, runtime.NumCPU(), runtime.GOMAXPROCS(0))

	settle(c.pid)
	fl := rsaFloor(ids[0].Key)
	fmt.Printf("RSA-3072 floor on this machine now, CPU per operation: sign %.2f ms, verify %.3f ms (crypto/rsa's verify %.3f ms);\n", ms(fl.sign), ms(fl.verify), ms(fl.stdVerify))
	fmt.Printf("  with all %d CPUs busy: sign %.2f ms, verify %.3f ms (as in a phase, where agents and server share the CPUs)\n", runtime.NumCPU(), ms(fl.busySign), ms(fl.busyVerify))
	rss0 := rssKB(c.pid)
	sessions := tls.NewLRUClientSessionCache(16)
	var announce *simagent.Announce
	if c.announce {
		if announce, err = announcement(); err != nil {
			return err
		}
		fmt.Printf("agents announce themselves: coreinfo %d, netinfo %d, sysinfo %d bytes\n", len(announce.CoreInfo), len(announce.NetInfo), len(announce.SysInfo))
	}
	opts := func(i int, trusted []byte) simagent.Options {
		o := simagent.Options{URL: m.url, ServerID: m.serverID, MeshID: m.meshID, Identity: ids[i], Trusted: trusted,
			Hostname: fmt.Sprintf("sim%05d", i), TLSSessions: sessions, Announce: announce}
		if c.tls12 {
			o.TLSMaxVersion = tls.VersionTLS12
		}
		if !c.oneSource {
			o.LocalAddr = &net.TCPAddr{IP: sourceAddr(i, c.sources)}
		}
		return o
	}

	conns := make([]*simagent.Conn, c.n)
	trust := make([][]byte, c.n)
	if c.only != "skip" {
		fullPhase(c.pid, c.n, c.conc, opts, conns, rss0, fl)
		for i, cn := range conns {
			if cn != nil {
				trust[i] = cn.Trust
				cn.WS.Close()
			}
		}
	} else {
		ws, h, err := simagent.Dial(context.Background(), m.url, nil)
		if err != nil {
			return err
		}
		ws.Close()
		for i := range trust {
			trust[i] = h[:]
		}
	}
	if c.only == "full" {
		return nil
	}
	conns = skipPhase(c.pid, c.n, c.conc, opts, trust, fl, c.restart)
	if c.restart {
		return stormPhase(srv, conns, opts, trust, c.storm)
	}
	return nil
}

func fullPhase(pid, n, conc int, opts func(int, []byte) simagent.Options, conns []*simagent.Conn, rss0 mem, fl floor) {
	// Full path: no stored trust, a fresh TLS handshake each.
	full := phase(pid, n, conc, func(i int) error {
		o := opts(i, nil)
		o.TLSSessions = nil
		c, err := simagent.Connect(context.Background(), o)
		if err == nil {
			conns[i] = c
		}
		return err
	})
	settle(pid)
	rssFull := rssKB(pid)
	report("full path", full, rss0, rssFull, n)
	if full.ok > 0 {
		per := ms(full.cpu) / float64(full.ok)
		fmt.Printf("  ratio to the floor (1 sign + 1 verify): %.2fx busy, %.2fx idle\n", per/ms(fl.busySign+fl.busyVerify), per/ms(fl.sign+fl.verify))
	}

}

// skipPhase reconnects everyone with trust and TLS session resumption.
// With keep it returns the connections open instead of measuring the
// server after everyone left.
func skipPhase(pid, n, conc int, opts func(int, []byte) simagent.Options, trust [][]byte, fl floor, keep bool) []*simagent.Conn {
	conns := make([]*simagent.Conn, n)
	settle(pid)
	// Prime the session cache with one connection.
	if c, err := simagent.Connect(context.Background(), opts(0, trust[0])); err == nil {
		c.WS.Close()
	}
	settle(pid)
	rss1 := rssKB(pid)
	var resumed atomic.Int64
	skip := phase(pid, n, conc, func(i int) error {
		c, err := simagent.Connect(context.Background(), opts(i, trust[i]))
		if err != nil {
			return err
		}
		if !c.Skip {
			return errors.New("server did not take the skip path")
		}
		if tc, ok := c.WS.NetConn().(*tls.Conn); ok && tc.ConnectionState().DidResume {
			resumed.Add(1)
		}
		if keep {
			// Read from now on, as an agent does: unanswered pings during
			// a long connect phase make the server drop the agent.
			c = watch(c)
		}
		conns[i] = c
		return nil
	})
	settle(pid)
	rssSkip := rssKB(pid)
	report("skip path", skip, rss1, rssSkip, n)
	if skip.ok > 0 {
		per := ms(skip.cpu) / float64(skip.ok)
		fmt.Printf("  ratio to the floor (1 verify): %.2fx busy, %.2fx idle\n", per/ms(fl.busyVerify), per/ms(fl.verify))
	}
	fmt.Printf("  TLS sessions resumed: %d of %d\n", resumed.Load(), skip.ok)
	if keep {
		return conns
	}
	for _, c := range conns {
		if c != nil {
			c.WS.Close()
		}
	}
	// Does the server give the memory back once everyone has left?
	time.Sleep(2 * time.Second)
	settle(pid)
	after := rssKB(pid)
	fmt.Printf("  after all disconnected: server RSS %.1f MB (anonymous %.1f MB)\n", float64(after.rss)/1024, float64(after.anon)/1024)
	return nil
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func selfCPU() time.Duration {
	var r syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}

// announcement builds the messages a core sends after connecting from this
// machine's system information (agent/sysinfo, as our agent reports it).
func announcement() (*simagent.Announce, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ci := sysinfo.GetCoreInfo(ctx)
	ni, err := sysinfo.NetInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("netinfo: %w", err)
	}
	si, err := sysinfo.SysInfo(ctx, map[string]string{"compileTime": "loadgen"})
	if err != nil {
		return nil, fmt.Errorf("sysinfo: %w", err)
	}
	a := &simagent.Announce{SysInfoHash: fmt.Sprint(si["hash"])}
	for _, m := range []struct {
		dst *[]byte
		v   any
	}{
		{&a.CoreInfo, map[string]any{"action": "coreinfo", "value": "loadgen", "caps": 14, "osdesc": ci.OSDesc, "root": ci.Root, "users": ci.Users}},
		{&a.NetInfo, map[string]any{"action": "netinfo", "netif2": ni}},
		{&a.SysInfo, map[string]any{"action": "sysinfo", "data": si}},
	} {
		if *m.dst, err = json.Marshal(m.v); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// floor is the CPU cost of the RSA work a server cannot avoid: one
// RSA-3072 PKCS#1 v1.5 SHA-384 signature (full path) and one verification
// of an agent signature (both paths).
type floor struct {
	sign, verify         time.Duration // one at a time, the rest of the machine idle
	busySign, busyVerify time.Duration // every CPU doing the same work at once
	stdVerify            time.Duration // crypto/rsa's verification, one at a time
}

// rsaFloor measures the floor in this process, now. The busy figures are
// what a handshake phase sees: loadgen's agents sign on the same CPUs as the
// server, and CPU time per operation grows when both hyperthreads of a core
// work (about 1.3x here), so the phase ratios use them; both are printed.
// Verification is the handshake package's (what server-lite runs).
func rsaFloor(agentKey *rsa.PrivateKey) floor {
	k, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		return floor{}
	}
	var h, nonce [48]byte
	sig, _ := handshake.SignAgent(agentKey, h, nonce, nonce)
	sign := func() { rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA384, h[:]) }
	verify := func() { handshake.VerifyAgent(&agentKey.PublicKey, sig, h, nonce, nonce) }
	digest := sha512.Sum384(h[:])
	stdSig, _ := rsa.SignPKCS1v15(rand.Reader, agentKey, crypto.SHA384, digest[:])
	std := func() { rsa.VerifyPKCS1v15(&agentKey.PublicKey, crypto.SHA384, digest[:], stdSig) }
	return floor{
		sign: perOp(1, 30, sign), verify: perOp(1, 300, verify),
		busySign: perOp(runtime.NumCPU(), 30, sign), busyVerify: perOp(runtime.NumCPU(), 300, verify),
		stdVerify: perOp(1, 300, std),
	}
}

// perOp runs fn n times on each of par goroutines and returns this
// process's CPU time per call.
func perOp(par, n int, fn func()) time.Duration {
	c := selfCPU()
	var wg sync.WaitGroup
	for g := 0; g < par; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				fn()
			}
		}()
	}
	wg.Wait()
	return (selfCPU() - c) / time.Duration(par*n)
}

type result struct {
	ok, failed int
	wall       time.Duration
	cpu        time.Duration
	firstErr   error
}

// phase runs fn for 0..n-1 with conc workers and measures the server's CPU.
func phase(pid, n, conc int, fn func(i int) error) result {
	var next atomic.Int64
	var ok, failed atomic.Int64
	var mu sync.Mutex
	var firstErr error
	cpu0 := cpuTime(pid)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					failed.Add(1)
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				} else {
					ok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	// Include the server's trailing work (batched store writes).
	time.Sleep(300 * time.Millisecond)
	return result{ok: int(ok.Load()), failed: int(failed.Load()), wall: wall, cpu: cpuTime(pid) - cpu0, firstErr: firstErr}
}

func report(name string, r result, before, after mem, n int) {
	fmt.Printf("%s: %d ok, %d failed in %.2fs\n", name, r.ok, r.failed, r.wall.Seconds())
	if r.firstErr != nil {
		fmt.Printf("  first error: %v\n", r.firstErr)
	}
	if r.ok == 0 {
		return
	}
	fmt.Printf("  handshakes/s:                    %.0f\n", float64(r.ok)/r.wall.Seconds())
	fmt.Printf("  server CPU per 1,000 handshakes: %.2f s (%.3f ms each)\n", r.cpu.Seconds()*1000/float64(r.ok), float64(r.cpu.Microseconds())/1000/float64(r.ok))
	fmt.Printf("  server RSS: %.1f MB -> %.1f MB, %.1f kB per connected agent (anonymous memory: %.1f kB)\n",
		float64(before.rss)/1024, float64(after.rss)/1024, float64(after.rss-before.rss)/float64(r.ok), float64(after.anon-before.anon)/float64(r.ok))
}

// cpuTime sums utime+stime from /proc/<pid>/stat over pid and its
// descendants (MeshCentral signs in helper processes). A descendant that
// exits between samples takes its CPU with it; servers measured here keep
// theirs.
func cpuTime(pid int) time.Duration {
	var total int64
	for _, p := range tree(pid) {
		if f := statFields(p); len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			total += ut + st
		}
	}
	return time.Duration(total) * time.Second / 100 // CLK_TCK = 100 on Linux
}

// statFields returns the fields of /proc/<pid>/stat after the command name
// (so index 1 is the parent pid, 11 utime, 12 stime).
func statFields(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return nil
	}
	return strings.Fields(s[i+2:])
}

// tree returns pid and all its descendants.
func tree(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := statFields(p); len(f) > 1 {
			pp, _ := strconv.Atoi(f[1])
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// gcSignal makes rssKB ask server-lite to collect garbage first.
var gcSignal bool

// mem is a process tree's resident memory in kB: all of it, and the
// anonymous part (heap and stacks, without mapped files such as the
// executable and the database).
type mem struct{ rss, anon int64 }

func rssKB(pid int) mem {
	if gcSignal {
		syscall.Kill(pid, syscall.SIGUSR1)
		time.Sleep(time.Second)
	}
	var total mem
	for _, p := range tree(pid) {
		m := rssOne(p)
		total.rss += m.rss
		total.anon += m.anon
	}
	return total
}

func rssOne(pid int) mem {
	var m mem
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for _, field := range []struct {
			prefix string
			dst    *int64
		}{{"VmRSS:", &m.rss}, {"RssAnon:", &m.anon}} {
			if v, ok := strings.CutPrefix(sc.Text(), field.prefix); ok {
				*field.dst, _ = strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			}
		}
	}
	return m
}

// settle waits until the server has been idle for a moment.
func settle(pid int) {
	last := cpuTime(pid)
	for i := 0; i < 50; i++ {
		time.Sleep(300 * time.Millisecond)
		c := cpuTime(pid)
		if c-last < 20*time.Millisecond {
			return
		}
		last = c
	}
}

// sourceAddr is agent i's source address among k: 127.0.1.1 and up,
// skipping .0 and .255 of each /24. The whole of 127.0.0.0/8 is loopback on
// Linux, and every address has its own ephemeral port range, so k addresses
// hold k times ~28,000 connections (ip_local_port_range) to one server
// port, TIME_WAIT of refused attempts included.
func sourceAddr(i, k int) net.IP {
	j := i % k
	return net.IPv4(127, 0, byte(1+j/254), byte(1+j%254))
}

// raiseFileLimit lifts RLIMIT_NOFILE to what n agents need: loadgen holds a
// socket per agent and the server-lite it starts (which inherits the
// limit) another, plus files. The soft limit goes up to the hard one; the
// hard one too when loadgen may (root or CAP_SYS_RESOURCE, up to
// /proc/sys/fs/nr_open). It says what it did.
func raiseFileLimit(n int) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return
	}
	want := uint64(n) + 512
	before := l
	if l.Max < want {
		l.Max = want
		if b, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
			if m, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && l.Max > m {
				l.Max = m
			}
		}
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		// Not allowed to raise the hard limit: the soft one at least.
		l = before
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	if l.Cur != before.Cur {
		fmt.Printf("open files limit (RLIMIT_NOFILE) raised from %d/%d to %d/%d (soft/hard) for loadgen and the server it starts\n", before.Cur, before.Max, l.Cur, l.Max)
	}
	if l.Cur < want {
		fmt.Printf("warning: open files limit %d (hard %d) is below the %d that %d agents need; raising the hard limit needs CAP_SYS_RESOURCE\n", l.Cur, l.Max, want, n)
	}
}

type mshInfo struct {
	url      string
	serverID [48]byte
	meshID   [48]byte
}

func readMsh(path string) (mshInfo, error) {
	var m mshInfo
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
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
		return m, fmt.Errorf("%s: not a usable .msh", path)
	}
	copy(m.serverID[:], sid)
	copy(m.meshID[:], mid)
	return m, nil
}

// liteServer is a server-lite that loadgen started and may restart on the
// same data directory and address.
type liteServer struct {
	bin, dir, addr string
	args           []string
	env            []string
	cmd            *exec.Cmd
	logf           *os.File
	done           chan struct{}
}

// startServer builds and starts server-lite with a fresh data directory on
// a free loopback port.
func startServer(bin string, extra []string, cpus int) (*liteServer, error) {
	dir, err := os.MkdirTemp("", "loadgen-server-")
	if err != nil {
		return nil, err
	}
	if bin == "" {
		bin = filepath.Join(dir, "server-lite")
		b := exec.Command("go", "build", "-o", bin, "./server-lite")
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return nil, fmt.Errorf("build server-lite (run from the repository root): %w", err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &liteServer{bin: bin, dir: dir, addr: ln.Addr().String(), args: extra, env: os.Environ()}
	ln.Close()
	if cpus > 0 {
		s.env = append(s.env, fmt.Sprintf("GOMAXPROCS=%d", cpus))
	}
	if s.logf, err = os.Create(filepath.Join(dir, "server.log")); err != nil {
		return nil, err
	}
	if err := s.start(); err != nil {
		s.remove()
		return nil, err
	}
	return s, nil
}

func (s *liteServer) msh() string { return filepath.Join(s.dir, "data", "meshagent.msh") }
func (s *liteServer) pid() int    { return s.cmd.Process.Pid }

// start runs server-lite and waits until it accepts connections.
func (s *liteServer) start() error {
	s.cmd = exec.Command(s.bin, append([]string{"--data", filepath.Join(s.dir, "data"), "--listen", s.addr}, s.args...)...)
	s.cmd.Stdout, s.cmd.Stderr, s.cmd.Env = s.logf, s.logf, s.env
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	for i := 0; i < 1200; i++ {
		if c, err := net.Dial("tcp", s.addr); err == nil {
			c.Close()
			if _, err := os.Stat(s.msh()); err == nil {
				return nil
			}
		}
		select {
		case <-s.done:
			return fmt.Errorf("server-lite exited at start; see %s", s.logf.Name())
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.stop()
	return errors.New("server-lite did not start")
}

// stop interrupts server-lite and waits for it to exit (killing it after a
// minute).
func (s *liteServer) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-s.done
	}
}

func (s *liteServer) remove() {
	s.logf.Close()
	os.RemoveAll(s.dir)
}

// Identities ------------------------------------------------------------

// exponents returns odd 17-bit exponents with at most 4 bits set, 65537 first.
func exponents() []int {
	out := []int{65537}
	for a := 1; a < 16; a++ {
		out = append(out, 1<<16|1<<a|1)
	}
	for a := 1; a < 16; a++ {
		for b := a + 1; b < 16; b++ {
			out = append(out, 1<<16|1<<a|1<<b|1)
		}
	}
	return out
}

// loadIdentities returns n identities, generating and caching what is
// missing. Keys come from a cached pool of 1536-bit primes: every pair of
// pool primes is a 3072-bit modulus, and every exponent coprime with its
// φ(n) a distinct key, so 100,000 identities need about 60 primes (seconds)
// instead of 1,700 RSA key generations (an hour on 2 CPUs).
func loadIdentities(dir string, n, bits int) ([]simagent.Identity, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	start := time.Now()
	var derived []*rsa.PrivateKey
	var primes []*big.Int
	for j := 0; len(derived) < n; j++ {
		p, err := poolPrime(dir, j, bits/2)
		if err != nil {
			return nil, err
		}
		for i := 0; i < len(primes) && len(derived) < n; i++ {
			for _, e := range exponents() {
				if len(derived) == n {
					break
				}
				if d := derive(primes[i], p, e); d != nil {
					derived = append(derived, d)
				}
			}
		}
		primes = append(primes, p)
	}
	ids := make([]simagent.Identity, n)
	errs := make(chan error, n)
	next := atomic.Int64{}
	var made atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.NumCPU(); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				id, fresh, err := identity(dir, derived[i])
				if err != nil {
					errs <- err
					return
				}
				if fresh {
					if m := made.Add(1); m%5000 == 0 {
						fmt.Printf("  %d new certificates (%.0fs)\n", m, time.Since(start).Seconds())
					}
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	if d := time.Since(start); d > 2*time.Second {
		fmt.Printf("identities ready in %.1fs from %d primes, %d new certificates (cached in %s)\n", d.Seconds(), len(primes), made.Load(), dir)
	}
	return ids, nil
}

// poolPrime returns cached prime j of the given size, generating it if
// missing.
func poolPrime(dir string, j, bits int) (*big.Int, error) {
	path := filepath.Join(dir, fmt.Sprintf("prime-%d-%04d.hex", bits, j))
	if b, err := os.ReadFile(path); err == nil {
		if p, ok := new(big.Int).SetString(strings.TrimSpace(string(b)), 16); ok && p.BitLen() == bits && p.ProbablyPrime(4) {
			return p, nil
		}
	}
	p, err := rand.Prime(rand.Reader, bits)
	if err != nil {
		return nil, err
	}
	return p, os.WriteFile(path, []byte(p.Text(16)+"\n"), 0o600)
}

// derive makes the key of modulus p*q with public exponent e, or nil when e
// is not coprime with φ(n).
func derive(p, q *big.Int, e int) *rsa.PrivateKey {
	one := big.NewInt(1)
	if p.Cmp(q) < 0 {
		p, q = q, p
	}
	phi := new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
	d := new(big.Int).ModInverse(big.NewInt(int64(e)), phi)
	if d == nil {
		return nil
	}
	nk := &rsa.PrivateKey{PublicKey: rsa.PublicKey{N: new(big.Int).Mul(p, q), E: e}, D: d, Primes: []*big.Int{p, q}}
	// No Validate: it costs a signature per key, and a bad key shows up as
	// a refused handshake anyway.
	nk.Precompute()
	return nk
}

// identity loads or creates the certificate of derived key i; the cache is
// keyed by the public key so a changed derivation never reuses a stale one.
func identity(dir string, k *rsa.PrivateKey) (simagent.Identity, bool, error) {
	id := handshake.NodeID(&k.PublicKey)
	path := filepath.Join(dir, fmt.Sprintf("cert-%x.der", id[:12]))
	if der, err := os.ReadFile(path); err == nil {
		if c, err := x509.ParseCertificate(der); err == nil {
			if pub, ok := c.PublicKey.(*rsa.PublicKey); ok && pub.Equal(&k.PublicKey) {
				return simagent.Identity{Key: k, CertDER: der}, false, nil
			}
		}
	}
	ident, err := simagent.NewIdentity(k)
	if err != nil {
		return ident, false, err
	}
	return ident, true, os.WriteFile(path, ident.CertDER, 0o600)
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "loadgen:", err)
	os.Exit(1)
}
