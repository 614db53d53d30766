// Package files serves MeshCentral's files protocol (relay protocol 5,
// sessions.md §3) and the single-file transfer of devicefile.ashx
// (protocol 10) on a session.Channel.
//
// Requests are JSON in text frames (meshctrl) or binary frames (web UI);
// replies are binary JSON except the download start/cancel replies, which
// are text, exactly as the reference clients expect. Uploads are written to
// a temporary file beside the target and renamed over it only once
// complete, so an interrupted transfer never replaces a good file with a
// truncated one.
package files

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/meshgo/meshagent/proto/session"
)

// Options tune a files session. The zero value is the normal behaviour.
type Options struct {
	// Logger receives diagnostics and the audit trail of file operations;
	// nil means slog.Default().
	Logger *slog.Logger
	// ServerLog, when set, records each completed file operation in the
	// device's event log on the server, as MeshCentral's own core does
	// (meshcore.js MeshServerLogEx): msgid and args are what MeshCentral's
	// web UI translates (EventCreateFolder and the others), msg the English
	// text. Only operations that succeeded are reported.
	ServerLog func(msgid int, args []any, msg string)
}

// MeshCentral's event-log message ids for file operations
// (views/default.handlebars, meshcore.js MeshServerLogEx).
const (
	EventCreateFolder    = 44  // Create folder: "{0}"
	EventDelete          = 45  // Delete: "{0}"
	EventDeleteRecursive = 46  // Delete recursive: "{0}", {1} element(s) removed
	EventDeleteCount     = 47  // Delete: "{0}", {1} element(s) removed
	EventRename          = 48  // Rename: "{0}" to "{1}"
	EventDownload        = 49  // Download: "{0}"
	EventCopy            = 51  // Copy: "{0}" to "{1}"
	EventMove            = 52  // Move: "{0}" to "{1}"
	EventUploadDone      = 105 // Upload: "{0}", Size: {1}
	EventTransfer        = 106 // Download: "{0}", Size: {1} (devicefile.ashx)
)

// ErrNotAllowed is returned when the session's rights do not include file
// access; the channel is closed before anything is read from it.
var ErrNotAllowed = errors.New("files: rights do not allow file access")

// WebRTC is the files session's WebRTC upgrade policy (sessions.md §5):
// the browser may move it onto a data channel; its frames need no
// fragmenting and nothing is needed after the switch.
var WebRTC = session.UpgradePolicy{Allow: true}

// Serve runs one files session (info.Protocol 5, or 10 for a devicefile.ashx
// single download) on ch until the client closes it, sends a close control
// message, or ctx is done. It always closes ch. It returns nil when the
// client or the transport ended the session, ctx.Err() when ctx did, and
// ErrNotAllowed when the rights refuse file access. The relay client must have
// consumed `c`, the options message (passed in info.Options; protocol 10
// takes its file from there) and the protocol number.
func Serve(ctx context.Context, ch session.Channel, info session.Info, opts Options) error {
	defer ch.Close()
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	log = log.With("session", "files", "user", info.UserID, "protocol", info.Protocol)
	if !session.AllowFiles(info.Rights) {
		sendConsoleTo(ctx, ch, "Error: No Files Control Rights.", 2, 0)
		return ErrNotAllowed
	}
	switch info.Protocol {
	case session.ProtoFiles, 0:
	case session.ProtoFileTransfer:
		return serveTransfer(ctx, ch, info, log, opts.ServerLog)
	default:
		return fmt.Errorf("files: protocol %d is not a files protocol", info.Protocol)
	}
	ctx, cancel := context.WithCancel(ctx)
	s := &fileSession{ch: ch, log: log, ctx: ctx, serverLog: opts.ServerLog}
	defer s.wg.Wait()
	defer cancel()
	defer s.cleanup()
	err := s.run()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		// run only fails on the channel: the client or the relay went away
		// mid-reply (closed socket, broken pipe). That ends a session
		// normally from our side.
		log.Info("files session ended by the transport", "err", err)
	}
	return nil
}

type fileSession struct {
	ch  session.Channel
	log *slog.Logger
	ctx context.Context
	// serverLog reports completed operations to the server (Options.ServerLog).
	serverLog func(msgid int, args []any, msg string)
	wmu       sync.Mutex // serializes Channel.Write (background jobs write too)
	wg        sync.WaitGroup

	up *upload
	dl *download

	jobMu      sync.Mutex
	findCancel context.CancelFunc
	zipCancel  context.CancelFunc // running zip or unzip
}

func (s *fileSession) run() error {
	for {
		f, err := s.ch.Read(s.ctx)
		if err != nil {
			if errors.Is(err, session.ErrClosed) {
				return nil
			}
			if s.ctx.Err() != nil {
				return s.ctx.Err()
			}
			return nil // the transport went away: the normal end of a session
		}
		// Upload data: binary, and not starting with "{" (sessions.md §3.2).
		if data, ok := uploadChunk(f, s.up != nil); ok {
			err := s.uploadData(data)
			session.Recycle(f.Data) // written out: nothing holds it
			if err != nil {
				return err
			}
			continue
		}
		if s.dl != nil && isDownloadAck(f.Data, s.dl.id) {
			if err := s.downloadAck(s.dl); err != nil {
				return err
			}
			continue
		}
		req, err := parseRequest(f.Data)
		if err != nil {
			s.log.Debug("ignoring non-JSON frame", "binary", f.Binary, "len", len(f.Data))
			continue
		}
		if req.isControl() {
			if done, err := s.control(req); done || err != nil {
				return err
			}
			continue
		}
		if err := s.dispatch(req); err != nil {
			return err
		}
	}
}

// uploadChunk tells upload data from commands (sessions.md §3.2): while an
// upload is open, a binary frame not starting with "{" is file data, and a
// leading 0x00 is an escape byte that senders add before data starting with
// 0x00 or "{".
func uploadChunk(f session.Frame, uploading bool) ([]byte, bool) {
	if !uploading || !f.Binary || (len(f.Data) > 0 && f.Data[0] == '{') {
		return nil, false
	}
	if len(f.Data) > 0 && f.Data[0] == 0 {
		return f.Data[1:], true
	}
	return f.Data, true
}

// control answers in-band control messages; done means the client asked to
// end the session.
func (s *fileSession) control(r *request) (done bool, err error) {
	switch r.Type {
	case "ping":
		return false, s.sendText(rawCtrl("pong"))
	case "rtt":
		if r.Time != nil {
			return false, s.sendText(rawCtrl("rtt", "time", r.Time))
		}
	case "close":
		return true, nil
	}
	return false, nil
}

// dispatch runs one command. Only channel failures are returned; command
// failures are reported to the client and the session goes on.
func (s *fileSession) dispatch(r *request) error {
	switch r.Action {
	case "mkdir", "rm", "rename":
		// "" is the root and legitimate; a missing field is a broken client,
		// and must not turn into an operation on "/".
		if !r.HasPath {
			return s.fail(r, errors.New("missing path"))
		}
	}
	switch r.Action {
	case "ls":
		return s.ls(r)
	case "mkdir":
		return s.simple(r, func() error {
			p, err := resolvePath(r.Path)
			if err != nil {
				return err
			}
			s.audit("mkdir", "path", p)
			if err := os.Mkdir(p, 0o777); err != nil {
				return err
			}
			s.event(EventCreateFolder, fmt.Sprintf("Create folder: \"%s\"", p), p)
			return nil
		})
	case "rm":
		return s.simple(r, func() error { return s.rm(r) })
	case "rename":
		return s.simple(r, func() error { return s.rename(r) })
	case "copy":
		return s.simple(r, func() error { return s.copyMove(r, false) })
	case "move":
		return s.simple(r, func() error { return s.copyMove(r, true) })
	case "findfile":
		return s.startFind(r)
	case "cancelfindfile":
		s.jobMu.Lock()
		if s.findCancel != nil {
			s.findCancel()
			s.findCancel = nil
		}
		s.jobMu.Unlock()
	case "download":
		return s.download(r)
	case "upload":
		return s.startUpload(r)
	case "uploaddone":
		return s.uploadDone(r)
	case "uploadcancel":
		return s.uploadCancel(r)
	case "uploadhash":
		return s.uploadHash(r)
	case "zip":
		return s.startZip(r)
	case "unzip":
		return s.startUnzip(r)
	case "cancel":
		s.jobMu.Lock()
		if s.zipCancel != nil {
			s.zipCancel()
		}
		s.jobMu.Unlock()
	case "open", "markcoredump":
		// Opening on the remote desktop and core-dump bookkeeping belong to
		// the reference's desktop integration; a headless agent has neither.
		s.log.Debug("ignoring command", "action", r.Action)
	default:
		s.log.Debug("unknown files command", "action", r.Action)
	}
	return nil
}

// simple runs a command that has no reply of its own in the protocol and
// reports its failure (sessions.md §3.7: the reference stays silent).
func (s *fileSession) simple(r *request, op func() error) error {
	if err := op(); err != nil {
		return s.fail(r, err)
	}
	return nil
}

// fail tells the client a command failed: a binary {action:"error"} that
// carries the request's reqid (clients ignore unknown actions, and it has
// no "path" so the web UI cannot mistake it for a listing), plus a console
// line the web UI shows in its files status bar.
func (s *fileSession) fail(r *request, err error) error {
	msg := fmt.Sprintf("%s failed: %s", r.Action, reason(err))
	s.log.Info("files command failed", "action", r.Action, "err", err)
	if werr := s.sendJSON(errorReply{Action: "error", ReqID: r.ReqID, Cmd: r.Action, Error: msg}); werr != nil {
		return werr
	}
	return s.sendText(rawCtrl("console", "msg", msg, "msgid", 0, "timeout", 10))
}

type errorReply struct {
	Action string          `json:"action"`
	ReqID  json.RawMessage `json:"reqid,omitempty"`
	Cmd    string          `json:"cmd"`
	Error  string          `json:"error"`
}

func (s *fileSession) audit(op string, args ...any) {
	s.log.Info("files "+op, args...)
}

// event reports a completed operation to the server's event log.
func (s *fileSession) event(msgid int, msg string, args ...any) {
	if s.serverLog != nil {
		s.serverLog(msgid, args, msg)
	}
}

func (s *fileSession) write(f session.Frame) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.ch.Write(s.ctx, f)
}

// sendJSON writes v as JSON in a binary frame, the framing of most replies.
func (s *fileSession) sendJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("files: encode reply: %w", err)
	}
	return s.write(session.Frame{Binary: true, Data: b})
}

// sendText writes JSON in a text frame (download start/cancel, control).
func (s *fileSession) sendText(v any) error {
	b, ok := v.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(v); err != nil {
			return fmt.Errorf("files: encode reply: %w", err)
		}
	}
	return s.write(session.Frame{Data: b})
}

type lsReply struct {
	Path  string          `json:"path"`
	Dir   *[]entry        `json:"dir"`
	ReqID json.RawMessage `json:"reqid,omitempty"`
}

func (s *fileSession) ls(r *request) error {
	reply := lsReply{Path: echoPath(r.Path), ReqID: r.ReqID}
	if drives, ok := listRoot(r.Path); ok {
		reply.Dir = &drives
		return s.sendJSON(reply)
	}
	dir, err := resolvePath(r.Path)
	if err == nil {
		var list []entry
		if list, err = listDir(dir); err == nil {
			reply.Dir = &list
		}
	}
	if err != nil {
		s.log.Debug("ls failed", "path", r.Path, "err", err)
	}
	return s.sendJSON(reply) // dir:null makes the web UI go up a level
}

func (s *fileSession) rm(r *request) error {
	var errs []error
	for _, name := range r.DelFiles {
		p, err := join(r.Path, name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := os.Lstat(p); err != nil {
			errs = append(errs, err)
			continue
		}
		s.audit("delete", "path", p, "recursive", r.Rec)
		if r.Rec {
			n := countTree(p)
			if err = os.RemoveAll(p); err == nil { // never follows symlinks
				s.event(EventDeleteRecursive, fmt.Sprintf("Delete recursive: \"%s\", %d element(s) removed", p, n), p, n)
			}
		} else {
			// a non-empty folder fails, as in the reference
			if err = os.Remove(p); err == nil {
				s.event(EventDelete, fmt.Sprintf("Delete: \"%s\"", p), p)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", name, reason(err)))
		}
	}
	return errors.Join(errs...)
}

func (s *fileSession) rename(r *request) error {
	oldp, err := join(r.Path, r.OldName)
	if err != nil {
		return err
	}
	newp, err := join(r.Path, r.NewName)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(newp); err == nil {
		return fmt.Errorf("%s: already exists", r.NewName)
	}
	s.audit("rename", "from", oldp, "to", newp)
	if err := os.Rename(oldp, newp); err != nil {
		return err
	}
	// As meshcore.js: the old full path and the new name.
	s.event(EventRename, fmt.Sprintf("Rename: \"%s\" to \"%s\"", oldp, r.NewName), oldp, r.NewName)
	return nil
}

// countTree counts p and everything under it (symbolic links not
// followed), the element count of a recursive delete's event.
func countTree(p string) int {
	n := 0
	_ = filepath.WalkDir(p, func(string, fs.DirEntry, error) error { n++; return nil })
	return n
}

type hashReply struct {
	Action string          `json:"action"`
	ReqID  json.RawMessage `json:"reqid,omitempty"`
	Path   string          `json:"path"`
	Name   string          `json:"name,omitempty"`
	Tag    json.RawMessage `json:"tag,omitempty"`
	Hash   *string         `json:"hash"`
}

// uploadHash answers the web UI's resume probe with the SHA-384 of the
// whole existing file in upper-case hex, or null (sessions.md §3.6, §7 #10).
func (s *fileSession) uploadHash(r *request) error {
	reply := hashReply{Action: "uploadhash", ReqID: r.ReqID, Path: echoPath(r.Path), Name: r.Name, Tag: r.Tag}
	target, err := uploadTarget(r)
	if err == nil {
		var f *os.File
		if f, _, err = openRegular(target); err == nil {
			h := sha512.New384()
			_, err = io.Copy(h, &ctxReader{ctx: s.ctx, r: f})
			f.Close()
			if err == nil {
				x := strings.ToUpper(hex.EncodeToString(h.Sum(nil)))
				reply.Hash = &x
			}
		}
	}
	if err != nil {
		s.log.Debug("uploadhash", "err", err)
	}
	return s.sendJSON(reply)
}

// ctxReader stops long reads (hashing, copying) when the session ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}

// cleanup runs when the session ends for any reason.
func (s *fileSession) cleanup() {
	s.jobMu.Lock()
	if s.findCancel != nil {
		s.findCancel()
	}
	if s.zipCancel != nil {
		s.zipCancel()
	}
	s.jobMu.Unlock()
	if s.dl != nil {
		s.dl.close()
		s.dl = nil
	}
	if s.up != nil {
		s.finishUpload("session closed")
	}
}

// rawCtrl builds a control message (session.ControlJSON).
func rawCtrl(typ string, kv ...any) []byte { return session.ControlJSON(typ, kv...) }

// sendConsoleTo shows a status line to the client (best effort, bounded).
func sendConsoleTo(ctx context.Context, ch session.Channel, msg string, msgid, timeout int) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	kv := []any{"msg", msg, "msgid", msgid}
	if timeout > 0 {
		kv = append(kv, "timeout", timeout)
	}
	_ = ch.Write(ctx, session.Frame{Data: rawCtrl("console", kv...)})
}

// uploadTarget is the file an upload or uploadhash names: path joined with
// name, or path alone when there is no name.
func uploadTarget(r *request) (string, error) {
	if !r.HasPath {
		return "", errors.New("missing path")
	}
	if r.HasName {
		return join(r.Path, r.Name)
	}
	p, err := resolvePath(r.Path)
	if err != nil {
		return "", err
	}
	if filepath.Dir(p) == p {
		return "", errors.New("missing file name")
	}
	return p, nil
}
