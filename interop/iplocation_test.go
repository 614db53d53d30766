//go:build linux

package interop

import (
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgo/meshagent/internal/mctest"
)

// TestIPLocation: MeshCentral with IP location on (the Shared server's
// GeoDomain: iplocation and geolocation) asks our agent for its public IP
// location when it comes online; the agent asks the location service its
// .msh names (ipLocationUrl: a stand-in for ipinfo.io on loopback, serving
// ipinfo.io's JSON shape, since the real one is on the Internet) and
// answers, and MeshCentral keeps the answer in the device record: publicip
// and iploc ("lat,long,seconds"), read back with meshctrl listdevices.
// The service is asked once, only because the server asked. The C agent
// gets the same: its meshcore.js asks http://ipinfo.io/json, which it
// reaches here as a stand-in on port 80 of a loopback address through a
// private /etc/hosts (mctest.CAgentOptions.Hosts; as root only).
func TestIPLocation(t *testing.T) {
	const (
		ip  = "203.0.113.77" // TEST-NET-3
		loc = "-41.2866,174.7756"
	)
	var asked, askedC atomic.Int32
	serve := func(n *atomic.Int32) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/json" {
				http.NotFound(w, r)
				return
			}
			n.Add(1)
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			io.WriteString(w, `{"ip":"`+ip+`","hostname":"meshgo.example","city":"Wellington","region":"Wellington",`+
				`"country":"NZ","loc":"`+loc+`","org":"AS64500 Example","postal":"6011","timezone":"Pacific/Auckland"}`)
		}
	}
	standIn := httptest.NewServer(serve(&asked))
	defer standIn.Close()

	srv := mctest.Shared(t).Domain(t, mctest.GeoDomain)
	mesh := srv.AddDeviceGroup(t, "iplocation-test")
	msh := append(srv.MSH(t, mesh), []byte("ipLocationUrl="+standIn.URL+"/json\r\n")...)
	before := time.Now().Unix()
	a := startAgent(t, msh)
	if _, ok := a.waitLog(30*time.Second, "core started"); !ok {
		t.Fatal("agent did not start its core")
	}
	node := strings.TrimPrefix(a.nodeID(), "node//")
	checkIPLocation(t, srv, node, ip, loc, before)
	if n := asked.Load(); n != 1 {
		t.Errorf("the location service was asked %d times, want once", n)
	}

	t.Run("CAgent", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the C agent's stand-in needs root (port 80, a private /etc/hosts)")
		}
		var l net.Listener
		var addr string
		for i := 0; l == nil; i++ {
			addr = fmt.Sprintf("127.77.%d.%d", 1+mrand.IntN(250), 1+mrand.IntN(250))
			var err error
			if l, err = net.Listen("tcp", addr+":80"); err != nil && i > 5 {
				t.Skipf("no loopback address with port 80 free: %v", err)
			}
		}
		hs := &http.Server{Handler: serve(&askedC)}
		go hs.Serve(l)
		defer hs.Close()
		mesh := srv.AddDeviceGroup(t, "iplocation-c")
		before := time.Now().Unix()
		c := mctest.StartCAgentWith(t, srv.MSH(t, mesh), mctest.CAgentOptions{Hosts: map[string]string{"ipinfo.io": addr}})
		id := c.NodeID(t, 60*time.Second)
		checkIPLocation(t, srv, id[strings.LastIndexByte(id, '/')+1:], ip, loc, before)
		if n := askedC.Load(); n != 1 {
			t.Errorf("the C agent asked the location service %d times, want once", n)
		}
	})
}

// checkIPLocation waits for the device node's record to carry the
// location (ip, loc) with a time from before on.
func checkIPLocation(t *testing.T, srv *mctest.Server, node, ip, loc string, before int64) {
	t.Helper()
	d := srv.WaitDevice(t, func(d mctest.Device) bool {
		return d.ShortID() == node && d.Online() && d.Raw["iploc"] != nil
	}, 45*time.Second)
	t.Logf("device record: publicip %v, iploc %v", d.Raw["publicip"], d.Raw["iploc"])
	if got := fmt.Sprint(d.Raw["publicip"]); got != ip {
		t.Errorf("publicip %q, want %q", got, ip)
	}
	iploc := fmt.Sprint(d.Raw["iploc"])
	when, ok := strings.CutPrefix(iploc, loc+",")
	if !ok {
		t.Fatalf("iploc %q, want %q and the time MeshCentral got it", iploc, loc)
	}
	if sec, err := strconv.ParseInt(when, 10, 64); err != nil || sec < before-5 || sec > time.Now().Unix()+5 {
		t.Errorf("iploc's time %q is not the time of this test (from %d)", when, before)
	}
}
