// Package agentdl serves /meshagents the way MeshCentral 1.1.55 does
// (webserver.js handleMeshAgentRequest), so MeshCentral's install scripts
// and "download the agent for this group" links work against server-lite:
//
//	?id=N                    the agent binary for MeshCentral agent id N (6 = Linux x86-64)
//	?id=N&meshid=G           the same; for a Windows id the group's .msh is appended (unsigned binaries)
//	?id=G&meshinstall=N      binary N with MeshCentral's JavaScript installer for group G appended (C agent only)
//	?script=N                MeshCentral's install script N (1 = meshinstall-linux.sh), if provided
//
// Binaries come from, in order: our agent's release builds in Config.Dir
// (build/release.sh output), our agent built on first use from
// Config.SourceTree, and the C agent's binaries in Config.CAgentDir under
// MeshCentral's file names (MeshCentral's own agents/ directory works).
// Config.PreferCAgent puts the C agent first.
//
// No login is needed, as in MeshCentral without lockAgentDownload: the
// binaries and the .msh hold no secret (the .msh only says where the
// server is and which group to join; /meshsettings serves it to anyone).
package agentdl

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meshgo/meshagent/build/agentflags"
)

// Config says where binaries come from.
type Config struct {
	// Dir holds our agent's release builds, named as build/release.sh
	// names them: meshagent-<goos>-<goarch>[.exe].
	Dir string
	// SourceTree is this repository's root; when set (and the go tool is
	// on PATH) a build missing from Dir is made on first use with
	// CGO_ENABLED=0, as release.sh does (static, no libc to match), into
	// CacheDir.
	SourceTree, CacheDir string
	// CAgentDir holds the C agent's binaries under MeshCentral's names
	// (meshagent_x86-64, MeshService64.exe, ...) and optionally
	// MeshCentral's install scripts (meshinstall-linux.sh, ...).
	CAgentDir string
	// PreferCAgent serves the C agent for ids both can serve.
	PreferCAgent bool
	// Msh returns the .msh of an agent group, by id with or without
	// "mesh//"; an error means no such group.
	Msh func(groupID string) ([]byte, error)
	// TrustedCert reports whether browsers and tools trust the web
	// certificate; if not, install scripts are told to skip verification
	// (wget --no-check-certificate, curl -k), as MeshCentral does.
	TrustedCert func() bool
	Logger      *slog.Logger
}

// Handler serves /meshagents.
type Handler struct {
	cfg Config
	log *slog.Logger

	mu     sync.Mutex
	builds map[string]*build // by goos/goarch
}

type build struct {
	once sync.Once
	path string
	err  error
}

// New checks the directories named in cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, d := range []struct{ what, dir string }{{"agent builds", cfg.Dir}, {"C agent", cfg.CAgentDir}, {"source tree", cfg.SourceTree}} {
		if d.dir == "" {
			continue
		}
		if fi, err := os.Stat(d.dir); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("agent downloads: %s directory %q: not a directory (%v)", d.what, d.dir, err)
		}
	}
	if cfg.SourceTree != "" && cfg.CacheDir == "" {
		return nil, errors.New("agent downloads: a source tree needs a cache directory for the builds")
	}
	return &Handler{cfg: cfg, log: cfg.Logger, builds: map[string]*build{}}, nil
}

// agentFile is a file to serve for an agent id.
type agentFile struct {
	path string
	ours bool
}

// find returns the binary for an agent id, or ok=false.
func (h *Handler) find(id int) (agentFile, agentType, bool) {
	t, ok := agentTypes[id]
	if !ok {
		return agentFile{}, t, false
	}
	c := func() (agentFile, bool) {
		if h.cfg.CAgentDir == "" {
			return agentFile{}, false
		}
		p := filepath.Join(h.cfg.CAgentDir, t.local)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return agentFile{path: p}, true
		}
		return agentFile{}, false
	}
	o := func() (agentFile, bool) {
		if t.goos == "" {
			return agentFile{}, false
		}
		name := "meshagent-" + t.goos + "-" + t.goarch
		if t.goos == "windows" {
			name += ".exe"
		}
		if h.cfg.Dir != "" {
			p := filepath.Join(h.cfg.Dir, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return agentFile{path: p, ours: true}, true
			}
		}
		if h.cfg.SourceTree != "" {
			p, err := h.build(t.goos, t.goarch, name)
			if err == nil {
				return agentFile{path: p, ours: true}, true
			}
			h.log.Warn("agent download: building our agent failed", "target", t.goos+"/"+t.goarch, "err", err)
		}
		return agentFile{}, false
	}
	first, second := o, c
	if h.cfg.PreferCAgent {
		first, second = c, o
	}
	if b, ok := first(); ok {
		return b, t, true
	}
	b, ok := second()
	return b, t, ok
}

// build makes our agent for one target once per process (later requests
// wait for the first build), so a server run from a changed tree serves
// the tree it was started from.
func (h *Handler) build(goos, goarch, name string) (string, error) {
	h.mu.Lock()
	b := h.builds[goos+"/"+goarch]
	if b == nil {
		b = &build{}
		h.builds[goos+"/"+goarch] = b
	}
	h.mu.Unlock()
	b.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("go tool not found: %w", err)
			return
		}
		if err := os.MkdirAll(h.cfg.CacheDir, 0o700); err != nil {
			b.err = err
			return
		}
		out := filepath.Join(h.cfg.CacheDir, name)
		tmp := out + ".tmp"
		begin := time.Now()
		// Not -trimpath as release.sh: that misses the build cache of
		// every package, and the first download waits for the build.
		// The tags are release.sh's (build/agentflags).
		cmd := exec.Command(goTool, "build", "-tags", agentflags.Tags, "-ldflags", "-s -w", "-o", tmp, "./cmd/meshagent")
		cmd.Dir = h.cfg.SourceTree
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
		if msg, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			b.err = fmt.Errorf("go build %s/%s: %w\n%s", goos, goarch, err, msg)
			return
		}
		if err := os.Rename(tmp, out); err != nil {
			b.err = err
			return
		}
		b.path = out
		h.log.Info("agent download: built our agent", "target", goos+"/"+goarch, "path", out, "took", time.Since(begin).Round(time.Millisecond).String())
	})
	return b.path, b.err
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	switch {
	case q.Has("meshinstall") && q.Has("id"):
		h.serveInstaller(w, r, q.Get("id"), q.Get("meshinstall"))
	case q.Has("id"):
		h.serveBinary(w, r, q.Get("id"), q.Get("meshid"), q.Has("meshid"))
	case q.Has("script"):
		h.serveScript(w, r, q.Get("script"))
	default:
		http.NotFound(w, r)
	}
}

func agentID(s string) (int, bool) {
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

func (h *Handler) serveBinary(w http.ResponseWriter, r *http.Request, idStr, meshID string, hasMeshID bool) {
	id, ok := agentID(idStr)
	if !ok {
		http.NotFound(w, r)
		return
	}
	b, t, ok := h.find(id)
	if !ok {
		notFound(w, fmt.Sprintf("no agent binary for id %d on this server", id))
		return
	}
	if !hasMeshID || t.platform != "win32" {
		f, fi, err := open(b.path)
		if err != nil {
			h.log.Warn("agent download", "path", b.path, "err", err)
			notFound(w, "agent binary unreadable")
			return
		}
		defer f.Close()
		attachment(w, t.rname)
		http.ServeContent(w, r, "", fi.ModTime(), f)
		return
	}
	// Windows with a group: the .msh goes inside the executable, as
	// MeshCentral's streamExeWithMeshPolicy does for unsigned binaries.
	msh, name, err := h.groupMsh(meshID)
	if err != nil {
		http.Error(w, "Unauthorized", http.StatusUnauthorized) // MeshCentral: 401 for an unknown group
		return
	}
	f, fi, err := open(b.path)
	if err != nil {
		notFound(w, "agent binary unreadable")
		return
	}
	defer f.Close()
	if signed, err := peSigned(f); err != nil || signed {
		// MeshCentral rewrites the certificate table of a signed binary;
		// server-lite does not re-sign, so it cannot embed there.
		notFound(w, fmt.Sprintf("agent id %d is a signed Windows binary: server-lite cannot embed the .msh in it; download /meshagents?id=%d and put /meshsettings?id=<group> beside it as %s.msh", id, id, strings.TrimSuffix(t.rname, ".exe")))
		return
	}
	rname := strings.TrimSuffix(t.rname, ".exe") + "-" + fileSafe(name) + ".exe"
	h.log.Info("agent download", "id", id, "group", meshID, "ours", b.ours, "remote", r.RemoteAddr)
	streamWithTrailer(w, r, f, fi, rname, msh, meshPolicyGUID)
}

// serveInstaller sends binary N with MeshCentral's meshinstall-linux.js
// appended, the group's .msh merged into it as a JSON object: run, the C
// agent executes that script (an interactive installer). Our agent runs no
// appended JavaScript, so only the C agent is served this way.
func (h *Handler) serveInstaller(w http.ResponseWriter, r *http.Request, groupID, idStr string) {
	msh, _, err := h.groupMsh(groupID)
	if err != nil {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	id, ok := agentID(idStr)
	if !ok {
		http.NotFound(w, r)
		return
	}
	t, known := agentTypes[id]
	if !known || t.platform == "win32" {
		notFound(w, "no installer for this agent id")
		return
	}
	var b agentFile
	if h.cfg.CAgentDir != "" {
		p := filepath.Join(h.cfg.CAgentDir, t.local)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			b = agentFile{path: p}
		}
	}
	js, err := h.script(6)
	if b.path == "" || err != nil {
		notFound(w, "the JavaScript installer needs the C agent and MeshCentral's meshinstall-linux.js in the C agent directory; our agent runs no appended JavaScript: use /meshagents?script=1 or /meshagents?id=N with /meshsettings")
		return
	}
	obj := map[string]string{}
	for _, line := range strings.Split(strings.ReplaceAll(string(msh), "\r", ""), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok && k != "" {
			obj[k] = v
		}
	}
	mj, _ := json.Marshal(obj)
	const placeholder = "var msh = {};"
	if !bytes.Contains(js, []byte(placeholder)) {
		notFound(w, "meshinstall-linux.js in the C agent directory has no settings placeholder")
		return
	}
	js = bytes.Replace(js, []byte(placeholder), []byte("var msh = "+string(mj)+";"), 1)
	f, fi, err := open(b.path)
	if err != nil {
		notFound(w, "agent binary unreadable")
		return
	}
	defer f.Close()
	h.log.Info("agent installer download", "id", id, "group", groupID, "remote", r.RemoteAddr)
	streamWithTrailer(w, r, f, fi, "meshagent", js, javaScriptGUID)
}

func (h *Handler) serveScript(w http.ResponseWriter, r *http.Request, idStr string) {
	id, ok := agentID(idStr)
	if !ok {
		http.NotFound(w, r)
		return
	}
	s, known := installScripts[id]
	data, err := h.script(id)
	if !known || err != nil {
		notFound(w, "install scripts are MeshCentral's files: put MeshCentral's agents directory (meshinstall-linux.sh, ...) in the C agent directory to serve them")
		return
	}
	opts := map[string]string{"wgetoptionshttp": "", "wgetoptionshttps": "", "curloptionshttp": "-L ", "curloptionshttps": "-L "}
	if h.cfg.TrustedCert == nil || !h.cfg.TrustedCert() {
		opts["wgetoptionshttps"] += "--no-check-certificate "
		opts["curloptionshttps"] += "-k "
	}
	for k, v := range opts {
		data = bytes.ReplaceAll(data, []byte("{{{"+k+"}}}"), []byte(v))
	}
	attachment(w, s.rname)
	w.Write(data)
}

// script reads an install script; the shell and JavaScript ones are
// served with LF line ends, as MeshCentral does for its "linux" scripts.
func (h *Handler) script(id int) ([]byte, error) {
	s, ok := installScripts[id]
	if !ok || h.cfg.CAgentDir == "" {
		return nil, os.ErrNotExist
	}
	b, err := os.ReadFile(filepath.Join(h.cfg.CAgentDir, s.local))
	if err != nil {
		return nil, err
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")), nil
}

func (h *Handler) groupMsh(id string) (msh []byte, groupName string, err error) {
	if h.cfg.Msh == nil || id == "" || len(id) > 100 {
		return nil, "", errors.New("no group")
	}
	msh, err = h.cfg.Msh(id)
	if err != nil {
		return nil, "", err
	}
	for _, line := range strings.Split(string(msh), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "MeshName="); ok {
			groupName = v
		}
	}
	return msh, groupName, nil
}

func open(path string) (*os.File, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// peSigned reports whether a Windows executable has an Authenticode
// certificate table (data directory entry 4).
func peSigned(f *os.File) (bool, error) {
	p, err := pe.NewFile(f)
	if err != nil {
		return false, fmt.Errorf("not a Windows executable: %w", err)
	}
	var dirs []pe.DataDirectory
	switch oh := p.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		dirs = oh.DataDirectory[:oh.NumberOfRvaAndSizes]
	case *pe.OptionalHeader32:
		dirs = oh.DataDirectory[:oh.NumberOfRvaAndSizes]
	}
	_, err = f.Seek(0, io.SeekStart)
	return len(dirs) > pe.IMAGE_DIRECTORY_ENTRY_SECURITY && dirs[pe.IMAGE_DIRECTORY_ENTRY_SECURITY].VirtualAddress != 0, err
}

// streamWithTrailer sends the binary, then extra, its length (4 bytes big
// endian) and the GUID: the layout exeHandler.js writes and the C agent
// reads back from the end of its own file.
func streamWithTrailer(w http.ResponseWriter, r *http.Request, f *os.File, fi os.FileInfo, name string, extra []byte, guid string) {
	g, _ := hex.DecodeString(guid)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(extra)))
	attachment(w, name)
	w.Header().Set("Last-Modified", fi.ModTime().UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size()+int64(len(extra))+4+int64(len(g)), 10))
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, f); err != nil {
		return
	}
	w.Write(extra)
	w.Write(n[:])
	w.Write(g)
}

func attachment(w http.ResponseWriter, name string) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="`+url.PathEscape(fileSafe(name))+`"`)
}

// fileSafe drops the characters MeshCentral drops from download names.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(`\/:*?"<>|' `, r) || r < 0x20 {
			return -1
		}
		return r
	}, s)
}

func notFound(w http.ResponseWriter, why string) {
	http.Error(w, "Not Found: "+why, http.StatusNotFound)
}
