//go:build linux

package webpage

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jezek/xgb/xproto"

	"github.com/meshgo/meshagent/internal/agentbin"
	"github.com/meshgo/meshagent/internal/xvfbtest"
	"github.com/meshgo/meshagent/interop/webui"
	"github.com/meshgo/meshagent/server-lite/accounts"
	"github.com/meshgo/meshagent/server-lite/servertest"
)

// chromiumFlags: headless and quiet; Playwright adds none of its own.
func chromiumFlags() []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--no-default-browser-check", "--disable-default-apps", "--disable-extensions",
		"--disable-dev-shm-usage", "--disable-breakpad", "--metrics-recording-only",
		"--disable-field-trial-config", "--password-store=basic", "--use-mock-keychain",
		"--no-service-autorun", "--disable-search-engine-choice-screen",
		"--force-color-profile=srgb", "--hide-scrollbars", "--mute-audio",
		"--disable-background-timer-throttling", "--disable-renderer-backgrounding",
		"--disable-backgrounding-occluded-windows",
		"--disable-features=OptimizationHints,NetworkTimeServiceQuerying,MediaRouter",
	}
}

var (
	bgRGB  = [3]uint8{0x33, 0x66, 0xcc} // xsetroot -solid '#3366cc'
	keyRGB = [3]uint8{0xe0, 0x3c, 0x28} // the key window
)

type rect struct {
	X int `json:"x"`
	Y int `json:"y"`
	W int `json:"w"`
	H int `json:"h"`
}

// keyWindow maps an override-redirect window at r that records the
// keysyms of the KeyPress events it gets (X sends keys to the window under
// the pointer when nothing has the focus, as here without a window
// manager).
func keyWindow(t *testing.T, d *xvfbtest.Display, r rect) func() []xproto.Keysym {
	t.Helper()
	c, err := d.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	setup := xproto.Setup(c)
	scr := setup.DefaultScreen(c)
	id, err := c.NewId()
	if err != nil {
		t.Fatal(err)
	}
	win := xproto.Window(id)
	pixel := uint32(keyRGB[0])<<16 | uint32(keyRGB[1])<<8 | uint32(keyRGB[2])
	if err := xproto.CreateWindowChecked(c, scr.RootDepth, win, scr.Root, int16(r.X), int16(r.Y), uint16(r.W), uint16(r.H), 0,
		xproto.WindowClassInputOutput, scr.RootVisual, xproto.CwBackPixel|xproto.CwOverrideRedirect|xproto.CwEventMask,
		[]uint32{pixel, 1, xproto.EventMaskKeyPress | xproto.EventMaskButtonPress}).Check(); err != nil {
		t.Fatal(err)
	}
	if err := xproto.MapWindowChecked(c, win).Check(); err != nil {
		t.Fatal(err)
	}
	n := byte(setup.MaxKeycode - setup.MinKeycode + 1)
	km, err := xproto.GetKeyboardMapping(c, setup.MinKeycode, n).Reply()
	if err != nil {
		t.Fatal(err)
	}
	keysym := func(code xproto.Keycode) xproto.Keysym {
		i := int(code-setup.MinKeycode) * int(km.KeysymsPerKeycode)
		if i < 0 || i >= len(km.Keysyms) {
			return 0
		}
		return km.Keysyms[i]
	}
	var mu sync.Mutex
	var got []xproto.Keysym
	go func() {
		for {
			ev, err := c.WaitForEvent()
			if ev == nil && err == nil {
				return
			}
			if kp, ok := ev.(xproto.KeyPressEvent); ok {
				mu.Lock()
				got = append(got, keysym(kp.Detail))
				mu.Unlock()
			}
		}
	}()
	return func() []xproto.Keysym {
		mu.Lock()
		defer mu.Unlock()
		return append([]xproto.Keysym(nil), got...)
	}
}

type probe struct {
	X   int      `json:"x"`
	Y   int      `json:"y"`
	RGB [3]uint8 `json:"rgb"`
}

type canvasResult struct {
	W, H   int
	Tiles  int
	Status string
	Probes [][3]int
}

type result struct {
	OK              bool              `json:"ok"`
	Error           string            `json:"error"`
	FailShot        string            `json:"failShot"`
	PageErrors      []string          `json:"pageErrors"`
	BadLogin        string            `json:"badLogin"`
	Whoami          string            `json:"whoami"`
	Node            string            `json:"node"`
	OnlineSeen      bool              `json:"onlineSeen"`
	SearchMissHides bool              `json:"searchMissHides"`
	SearchHitShows  bool              `json:"searchHitShows"`
	General         map[string]string `json:"general"`
	SaveState       string            `json:"saveState"`
	DeviceEvents    []string          `json:"deviceEvents"`
	AllEvents       []string          `json:"allEvents"`
	Desktop         *canvasResult     `json:"desktop"`
	TermOK          bool              `json:"termOK"`
	TermText        string            `json:"termText"`
	TermRaw         string            `json:"termRaw"`
	UploadSHA       string            `json:"uploadSHA"`
	DownloadSHA     string            `json:"downloadSHA"`
	DownloadSize    int               `json:"downloadSize"`
	Progress        []float64         `json:"progress"`
	FilesOps        bool              `json:"filesOps"`
	Msh             string            `json:"msh"`
	RunOK           bool              `json:"runOK"`
	RunOut          string            `json:"runOut"`
	Install         string            `json:"install"`
	BobMember       string            `json:"bobMember"`
	Bob             *struct {
		Groups  []string `json:"groups"`
		Devices []string `json:"devices"`
		Options []string `json:"options"`
	} `json:"bob"`
	BobEmbedDeviceShown bool          `json:"bobEmbedDeviceShown"`
	EmbedDesktop        *canvasResult `json:"embedDesktop"`
	Embed               *struct {
		URL     string   `json:"url"`
		Visible []string `json:"visible"`
	} `json:"embed"`
	PhoneList   *phoneFit `json:"phoneList"`
	PhoneDevice *phoneFit `json:"phoneDevice"`
}

// phoneFit is what the page measured on a phone-sized screen: its width,
// the document's scroll width, and the elements that stick out.
type phoneFit struct {
	Width       int      `json:"width"`
	ScrollWidth int      `json:"scrollWidth"`
	Over        []string `json:"over"`
}

// TestWebPage walks server-lite's page as users do: an admin logs in,
// watches our agent come online, opens its details, events, desktop
// (canvas pixels of the Xvfb screen; a key typed in the page reaches an X
// window), terminal (a command's output) and files (20 MiB upload with
// progress, download with the same SHA-256, rename, new folder, delete);
// groups (a new one, the .msh link, the install command line) and users
// (a new one given rights on the new group); that user sees nothing of
// the device;
// the embed URL with a login token opens the device's desktop with
// nothing else shown; on a phone-sized screen the list and the device's
// details fit the screen.
func TestWebPage(t *testing.T) {
	webui.RequireBrowserTools(t, "web page", "Xvfb", "xauth", "xsetroot", "node", "npm")
	const w, h = 1024, 768
	x := xvfbtest.Start(t, xvfbtest.Options{Width: w, Height: h, NoReset: true, First: 20, Spread: 50, Limit: 140,
		Timeout: 15 * time.Second, Ready: xvfbtest.DialReady})
	root := exec.Command("xsetroot", "-solid", "#3366cc")
	root.Env = append(os.Environ(), x.Env()...)
	if out, err := root.CombinedOutput(); err != nil {
		t.Fatalf("xsetroot: %v: %s", err, out)
	}
	kw := rect{X: 600, Y: 400, W: 240, H: 180}
	keys := keyWindow(t, x, kw)

	pw, err := webui.InstallPlaywright(t.Logf)
	if err != nil {
		t.Fatalf("playwright-core: %v", err)
	}
	agentbin.MustBuild(t) // now, so that the agent starts at once when the page is ready
	srv := servertest.Start(t, servertest.Options{})

	tok, err := srv.Accounts.CreateLoginToken(accounts.UserID(srv.AdminUser), "embed", 0)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	filesDir := t.TempDir()
	const upName, upSize = "upload.bin", 20 << 20

	cfg := map[string]any{
		"playwright": pw, "chromium": webui.ChromiumPath(), "flags": chromiumFlags(), "userDataDir": t.TempDir(), "outDir": t.ArtifactDir(),
		"base": "https://" + srv.Addr(), "user": srv.AdminUser, "pass": srv.AdminPass, "hostname": host,
		"bob":      map[string]string{"user": "bob", "pass": "Bob-pass-1"},
		"token":    map[string]string{"user": tok.TokenUser, "pass": tok.Pass},
		"viewport": map[string]int{"w": 1400, "h": 1000},
		"desktop": map[string]any{"w": w, "h": h, "tol": 24, "probes": []probe{
			{X: 100, Y: 100, RGB: bgRGB}, {X: 900, Y: 200, RGB: bgRGB}, {X: kw.X + kw.W/2, Y: kw.Y + kw.H/2, RGB: keyRGB}}},
		"keyWindow": kw, "key": "q",
		"files": map[string]any{"dir": filesDir, "name": upName, "size": upSize},
	}
	b, _ := json.Marshal(cfg)
	cfgPath := filepath.Join(t.TempDir(), "page.json")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	script, _ := filepath.Abs(filepath.Join("testdata", "page.js"))
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", script, cfgPath)
	cmd.Env = append(os.Environ(), "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var stdout strings.Builder
	cmd.Stdout = &stdout
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	var logMu sync.Mutex
	var browserLog strings.Builder
	loggedIn := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			logMu.Lock()
			browserLog.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), "STEP logged-in") {
				once.Do(func() { close(loggedIn) })
			}
		}
	}()
	select {
	case <-loggedIn:
		srv.StartAgent(x.Env())
	case <-readDone:
	case <-time.After(90 * time.Second):
		t.Error("the page did not log in within 90 s")
	}
	<-readDone
	runErr := cmd.Wait()
	syscall.Kill(-pgid, syscall.SIGKILL) // what is left of the group node led
	logMu.Lock()
	t.Logf("browser:\n%s", browserLog.String())
	logMu.Unlock()
	out := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	var r result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("node page.js: %v; no result (%v): %q", runErr, err, stdout.String())
	}
	if !r.OK {
		t.Errorf("browser: %s (screenshot %s)", r.Error, r.FailShot)
	}
	for _, e := range r.PageErrors {
		t.Errorf("page error: %s", e)
	}

	// Login and the device list.
	if r.BadLogin == "" {
		t.Error("a wrong password showed no error")
	}
	if r.Whoami != srv.AdminUser {
		t.Errorf("signed in as %q, want %q", r.Whoami, srv.AdminUser)
	}
	ags := srv.Agents.Agents()
	if len(ags) != 1 || r.Node != ags[0].NodeID {
		t.Errorf("the page showed %q online; the registry has %+v", r.Node, ags)
	}
	if !r.OnlineSeen || !r.SearchMissHides || !r.SearchHitShows {
		t.Errorf("online seen %v, search miss hides %v, hit shows %v", r.OnlineSeen, r.SearchMissHides, r.SearchHitShows)
	}
	// Details: from the device record, sysinfo and netinfo.
	t.Logf("details: %v", r.General)
	for _, k := range []string{"Name", "Group", "Operating system", "CPU", "Memory", "Network"} {
		if r.General[k] == "" {
			t.Errorf("details lack %s", k)
		}
	}
	// Our agent's version, as it answered server-lite's update query
	// (the record the details read through getsysinfo's nodeinfo).
	if d, err := srv.Store.Device(r.Node); err != nil || d.AgentVersionName == "" || r.General["Agent version"] != d.AgentVersionName {
		t.Errorf("details show agent version %q; the record has %q (%v)", r.General["Agent version"], d.AgentVersionName, err)
	}
	if !strings.Contains(r.General["Network"], "127.0.0.1") {
		t.Errorf("network %q lacks 127.0.0.1", r.General["Network"])
	}
	if r.SaveState != "Saved" {
		t.Errorf("saving notes and tags: %q", r.SaveState)
	} else if d, err := srv.Store.Device(r.Node); err != nil || strings.Join(d.Tags, ",") != "alpha,beta" || d.Desc != "web page note" {
		t.Errorf("stored tags %v, notes %q (%v), want alpha,beta and the note", d.Tags, d.Desc, err)
	}
	if len(r.DeviceEvents) == 0 || len(r.AllEvents) == 0 {
		t.Errorf("events: %d for the device, %d in all", len(r.DeviceEvents), len(r.AllEvents))
	}
	t.Logf("device events: %q", r.DeviceEvents)

	if !r.RunOK {
		t.Errorf("run commands: the page shows %q, want run-5-cmd", r.RunOut)
	}
	// Desktop.
	checkCanvas(t, "desktop", r.Desktop, w, h, cfg["desktop"].(map[string]any)["probes"].([]probe))
	t.Logf("upload progress bar values seen: %d (first %v)", len(r.Progress), r.Progress[:min(len(r.Progress), 5)])
	if got := keys(); !containsKeysym(got, 'q') {
		t.Errorf("the key window got keysyms %v, want q (0x71)", got)
	}
	// Terminal.
	if !r.TermOK {
		t.Errorf("the terminal never showed web-42-page; it shows:\n%s\nreceived: %s", r.TermText, r.TermRaw)
	}
	// Files.
	if len(r.Progress) < 3 {
		t.Errorf("upload progress values %v: the bar did not move", r.Progress)
	}
	if r.UploadSHA == "" || r.DownloadSHA != r.UploadSHA || r.DownloadSize != upSize {
		t.Errorf("download %d bytes sha256 %s, uploaded %d bytes sha256 %s", r.DownloadSize, r.DownloadSHA, upSize, r.UploadSHA)
	}
	if !r.FilesOps {
		t.Error("rename, new folder, delete did not complete")
	}
	if _, err := os.Stat(filepath.Join(filesDir, "newdir")); err != nil {
		t.Errorf("new folder: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filesDir, "renamed.bin")); !os.IsNotExist(err) {
		t.Errorf("deleted file still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filesDir, upName)); !os.IsNotExist(err) {
		t.Errorf("renamed file still under its old name: %v", err)
	}
	// Groups and users, made in the page.
	if !strings.Contains(r.Msh, "MeshID=") || !strings.Contains(r.Msh, "MeshServer=") {
		t.Errorf("the group's .msh link gave %q", r.Msh)
	}
	if !strings.Contains(r.Install, "meshsettings?id=") || !strings.Contains(r.Install, "meshinstall.sh") {
		t.Errorf("install command line %q", r.Install)
	}
	if u, err := srv.Accounts.Get(accounts.UserID("bob")); err != nil {
		t.Errorf("the user made in the page: %v", err)
	} else if len(u.Links) != 1 {
		t.Errorf("bob's links %v, want one group", u.Links)
	}
	t.Logf("bob in Other: %q", r.BobMember)
	// The restricted user.
	if r.Bob == nil {
		t.Error("no result for the restricted user")
	} else {
		if len(r.Bob.Devices) != 0 || len(r.Bob.Groups) != 1 || !strings.HasPrefix(r.Bob.Groups[0], "Other") {
			t.Errorf("bob sees groups %q and devices %q, want only Other and no device", r.Bob.Groups, r.Bob.Devices)
		}
		if r.BobEmbedDeviceShown {
			t.Error("bob's embed URL for the admin's device showed the device")
		}
	}
	// The embed URL.
	checkCanvas(t, "embed", r.EmbedDesktop, w, h, cfg["desktop"].(map[string]any)["probes"].([]probe))
	if r.Embed == nil {
		t.Error("no embed result")
	} else {
		if strings.Contains(r.Embed.URL, "pass=") || strings.Contains(r.Embed.URL, tok.Pass) {
			t.Errorf("the token's password stayed in the address bar: %s", r.Embed.URL)
		}
		// hide=31 as on MeshCentral: header, top bar, footer, title and
		// main menu go; the desktop's own toolbar stays.
		if strings.Join(r.Embed.Visible, ",") != "desktoolbar,desk" {
			t.Errorf("the embed page shows %v, want only the desktop toolbar and canvas", r.Embed.Visible)
		}
	}
	// Readable on a phone: nothing wider than a 390-pixel screen.
	for name, f := range map[string]*phoneFit{"device list": r.PhoneList, "device details": r.PhoneDevice} {
		switch {
		case f == nil:
			t.Errorf("phone, %s: not measured", name)
		case f.Width != 390 || f.ScrollWidth > f.Width || len(f.Over) > 0:
			t.Errorf("phone, %s: %d px wide, document %d px, sticking out: %q", name, f.Width, f.ScrollWidth, f.Over)
		}
	}
}

func containsKeysym(l []xproto.Keysym, k xproto.Keysym) bool {
	for _, v := range l {
		if v == k {
			return true
		}
	}
	return false
}

func checkCanvas(t *testing.T, what string, c *canvasResult, w, h int, probes []probe) {
	t.Helper()
	if c == nil {
		t.Errorf("%s: no canvas result", what)
		return
	}
	t.Logf("%s: canvas %dx%d, %d tiles, status %q, probes %v", what, c.W, c.H, c.Tiles, c.Status, c.Probes)
	if c.W != w || c.H != h || c.Tiles == 0 {
		t.Errorf("%s: canvas %dx%d with %d tiles, want the %dx%d screen", what, c.W, c.H, c.Tiles, w, h)
	}
	for i, p := range probes {
		if i >= len(c.Probes) {
			t.Errorf("%s: probe %d missing", what, i)
			continue
		}
		for j := range 3 {
			if d := c.Probes[i][j] - int(p.RGB[j]); d > 24 || d < -24 {
				t.Errorf("%s: pixel (%d,%d) = %v, want %v", what, p.X, p.Y, c.Probes[i], p.RGB)
				break
			}
		}
	}
}
