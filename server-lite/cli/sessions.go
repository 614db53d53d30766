package cli

// Session commands: shell, upload, download, ls and screenshot. Each takes
// the path a user's browser takes (control.ashx authcookie and tunnel, then
// meshrelay.ashx) through server-lite/sessionclient; these functions only
// parse flags, move bytes between local files and the clients, and print.

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image/png"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/meshgo/meshagent/proto/handshake"
	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/proto/webrtc"
	"github.com/meshgo/meshagent/server-lite/sessionclient"
)

// sessionStdin is what the interactive shell reads; tests replace it.
var sessionStdin io.Reader = os.Stdin

func sessionCommands() []command {
	idFlag := func(fs *flag.FlagSet) { fs.String("id", "", "device id (with or without node//)") }
	rtcFlag := func(fs *flag.FlagSet) {
		fs.Bool("webrtc", false, "move the transfer onto a WebRTC data channel (ICE on 127.0.0.1 only); the relay stays the control path")
	}
	return []command{
		{name: "shell", args: "--id NODE [--run COMMAND]", help: "remote shell: interactive, or --run types COMMAND and exit and prints its output", run: runShell,
			flags: func(fs *flag.FlagSet) {
				idFlag(fs)
				fs.String("run", "", "run this command in the remote POSIX shell, print its output and exit with failure if it fails")
				fs.Bool("user-shell", false, "the logged-in user's shell (protocol 8) instead of the agent's (root) shell")
			}},
		{name: "upload", args: "--id NODE [--webrtc] [--name NAME] LOCALFILE REMOTEDIR", help: "copy a local file into a remote folder (committed atomically by our agent)", run: runUpload,
			flags: func(fs *flag.FlagSet) {
				idFlag(fs)
				rtcFlag(fs)
				fs.String("name", "", "remote file name (default: the local file's name)")
			}},
		{name: "download", args: "--id NODE [--webrtc] REMOTEFILE [LOCALFILE | -]", help: "copy a remote file to a local file (written whole or not at all) or to stdout (-)", run: runDownload,
			flags: func(fs *flag.FlagSet) {
				idFlag(fs)
				rtcFlag(fs)
			}},
		{name: "ls", args: "--id NODE [REMOTEDIR]", help: "list a remote folder: type, size, modified, name", run: runLs,
			flags: idFlag},
		{name: "screenshot", args: "--id NODE [--display N] [--webrtc] [-o FILE.png]", help: "capture one full frame of the remote desktop as PNG", run: runScreenshot,
			flags: func(fs *flag.FlagSet) {
				idFlag(fs)
				rtcFlag(fs)
				fs.Int("display", -1, "display id as the agent lists it (default: the agent's selection)")
				fs.String("o", "screenshot.png", "output file")
			}},
	}
}

// ctlCaller adapts the control.ashx client to sessionclient.Control.
type ctlCaller struct{ c *client }

func (a ctlCaller) Call(ctx context.Context, req map[string]any) (map[string]any, error) {
	return a.c.call(ctx, req)
}

// sessionConn is an open relay session and what it was opened with.
type sessionConn struct {
	ctl    *client
	relay  *sessionclient.Counted
	ch     session.Channel
	offer  *webrtc.Offerer
	cancel context.CancelFunc
}

func (s *sessionConn) close() {
	s.ch.Close()
	s.ctl.close()
	s.cancel()
}

// openSession logs in, opens a relay session of protocol proto to --id and,
// with --webrtc, wraps it for the switch-over (the caller starts Offer once
// its reader runs). --timeout bounds only this setup: transfers and shells
// run until done or interrupted.
func openSession(ctx context.Context, o *opts, fs *flag.FlagSet, proto int, options map[string]any) (*sessionConn, error) {
	id := flagStr(fs, "id")
	if id == "" {
		return nil, usageError("--id is required")
	}
	c, cctx, cancel, err := connect(ctx, o)
	if err != nil {
		return nil, err
	}
	ch, err := sessionclient.Open(cctx, ctlCaller{c}, sessionclient.Relay{URL: o.url, TLS: tlsConfig(o.tlsHash),
		NodeID: handshake.NodeIDPrefix + id[strings.LastIndexByte(id, '/')+1:], Protocol: proto, Options: options})
	if err != nil {
		c.close()
		cancel()
		return nil, err
	}
	s := &sessionConn{ctl: c, relay: ch, ch: ch, cancel: cancel}
	if fs.Lookup("webrtc") != nil && flagBool(fs, "webrtc") {
		// server-lite listens on 127.0.0.1 only, so its agents are on this
		// machine: loopback ICE is enough and nothing leaves the host.
		s.offer = webrtc.NewOfferer(ch, webrtc.Config{LoopbackOnly: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		s.ch = s.offer
	}
	return s, nil
}

// switchWebRTC runs the offer when --webrtc was given and reports the
// transport that carries the session: "relay" or "webrtc". A switch-over
// that fails before the data channel opened leaves the session on the
// relay (a warning, as the browser does); a later failure ends it.
func (s *sessionConn) switchWebRTC(ctx context.Context, o *opts) (string, error) {
	if s.offer == nil {
		return "relay", nil
	}
	if err := s.offer.Offer(ctx); err != nil {
		if errors.Is(err, webrtc.ErrNoWebRTC) {
			fmt.Fprintf(o.stderr, "warning: %v\n", err)
			return "relay", nil
		}
		return "", err
	}
	return "webrtc", nil
}

// relayBytes is what crossed the relay so far, both ways.
func (s *sessionConn) relayBytes() int64 {
	in, out := s.relay.Bytes()
	return in + out
}

type transferResult struct {
	Path       string  `json:"path"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MiBps      float64 `json:"mibPerSecond"`
	Transport  string  `json:"transport"`
	RelayBytes int64   `json:"relayBytes"`
}

func (o *opts) printTransfer(r transferResult) error {
	if r.Seconds > 0 {
		r.MiBps = float64(r.Bytes) / (1 << 20) / r.Seconds
	}
	if o.json {
		return o.printJSON(r)
	}
	o.line(r.Path, r.Bytes, strconv.FormatFloat(r.Seconds, 'f', 3, 64), strconv.FormatFloat(r.MiBps, 'f', 1, 64), r.Transport)
	return nil
}

func runUpload(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	if len(args) != 2 {
		return usageError("give a local file and a remote folder")
	}
	local, dir := args[0], args[1]
	f, err := os.Open(local)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", local)
	}
	name := flagStr(fs, "name")
	if name == "" {
		name = filepath.Base(local)
	}
	s, fc, transport, err := openFiles(ctx, o, fs)
	if err != nil {
		return err
	}
	defer s.close()
	start := time.Now()
	if err := fc.Upload(ctx, dir, name, f, st.Size(), nil); err != nil {
		return err
	}
	return o.printTransfer(transferResult{Path: remoteJoin(dir, name), Bytes: st.Size(), Seconds: time.Since(start).Seconds(),
		Transport: transport, RelayBytes: s.relayBytes()})
}

// remoteJoin joins a remote folder and name with the folder's separator.
func remoteJoin(dir, name string) string {
	if strings.Contains(dir, `\`) && !strings.Contains(dir, "/") {
		return strings.TrimRight(dir, `\`) + `\` + name
	}
	return path.Join(dir, name)
}

func runDownload(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return usageError("give a remote file and optionally a local file")
	}
	remote := args[0]
	base := path.Base(strings.ReplaceAll(remote, `\`, "/"))
	local := base
	if len(args) == 2 {
		local = args[1]
	}
	if local == "-" {
		return downloadStdout(ctx, o, fs, remote)
	}
	if st, err := os.Stat(local); err == nil && st.IsDir() {
		local = filepath.Join(local, base)
	}
	// A temporary file beside the target, renamed only when complete: an
	// interrupted or refused download never leaves a truncated file.
	tmp, err := os.CreateTemp(filepath.Dir(local), "."+filepath.Base(local)+".part-*")
	if err != nil {
		return err
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	s, fc, transport, err := openFiles(ctx, o, fs)
	if err != nil {
		return err
	}
	defer s.close()
	start := time.Now()
	n, err := fc.Download(ctx, remote, tmp, nil)
	if err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644&^umask()); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), local); err != nil {
		return err
	}
	done = true
	return o.printTransfer(transferResult{Path: local, Bytes: n, Seconds: time.Since(start).Seconds(), Transport: transport, RelayBytes: s.relayBytes()})
}

// downloadStdout streams a remote file to stdout, for pipes; nothing else
// is printed there.
// openFiles opens a files session (protocol 5) and, with --webrtc, moves
// it to a data channel. It returns the transport's name for the report;
// on error nothing is left open.
func openFiles(ctx context.Context, o *opts, fs *flag.FlagSet) (*sessionConn, *sessionclient.Files, string, error) {
	s, err := openSession(ctx, o, fs, session.ProtoFiles, nil)
	if err != nil {
		return nil, nil, "", err
	}
	fc := sessionclient.NewFiles(s.ch)
	transport, err := s.switchWebRTC(ctx, o)
	if err != nil {
		s.close()
		return nil, nil, "", err
	}
	return s, fc, transport, nil
}

func downloadStdout(ctx context.Context, o *opts, fs *flag.FlagSet, remote string) error {
	s, fc, _, err := openFiles(ctx, o, fs)
	if err != nil {
		return err
	}
	defer s.close()
	_, err = fc.Download(ctx, remote, o.stdout, nil)
	return err
}

// umask is applied by hand because CreateTemp makes 0600 files and a
// downloaded file should get the usual mode.
func umask() os.FileMode { return 0o022 }

func runLs(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	if len(args) > 1 {
		return usageError("give at most one remote folder")
	}
	dir := ""
	if len(args) == 1 {
		dir = args[0]
	}
	s, err := openSession(ctx, o, fs, session.ProtoFiles, nil)
	if err != nil {
		return err
	}
	defer s.close()
	fc := sessionclient.NewFiles(s.ch)
	lctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	es, err := fc.List(lctx, dir)
	if err != nil {
		return err
	}
	if o.json {
		return o.printJSON(es)
	}
	for _, e := range es {
		o.line(e.Type, e.Size, e.MTime, e.Name)
	}
	return nil
}

func runShell(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected arguments (use --run COMMAND)")
	}
	proto := session.ProtoTerminal
	if flagBool(fs, "user-shell") {
		proto = session.ProtoUserShell
	}
	cmdline := flagStr(fs, "run")
	in, _ := sessionStdin.(*os.File)
	interactive := cmdline == "" && in != nil && isTTY(in)
	options := map[string]any{}
	if interactive {
		if cols, rows, ok := termSize(in); ok {
			options["cols"], options["rows"] = cols, rows
		}
	} else {
		// A wide terminal so --run output is not wrapped by the pty.
		options["cols"], options["rows"] = 250, 50
	}
	s, err := openSession(ctx, o, fs, proto, options)
	if err != nil {
		return err
	}
	defer s.close()
	t := sessionclient.NewTerminal(s.ch)
	if cmdline != "" {
		res, err := t.Run(ctx, cmdline)
		if err != nil {
			return err
		}
		if o.json {
			if err := o.printJSON(map[string]any{"output": string(res.Output), "status": res.Status}); err != nil {
				return err
			}
		} else {
			o.stdout.Write(res.Output)
			if len(res.Output) > 0 && !bytes.HasSuffix(res.Output, []byte("\n")) {
				fmt.Fprintln(o.stdout)
			}
		}
		if res.Status != 0 {
			return fmt.Errorf("remote command exited with status %d", res.Status)
		}
		return nil
	}
	return interactiveShell(ctx, o, t, in, interactive)
}

// interactiveShell copies stdin to the remote terminal and its output to
// stdout until the remote shell ends. On a terminal it uses raw mode (so
// ^C, arrows and editing reach the remote shell) and follows window size
// changes; Ctrl-] disconnects. Otherwise stdin is sent as it comes and its
// end types exit, which ends the remote shell once it has run the input.
func interactiveShell(ctx context.Context, o *opts, t *sessionclient.Terminal, in *os.File, raw bool) error {
	if raw {
		restore, err := makeRaw(in)
		if err != nil {
			return fmt.Errorf("raw terminal: %w", err)
		}
		defer restore()
		resize, stop := notifyResize()
		defer stop()
		go func() {
			for range resize {
				if cols, rows, ok := termSize(in); ok {
					t.Resize(ctx, cols, rows)
				}
			}
		}()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quit := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 4096)
		lastNL := true
		for {
			n, err := sessionStdin.Read(buf)
			if n > 0 {
				p := buf[:n]
				lastNL = p[n-1] == '\n'
				if raw {
					if i := bytes.IndexByte(p, 0x1d); i >= 0 { // Ctrl-]
						if i > 0 {
							t.Write(ctx, p[:i])
						}
						quit <- struct{}{}
						return
					}
				}
				if t.Write(ctx, p) != nil {
					return
				}
			}
			if err != nil {
				if !raw {
					// End the remote shell as the input ended. A typed
					// exit, not ^D: a ^D sent before the shell set up its
					// line editing can be lost in the pty's mode switch.
					end := " exit\n"
					if !lastNL {
						end = "\n" + end
					}
					t.Write(ctx, []byte(end))
				}
				return
			}
		}
	}()
	go func() {
		select {
		case <-quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		out, err := t.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				if raw {
					fmt.Fprint(o.stderr, "\r\n")
				}
				return nil // disconnected by the user
			}
			return nil // the remote shell ended
		}
		if out.Console != "" {
			fmt.Fprintf(o.stderr, "agent: %s\n", out.Console)
			continue
		}
		if _, err := o.stdout.Write(out.Data); err != nil {
			return err
		}
	}
}

func runScreenshot(ctx context.Context, o *opts, fs *flag.FlagSet, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected arguments (use -o FILE)")
	}
	out := flagStr(fs, "o")
	display := fs.Lookup("display").Value.(flag.Getter).Get().(int)
	s, err := openSession(ctx, o, fs, session.ProtoDesktop, nil)
	if err != nil {
		return err
	}
	defer s.close()
	d := sessionclient.NewDesktop(s.ch)
	transport, err := s.switchWebRTC(ctx, o)
	if err != nil {
		return err
	}
	if transport == "webrtc" {
		// The frame must come over the data channel: ask for a new one.
		if err := d.Refresh(ctx); err != nil {
			return err
		}
		screens := d.State().Screens
		if _, err := d.Wait(ctx, func(st sessionclient.State) bool { return st.Screens > screens }); err != nil {
			return err
		}
	}
	fctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	img, err := d.Frame(fctx, display)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".part-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	tmp.Close()
	os.Chmod(tmp.Name(), 0o644)
	if err := os.Rename(tmp.Name(), out); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	st := d.State()
	if o.json {
		return o.printJSON(map[string]any{"path": out, "width": img.Bounds().Dx(), "height": img.Bounds().Dy(),
			"display": st.Selected, "displays": st.Displays, "tiles": st.Tiles, "transport": transport})
	}
	o.line(out, img.Bounds().Dx(), img.Bounds().Dy(), st.Selected, transport)
	return nil
}
