// Package sysinfo gathers the host facts a MeshCentral server expects from an
// agent core, in the exact JSON shapes the server and its web UI read:
// the `coreinfo` fields, the `netinfo` netif2 map and the `sysinfo` data
// object. It has no JavaScript dependency so any part of the agent can use it;
// the script runtime exposes it to cores as require('sysinfo').
package sysinfo

import (
	"bytes"
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshgo/meshagent/agent/osuser"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/mem"
)

// MaxString is MeshCentral's limit on string values inside a sysinfo object
// (common.js validateObjectForMongo); longer strings make the server drop
// the whole message silently, so every string we emit is clipped to it.
const MaxString = 1024

// CoreInfo holds the host-derived fields of a `coreinfo` message.
type CoreInfo struct {
	OSDesc string   `json:"osdesc"`
	Root   bool     `json:"root"`
	Users  []string `json:"users"`
	// LockedUsers are the Users whose session is locked (meshcore.js's
	// lusers; the web UI marks them "Locked"). Always a list, empty when
	// none is, so a server's stale list is replaced when they unlock.
	LockedUsers    []string `json:"lusers"`
	LastBootUpTime int64    `json:"lastbootuptime,omitempty"` // ms since epoch
}

// GetCoreInfo returns the OS description, whether the agent runs privileged,
// the logged-in and locked users and the boot time. Partial failures leave
// fields empty rather than failing: the server treats every field as
// optional.
func GetCoreInfo(ctx context.Context) CoreInfo {
	ci := CoreInfo{OSDesc: OSDesc(ctx), Root: isRoot()}
	// Without logind (not Linux, no system bus) only the login records count.
	logind, _ := osuser.LogindSessions(ctx)
	ci.Users, ci.LockedUsers = users(ctx, logind)
	if bt, err := host.BootTimeWithContext(ctx); err == nil && bt > 0 {
		ci.LastBootUpTime = int64(bt) * 1000
	}
	return ci
}

// users lists distinct logged-in user names, from the login records
// (utmp) and logind's user sessions (a Wayland desktop often writes no
// utmp record), and the locked ones among them (logind's LockedHint), each
// in a stable order so that a core comparing coreinfo snapshots does not
// resend on mere reordering.
func users(ctx context.Context, logind []osuser.LogindSession) (all, locked []string) {
	all, locked = []string{}, []string{}
	seen := map[string]bool{}
	add := func(u string) {
		if u != "" && !seen[u] {
			seen[u] = true
			all = append(all, u)
		}
	}
	// utmp only: logind's sessions are added below (LoginRecords runs no
	// loginctl where utmp is missing).
	if us, err := osuser.LoginRecords(ctx); err == nil {
		for _, u := range us {
			add(u.User)
		}
	}
	for _, s := range logind {
		if s.Class == "user" && s.State != "closing" {
			add(s.User)
		}
	}
	for _, s := range logind {
		if s.Locked && seen[s.User] && !slices.Contains(locked, s.User) {
			locked = append(locked, s.User)
		}
	}
	sort.Strings(all)
	sort.Strings(locked)
	return all, locked
}

// OSDesc is the human-readable OS name shown in the UI's device header.
func OSDesc(ctx context.Context) string {
	if d := platformOSDesc(ctx); d != "" {
		return clip(d)
	}
	hi, err := host.InfoWithContext(ctx)
	if err != nil || hi.Platform == "" {
		return runtime.GOOS
	}
	return clip(strings.TrimSpace(hi.Platform + " " + hi.PlatformVersion))
}

// SysInfo builds the `data` object of a sysinfo reply, `hash` included.
// agentVers is stored as hardware.agentvers (the UI reads compileTime).
func SysInfo(ctx context.Context, agentVers map[string]string) (map[string]any, error) {
	hw := map[string]any{}
	ident := map[string]any{}
	fillIdentifiers(ctx, ident)
	if cs, err := cpu.InfoWithContext(ctx); err == nil && len(cs) > 0 && ident["cpu_name"] == nil {
		if n := strings.TrimSpace(cs[0].ModelName); n != "" {
			ident["cpu_name"] = n
		}
	}
	if ident["cpu_name"] == nil {
		ident["cpu_name"] = fmt.Sprintf("%s (%d logical CPUs)", runtime.GOARCH, runtime.NumCPU())
	}
	hw["identifiers"] = ident

	plat := map[string]any{}
	if vm, err := mem.VirtualMemoryWithContext(ctx); err == nil {
		fillMemory(plat, vm.Total)
	}
	if bt, err := host.BootTimeWithContext(ctx); err == nil && bt > 0 {
		fillBootTime(plat, time.Unix(int64(bt), 0))
	}
	fillPlatform(ctx, plat, ident)
	hw[runtimeKey()] = plat

	if dns := dnsServers(); len(dns) > 0 {
		hw["network"] = map[string]any{"dns": dns}
	}
	av := map[string]any{}
	for k, v := range agentVers {
		av[k] = v
	}
	hw["agentvers"] = av

	data := map[string]any{"hardware": hw}
	fillExtras(hw, ident, data)
	data = sanitize(data).(map[string]any)
	h, err := Hash(data)
	if err != nil {
		return nil, err
	}
	data["hash"] = h
	return data, nil
}

// runtimeKey is the hardware.<platform> key the web UI looks for.
func runtimeKey() string {
	switch runtime.GOOS {
	case "windows", "darwin":
		return runtime.GOOS
	default:
		return "linux"
	}
}

// volatileKeys are left out of the hash: free space and memory use change
// every second, and counting them would make the server store a new
// sysinfo record on every reconnect.
var volatileKeys = map[string]bool{"available": true, "used": true, "sizeremaining": true}

// Hash returns the hex SHA-384 of the JSON of data without its `hash` key and
// without volatile values. encoding/json sorts map keys, so equal facts give
// equal hashes across calls and restarts.
func Hash(data map[string]any) (string, error) {
	stable := stripVolatile(data).(map[string]any)
	delete(stable, "hash")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(stable); err != nil {
		return "", fmt.Errorf("sysinfo hash: %w", err)
	}
	sum := sha512.Sum384(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

func stripVolatile(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			if volatileKeys[k] {
				continue
			}
			m[k] = stripVolatile(x)
		}
		return m
	case []any:
		a := make([]any, len(t))
		for i, x := range t {
			a[i] = stripVolatile(x)
		}
		return a
	}
	return v
}

var badKeyChar = regexp.MustCompile(`[^A-Za-z0-9_]`)

// sanitize enforces the server's validation rules (control.md 6.5): keys
// only [A-Za-z0-9_] and at most 100 chars, strings at most 1024 chars. A
// violation anywhere makes MeshCentral drop the whole sysinfo silently, so
// fixing it here is cheaper than debugging a device with no details.
func sanitize(v any) any {
	switch t := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(t))
		for k, x := range t {
			if x == nil {
				continue
			}
			k = badKeyChar.ReplaceAllString(k, "_")
			if len(k) > 100 {
				k = k[:100]
			}
			m[k] = sanitize(x)
		}
		return m
	case []any:
		a := make([]any, 0, len(t))
		for _, x := range t {
			a = append(a, sanitize(x))
		}
		return a
	case []string:
		a := make([]any, 0, len(t))
		for _, x := range t {
			a = append(a, clip(x))
		}
		return a
	case []map[string]any:
		a := make([]any, 0, len(t))
		for _, x := range t {
			a = append(a, sanitize(x))
		}
		return a
	case string:
		return clip(t)
	}
	return v
}

// clip cuts s to MaxString UTF-16 units (the server counts JS string
// length); cutting on a rune boundary keeps the JSON valid.
// firstSet returns a unless it is empty, else b.
func firstSet(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func clip(s string) string {
	if len(s) <= MaxString {
		return s
	}
	n := 0
	for i, r := range s {
		w := 1
		if r > 0xFFFF {
			w = 2
		}
		if n+w > MaxString {
			return s[:i]
		}
		n += w
	}
	return s
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// dnsServers reads nameserver lines from resolv.conf (Linux and macOS);
// Windows has no such file and returns nothing here.
func dnsServers() []string {
	b, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil
	}
	var out []string
	for _, ln := range strings.Split(string(b), "\n") {
		f := strings.Fields(ln)
		if len(f) >= 2 && f[0] == "nameserver" {
			out = append(out, f[1])
		}
	}
	return out
}

// fmtSize renders bytes the way the C agent's dmidecode output looks
// ("16 GB", "512 MB"), which the UI prints verbatim.
func fmtSize(b uint64) string {
	const gb = 1 << 30
	if b >= gb {
		return fmt.Sprintf("%.1f GB", float64(b)/gb)
	}
	return fmt.Sprintf("%d MB", b>>20)
}

// wmiTime formats t as WMI's CIM_DATETIME, yyyymmddHHMMSS.ffffff±UUU with
// UUU the offset from UTC in minutes (Win32_OperatingSystem's
// LastBootUpTime). MeshCentral reads the first 14 digits as local time.
func wmiTime(t time.Time) string {
	_, off := t.Zone()
	sign := '+'
	if off < 0 {
		sign, off = '-', -off
	}
	return fmt.Sprintf("%s.%06d%c%03d", t.Format("20060102150405"), t.Nanosecond()/1000, sign, off/60)
}
