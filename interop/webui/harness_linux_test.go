//go:build linux

// MeshCentral 1.1.55 gives about one certificate in 20 a negative serial
// number (a decimal random number fed to node-forge as hex): Go refuses
// to parse those unless told otherwise, and mctest's HTTPS probe would
// never see the server come up.
//go:debug x509negativeserial=1

package webui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"
	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/mctest"
	"github.com/meshgo/meshagent/internal/xvfbtest"
)

// agentBin is our agent, built once by TestMain as a user builds it.
var agentBin string

func TestMain(m *testing.M) {
	var err error
	if agentBin, err = agentbin.Build(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := mctest.Main(m)
	agentbin.Cleanup()
	os.Exit(code)
}

// chromiumFlags returns all the flags Chromium gets (Playwright's own
// defaults are switched off with ignoreDefaultArgs, so this list is
// exactly what runs). The first block keeps the browser quiet and
// headless (meshcentral-loopback.md). The WebRTC ones let it use
// 127.0.0.1: --allow-loopback-in-peer-connection and the disabled
// WebRtcHideLocalIpsWithMdns feature (host candidates as addresses, not
// mDNS names). MESHGO_WEBUI_ICE_FLAGS_OFF=loopback,mdns leaves them out,
// to show which matter. On a host whose only interface is lo (a network
// namespace from `unshare -n`) each is needed: without either, Chromium
// never sends its offer and the session stays on the relay. On a host
// with other interfaces neither is: Chromium's wildcard-bound sockets
// reach the agent's 127.0.0.1 candidate and the agent sees them as
// peer-reflexive 127.0.0.1 candidates.
func chromiumFlags() []string {
	off := strings.Split(os.Getenv("MESHGO_WEBUI_ICE_FLAGS_OFF"), ",")
	flags := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-default-browser-check", "--disable-default-apps", "--disable-extensions",
		"--disable-dev-shm-usage", "--disable-breakpad", "--metrics-recording-only",
		"--disable-field-trial-config", "--password-store=basic", "--use-mock-keychain",
		"--no-service-autorun", "--disable-search-engine-choice-screen",
		"--force-color-profile=srgb", "--hide-scrollbars", "--mute-audio",
		"--disable-background-timer-throttling", "--disable-renderer-backgrounding",
		"--disable-backgrounding-occluded-windows",
		// MeshCentral's self-signed certificate: Playwright's
		// ignoreHTTPSErrors covers the page's requests but not a download
		// Chromium makes itself (<a download>, the file list's
		// devicefile.ashx link) on a new connection; that one failed its
		// certificate check and Playwright reported "saveAs: canceled"
		// (3 runs of 3 here; it passed only when an accepted connection
		// was reused). Loopback only: nothing else is reached.
		"--ignore-certificate-errors",
	}
	if !slices.Contains(off, "loopback") {
		flags = append(flags, "--allow-loopback-in-peer-connection")
	}
	features := []string{"OptimizationHints", "NetworkTimeServiceQuerying", "MediaRouter"}
	if !slices.Contains(off, "mdns") {
		features = append(features, "WebRtcHideLocalIpsWithMdns")
	}
	return append(flags, "--disable-features="+strings.Join(features, ","))
}

// ---- Xvfb -------------------------------------------------------------------

// xserver is an Xvfb started as a display manager starts X: `:N -auth FILE`.
type xserver struct{ *xvfbtest.Display }

func startXvfb(t *testing.T, w, h int) *xserver {
	t.Helper()
	return &xserver{xvfbtest.Start(t, xvfbtest.Options{Width: w, Height: h, NoReset: true,
		First: 20, Spread: 50, Limit: 140, Timeout: 15 * time.Second, Ready: xvfbtest.DialReady})}
}

// rect is a solid area of the known screen.
type rect struct {
	x, y, w, h int
	rgb        [3]uint8
}

func (r rect) contains(x, y int) bool { return x >= r.x && y >= r.y && x < r.x+r.w && y < r.y+r.h }

// scene is what the test puts on the screen: a background and rectangles
// (later ones on top).
type scene struct {
	w, h  int
	bg    [3]uint8
	rects []rect
}

// colourAt is the expected colour of pixel (x, y).
func (s scene) colourAt(x, y int) [3]uint8 {
	c := s.bg
	for _, r := range s.rects {
		if r.contains(x, y) {
			c = r.rgb
		}
	}
	return c
}

// nearEdge reports whether (x, y) is within d pixels of a colour edge
// (JPEG blurs edges; samples avoid them).
func (s scene) nearEdge(x, y, d int) bool {
	c := s.colourAt(x, y)
	for _, o := range [][2]int{{-d, 0}, {d, 0}, {0, -d}, {0, d}, {-d, -d}, {d, d}, {-d, d}, {d, -d}} {
		px, py := x+o[0], y+o[1]
		if px < 0 || py < 0 || px >= s.w || py >= s.h {
			continue
		}
		if s.colourAt(px, py) != c {
			return true
		}
	}
	return false
}

// paint draws the scene on the X server and keeps it there until the test
// ends: the root window's background, and each rectangle as a mapped
// override-redirect window (Xvfb has no window manager).
func (x *xserver) paint(t *testing.T, s scene) {
	t.Helper()
	c, err := x.Dial()
	if err != nil {
		t.Fatalf("connect to %s: %v", x.Name, err)
	}
	t.Cleanup(c.Close)
	scr := xproto.Setup(c).DefaultScreen(c)
	pixel := func(rgb [3]uint8) uint32 { return uint32(rgb[0])<<16 | uint32(rgb[1])<<8 | uint32(rgb[2]) }
	if err := xproto.ChangeWindowAttributesChecked(c, scr.Root, xproto.CwBackPixel, []uint32{pixel(s.bg)}).Check(); err != nil {
		t.Fatal(err)
	}
	if err := xproto.ClearAreaChecked(c, false, scr.Root, 0, 0, 0, 0).Check(); err != nil {
		t.Fatal(err)
	}
	for _, r := range s.rects {
		id, err := c.NewId()
		if err != nil {
			t.Fatal(err)
		}
		win := xproto.Window(id)
		if err := xproto.CreateWindowChecked(c, scr.RootDepth, win, scr.Root, int16(r.x), int16(r.y), uint16(r.w), uint16(r.h), 0,
			xproto.WindowClassInputOutput, scr.RootVisual, xproto.CwBackPixel|xproto.CwOverrideRedirect,
			[]uint32{pixel(r.rgb), 1}).Check(); err != nil {
			t.Fatal(err)
		}
		if err := xproto.MapWindowChecked(c, win).Check(); err != nil {
			t.Fatal(err)
		}
	}
}

// ---- our agent --------------------------------------------------------------

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ourAgent is our agent binary running `meshagent run --msh --data` with
// debug logging.
type ourAgent struct {
	dir string
	log *syncBuffer
}

// startOurAgent runs our agent with msh and the extra environment, waits
// until MeshCentral lists it online, and returns it with its node id
// (without "node//").
func startOurAgent(t *testing.T, srv *mctest.Server, msh []byte, env ...string) (*ourAgent, string) {
	t.Helper()
	dir := t.TempDir()
	mshPath := filepath.Join(dir, "meshagent.msh")
	if err := os.WriteFile(mshPath, msh, 0o600); err != nil {
		t.Fatal(err)
	}
	a := &ourAgent{dir: dir, log: &syncBuffer{}}
	cmd := exec.Command(agentBin, "run", "--msh", mshPath, "--data", dir, "--log-level", "debug")
	// GODEBUG: see x509negativeserial above; our agent parses the
	// server's certificate with crypto/x509 too.
	cmd.Env = agentbin.Env(append([]string{"GODEBUG=x509negativeserial=1"}, env...)...)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	agentbin.Run(t, cmd, a.log)
	// The identity exists once the agent has started; ask for the node id
	// as an admin would.
	var id string
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err := exec.Command(agentBin, "-nodeid", "--msh", mshPath, "--data", dir).Output()
		if err == nil {
			id = strings.TrimPrefix(strings.TrimSpace(string(out)), "node//")
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("meshagent -nodeid: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	srv.WaitDevice(t, func(d mctest.Device) bool { return d.ShortID() == id && d.Online() }, 60*time.Second)
	return a, id
}

// lines returns the agent's log lines containing s.
func (a *ourAgent) lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(a.log.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(sc.Text(), s) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// ---- the browser --------------------------------------------------------------

type probe struct {
	X   int      `json:"x"`
	Y   int      `json:"y"`
	RGB [3]uint8 `json:"rgb"`
}

type desktopCfg struct {
	ExpectW int     `json:"expectW"`
	ExpectH int     `json:"expectH"`
	Probes  []probe `json:"probes"`
	Tol     int     `json:"tol"`
	WebRTC  bool    `json:"webrtc"`
	// WantWebP waits for a WebP tile after the probes match.
	WantWebP bool `json:"wantWebP,omitempty"`
	// Click is clicked (device screen coordinates), then TypeText is typed
	// in the viewer once the probes match; TypedFile is read until it holds
	// TypeText (the device's test program writes there
	// what reached its window).
	TypeText  string `json:"typeText,omitempty"`
	Click     *point `json:"click,omitempty"`
	TypedFile string `json:"typedFile,omitempty"`
}

// point is a place on the device's screen.
type point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

type namedFile struct {
	Name    string `json:"name"`
	Content string `json:"content,omitempty"`
	Size    int    `json:"size,omitempty"`
}

type filesCfg struct {
	Dir    string      `json:"dir"`
	Text   namedFile   `json:"text"`
	Binary []namedFile `json:"binary"`
	WebRTC bool        `json:"webrtc"`
}

type uiConfig struct {
	Playwright  string       `json:"playwright"`
	Chromium    string       `json:"chromium"`
	Flags       []string     `json:"flags"`
	UserDataDir string       `json:"userDataDir"`
	OutDir      string       `json:"outDir"`
	Base        string       `json:"base"`
	User        string       `json:"user"`
	Pass        string       `json:"pass"`
	Node        string       `json:"node"`
	URLArgs     string       `json:"urlArgs"`
	Desktop     *desktopCfg  `json:"desktop,omitempty"`
	Files       *filesCfg    `json:"files,omitempty"`
	Tools       *toolsCfg    `json:"tools,omitempty"`
	Consent     *consentCfg  `json:"consent,omitempty"`
	Toolbar     *struct{}    `json:"toolbar,omitempty"`
	WebRelay    *webRelayCfg `json:"webrelay,omitempty"`
	WebVNC      *webVNCCfg   `json:"webvnc,omitempty"`
	WebSSH      []webSSHCfg  `json:"webssh,omitempty"`
	// Timeout bounds the browser's run (default 3 min).
	Timeout time.Duration `json:"-"`
}

type toolsCfg struct {
	PID int `json:"pid,omitempty"` // process whose details dialog is opened
}

type uiResult struct {
	OK        bool   `json:"ok"`
	Error     string `json:"error"`
	UserAgent string `json:"userAgent"`
	FailShot  string `json:"failShot"`
	Desktop   *struct {
		Status             string  `json:"status"`
		ConnectButtonShown bool    `json:"connectButtonShown"`
		AgentCaps          *int    `json:"agentCaps"`
		Width              int     `json:"width"`
		Height             int     `json:"height"`
		ProbesMatched      bool    `json:"probesMatched"`
		WebRTCActive       bool    `json:"webRtcActive"`
		CanvasPNG          string  `json:"canvasPNG"`
		Screenshot         string  `json:"screenshot"`
		InputChecked       bool    `json:"inputChecked"`
		TypedResult        *string `json:"typedResult"`
		TypedShot          string  `json:"typedShot"`
		// TileKinds counts the tiles the viewer drew by their real
		// format: jpeg, webp, png, other.
		TileKinds map[string]int `json:"tileKinds"`
	} `json:"desktop"`
	Files *struct {
		Status        string `json:"status"`
		Switched      bool   `json:"switched"`
		Listed        bool   `json:"listed"`
		EditorMatched bool   `json:"editorMatched"`
		EditorValue   string `json:"editorValue"`
		Tunnel        []struct {
			Name         string `json:"name"`
			Size         int    `json:"size"`
			Path         string `json:"path"`
			Error        string `json:"error"`
			DCBytes      int    `json:"dcBytes"`
			DCBlocks     int    `json:"dcBlocks"`
			DCDataLen    int    `json:"dcDataLen"`
			DCDataSHA256 string `json:"dcDataSHA256"`
			StillWebRTC  bool   `json:"stillWebRTC"`
		} `json:"tunnel"`
		Link struct {
			Name  string `json:"name"`
			Href  string `json:"href"`
			Path  string `json:"path"`
			Error string `json:"error"`
		} `json:"link"`
		Screenshot string `json:"screenshot"`
	} `json:"files"`
	Consent  *consentResult  `json:"consent"`
	Toolbar  *toolbarResult  `json:"toolbar"`
	WebRelay *webRelayResult `json:"webrelay"`
	WebVNC   *webVNCResult   `json:"webvnc"`
	WebSSH   []webSSHResult  `json:"webssh"`
	Tools    *struct {
		ServicesTabShown bool    `json:"servicesTabShown"`
		ServicesMs       int     `json:"servicesMs"`
		Processes        int     `json:"processes"`
		PSInfo           *string `json:"psinfo"`
		Services         int     `json:"services"`
		ServiceDetails   *string `json:"serviceDetails"`
		Screenshot       string  `json:"screenshot"`
	} `json:"tools"`
}

// runUI runs testdata/webui.js on cfg (Chromium, login, the flows cfg
// asks for) and returns its result. The browser's progress is logged.
func runUI(t *testing.T, srv *mctest.Server, node string, cfg uiConfig) uiResult {
	t.Helper()
	pw, err := InstallPlaywright(t.Logf)
	if err != nil {
		t.Fatalf("playwright-core: %v", err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "webui.js"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Playwright = pw
	cfg.Chromium = ChromiumPath()
	cfg.Flags = chromiumFlags()
	t.Logf("chromium flags: %s", strings.Join(cfg.Flags, " "))
	cfg.UserDataDir = t.TempDir()
	cfg.OutDir = t.ArtifactDir()
	cfg.Base = srv.HTTPSURL()
	if cfg.User == "" {
		cfg.User, cfg.Pass = srv.AdminUser(), srv.AdminPass()
	}
	cfg.Node = node
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(t.TempDir(), "webui.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script, cfgPath)
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	// Its own process group, so Chromium and its helpers end with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	runErr := cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // anything left of the group node led
	}
	t.Logf("browser (%s):\n%s", time.Since(start).Round(time.Millisecond), stderr.String())
	out := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	var r uiResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("node webui.js: %v; no result (%v): %q", runErr, err, stdout.String())
	}
	if !r.OK {
		t.Errorf("browser: %s", r.Error)
		if r.FailShot != "" {
			t.Logf("screenshot at the failure: %s", r.FailShot)
		}
	}
	return r
}

func readPNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return img
}

// checkCanvas compares the viewer's canvas with the scene on a grid of
// points away from colour edges, within JPEG tolerance.
func checkCanvas(t *testing.T, img image.Image, s scene, tol int) {
	t.Helper()
	bnd := img.Bounds()
	if bnd.Dx() != s.w || bnd.Dy() != s.h {
		t.Fatalf("canvas is %dx%d, the screen %dx%d", bnd.Dx(), bnd.Dy(), s.w, s.h)
	}
	checked, bad := 0, 0
	for y := 4; y < s.h; y += 37 {
		for x := 4; x < s.w; x += 41 {
			if s.nearEdge(x, y, 10) {
				continue
			}
			want := s.colourAt(x, y)
			r, g, b, _ := img.At(bnd.Min.X+x, bnd.Min.Y+y).RGBA()
			got := [3]int{int(r >> 8), int(g >> 8), int(b >> 8)}
			checked++
			for i := range 3 {
				if d := got[i] - int(want[i]); d > tol || d < -tol {
					if bad < 10 {
						t.Errorf("pixel (%d,%d) = %v, want %v ±%d", x, y, got, want, tol)
					}
					bad++
					break
				}
			}
		}
	}
	t.Logf("canvas: %d sampled pixels, %d off", checked, bad)
	for _, r := range s.rects {
		cx, cy := r.x+r.w/2, r.y+r.h/2
		if s.colourAt(cx, cy) != r.rgb {
			continue
		}
		cr, cg, cb, _ := img.At(bnd.Min.X+cx, bnd.Min.Y+cy).RGBA()
		t.Logf("rectangle %v at (%d,%d): canvas has %d,%d,%d", r.rgb, cx, cy, cr>>8, cg>>8, cb>>8)
	}
}
