package sysinfo

import (
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// gateways reads default routes from /proc/net/route and ipv6_route.
func gateways() (v4, v6 map[string]string) {
	v4, v6 = map[string]string{}, map[string]string{}
	if b, err := os.ReadFile("/proc/net/route"); err == nil {
		for _, ln := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(ln)
			if len(f) < 3 || f[1] != "00000000" || f[2] == "00000000" {
				continue
			}
			g, err := hex.DecodeString(f[2])
			if err != nil || len(g) != 4 {
				continue
			}
			if _, ok := v4[f[0]]; !ok {
				v4[f[0]] = net.IPv4(g[3], g[2], g[1], g[0]).String() // little-endian
			}
		}
	}
	if b, err := os.ReadFile("/proc/net/ipv6_route"); err == nil {
		for _, ln := range strings.Split(string(b), "\n") {
			f := strings.Fields(ln)
			if len(f) < 10 || f[0] != strings.Repeat("0", 32) || f[1] != "00" || f[4] == strings.Repeat("0", 32) {
				continue
			}
			g, err := hex.DecodeString(f[4])
			if err != nil || len(g) != 16 {
				continue
			}
			if _, ok := v6[f[9]]; !ok {
				v6[f[9]] = net.IP(g).String()
			}
		}
	}
	return v4, v6
}

// ifTypeSpeed classifies from sysfs: ARPHRD type, wireless dir, link speed
// (Mb/s, -1 when unknown).
func ifTypeSpeed(name string, loop bool) (string, int64) {
	base := filepath.Join("/sys/class/net", name)
	typ := "other"
	switch readTrim(filepath.Join(base, "type")) {
	case "1":
		typ = "ethernet"
	case "772":
		typ = "loopback"
	case "65534", "768", "776":
		typ = "tunnel"
	}
	if loop {
		typ = "loopback"
	}
	if _, err := os.Stat(filepath.Join(base, "wireless")); err == nil {
		typ = "wireless"
	}
	var speed int64
	if s, err := strconv.ParseInt(readTrim(filepath.Join(base, "speed")), 10, 64); err == nil && s > 0 {
		speed = s * 1000000
	}
	return typ, speed
}
