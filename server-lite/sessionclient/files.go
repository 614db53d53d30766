package sessionclient

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/meshgo/meshagent/proto/session"
)

// Files is the client of the files protocol (relay protocol 5,
// sessions.md §3) on one session. One operation runs at a time.
type Files struct {
	ch session.Channel
	r  *reader
	// ChunkSize is the upload chunk (default 64 KiB, the web UI's size).
	ChunkSize int
	// Window is how many upload chunks, or download blocks, may be in
	// flight unacknowledged (default 16). More than one keeps the pipe full
	// over a relay with some latency; the agent still paces by acks.
	Window int
	reqid  int
}

// NewFiles starts a files client on ch, which must already carry protocol
// 5 (Open with session.ProtoFiles, possibly wrapped by a WebRTC Offerer).
func NewFiles(ch session.Channel) *Files {
	return &Files{ch: ch, r: newReader(ch, 64), ChunkSize: 64 << 10, Window: 16}
}

// Close ends the session.
func (f *Files) Close() error { return f.r.close() }

// Entry is one item of a folder listing.
type Entry struct {
	Name  string `json:"name"`
	Type  string `json:"type"` // "file", "dir" or "drive"
	Size  int64  `json:"size"`
	MTime string `json:"mtime,omitempty"` // as the agent formats it (YYYY-MM-DDTHH:MM:SSZ)
}

// ErrNoFolder reports a folder the agent could not read (dir:null).
var ErrNoFolder = errors.New("remote folder cannot be read")

func (f *Files) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// Text frames, as meshctrl sends its requests; agents accept both.
	return f.ch.Write(ctx, session.Frame{Data: b})
}

// reply is the union of the JSON replies a files session sends.
type reply struct {
	Action string          `json:"action"`
	Sub    string          `json:"sub"`
	ReqID  json.RawMessage `json:"reqid"`
	ID     json.RawMessage `json:"id"`
	// hasDir and nullDir tell an ls reply, which has no action, and a
	// folder the agent could not read (dir:null).
	hasDir, nullDir bool
}

// nextJSON returns the next JSON reply; data frames are returned as raw
// with ok false. Console messages from the agent become errors.
func (f *Files) next(ctx context.Context) (fr session.Frame, rep reply, isJSON bool, err error) {
	for {
		fr, err = f.r.next(ctx)
		if err != nil {
			return fr, rep, false, err
		}
		if len(fr.Data) == 0 {
			continue
		}
		if fr.Data[0] != '{' {
			return fr, rep, false, nil
		}
		if msg, ok := ConsoleMessage(fr.Data); ok {
			return fr, rep, false, fmt.Errorf("agent: %s", msg)
		}
		if json.Unmarshal(fr.Data, &rep) != nil {
			continue
		}
		var m map[string]any
		json.Unmarshal(fr.Data, &m)
		if d, ok := m["dir"]; ok {
			rep.hasDir, rep.nullDir = true, d == nil
			if rep.Action == "" {
				rep.Action = "ls"
			}
		}
		if rep.Action == "" {
			continue // control traffic (pong, rtt, ...)
		}
		return fr, rep, true, nil
	}
}

// List returns the entries of a remote folder ("" or "/" is the root; on
// Windows "" lists the drives).
func (f *Files) List(ctx context.Context, path string) ([]Entry, error) {
	f.reqid++
	id := f.reqid
	if err := f.send(ctx, map[string]any{"action": "ls", "reqid": id, "path": path}); err != nil {
		return nil, err
	}
	for {
		fr, rep, ok, err := f.next(ctx)
		if err != nil {
			return nil, fmt.Errorf("ls %s: %w", path, err)
		}
		if !ok || rep.Action != "ls" {
			continue
		}
		var full struct {
			Dir []struct {
				N string `json:"n"`
				T int    `json:"t"`
				S int64  `json:"s"`
				D any    `json:"d"`
			} `json:"dir"`
		}
		if rep.nullDir {
			return nil, fmt.Errorf("ls %s: %w", path, ErrNoFolder)
		}
		if err := json.Unmarshal(fr.Data, &full); err != nil {
			return nil, fmt.Errorf("ls %s: bad reply: %w", path, err)
		}
		out := make([]Entry, 0, len(full.Dir))
		for _, e := range full.Dir {
			typ := "file"
			switch e.T {
			case 1:
				typ = "drive"
			case 2:
				typ = "dir"
			}
			d, _ := e.D.(string)
			out = append(out, Entry{Name: e.N, Type: typ, Size: e.S, MTime: d})
		}
		return out, nil
	}
}

// Progress is called with the bytes transferred so far.
type Progress func(done int64)

// Upload sends size bytes from r to dir/name, keeping Window chunks in
// flight, waits until every chunk is acknowledged, then sends uploaddone
// (as the web UI does) and waits for the agent's uploaddone, which for
// our agent means the file was committed by rename. The transfer fails on
// uploaderror, on a short reader, or when the session ends.
func (f *Files) Upload(ctx context.Context, dir, name string, r io.Reader, size int64, progress Progress) error {
	f.reqid++
	reqid := fmt.Sprintf("up%d", f.reqid)
	if err := f.send(ctx, map[string]any{"action": "upload", "reqid": reqid, "path": dir, "name": name, "size": size}); err != nil {
		return err
	}
	for started := false; !started; {
		_, rep, ok, err := f.next(ctx)
		if err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		switch {
		case !ok:
		case rep.Action == "uploadstart":
			started = true
		case rep.Action == "uploaderror":
			return fmt.Errorf("upload: the agent cannot write %s in %s", name, dir)
		}
	}
	chunk := max(f.ChunkSize, 1024)
	window := max(f.Window, 1)
	buf := make([]byte, chunk+1)
	var sent, acked int64
	inflight := 0
	for acked < size || inflight > 0 {
		for inflight < window && sent < size {
			n := int(min(int64(chunk), size-sent))
			data := buf[1 : 1+n]
			if _, err := io.ReadFull(r, data); err != nil {
				return fmt.Errorf("upload: read local file: %w", err)
			}
			// A chunk starting with 0 or '{' gets a 0 escape byte
			// (sessions.md §3.2).
			if data[0] == 0 || data[0] == '{' {
				buf[0] = 0
				data = buf[:1+n]
			}
			if err := f.ch.Write(ctx, session.Frame{Binary: true, Data: data}); err != nil {
				return fmt.Errorf("upload: %w", err)
			}
			sent += int64(n)
			inflight++
		}
		if inflight == 0 {
			break
		}
		_, rep, ok, err := f.next(ctx)
		if err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		if !ok {
			continue
		}
		switch rep.Action {
		case "uploadack":
			inflight--
			acked = min(acked+int64(chunk), sent)
			if progress != nil {
				progress(acked)
			}
		case "uploaderror":
			return fmt.Errorf("upload: the agent failed writing %s", name)
		}
	}
	if err := f.send(ctx, map[string]any{"action": "uploaddone", "reqid": reqid}); err != nil {
		return err
	}
	for {
		_, rep, ok, err := f.next(ctx)
		if err != nil {
			return fmt.Errorf("upload: waiting for uploaddone: %w", err)
		}
		if ok && rep.Action == "uploaddone" {
			return nil
		}
		if ok && rep.Action == "uploaderror" {
			return fmt.Errorf("upload: the agent failed to commit %s", name)
		}
	}
}

// ErrRemoteFile is returned when the agent refuses a download (missing
// file, no permission, a folder).
var ErrRemoteFile = errors.New("remote file cannot be opened (missing, a folder, or not readable)")

// Download fetches the remote file path into w and returns its size. The
// agent's blocks are acknowledged one by one with Window blocks in flight
// (sessions.md §3.5). A file the agent cannot open fails at once with
// ErrRemoteFile.
func (f *Files) Download(ctx context.Context, path string, w io.Writer, progress Progress) (int64, error) {
	if err := f.send(ctx, map[string]any{"action": "download", "sub": "start", "id": path, "path": path}); err != nil {
		return 0, err
	}
	ack, _ := json.Marshal(map[string]any{"action": "download", "sub": "ack", "id": path})
	var total int64
	started := false
	for {
		fr, rep, ok, err := f.next(ctx)
		if err != nil {
			return total, fmt.Errorf("download %s: %w", path, err)
		}
		if ok {
			if rep.Action != "download" {
				continue
			}
			switch rep.Sub {
			case "start":
				started = true
				if err := f.send(ctx, map[string]any{"action": "download", "sub": "startack", "id": path, "ack": max(f.Window, 1)}); err != nil {
					return 0, err
				}
			case "cancel":
				return total, fmt.Errorf("download %s: %w", path, ErrRemoteFile)
			}
			continue
		}
		if !started || !fr.Binary || len(fr.Data) < 4 {
			continue
		}
		n, err := w.Write(fr.Data[4:])
		total += int64(n)
		if err != nil {
			return total, fmt.Errorf("download %s: write local file: %w", path, err)
		}
		if progress != nil {
			progress(total)
		}
		if binary.BigEndian.Uint32(fr.Data)&1 != 0 {
			return total, nil
		}
		if err := f.ch.Write(ctx, session.Frame{Data: ack}); err != nil {
			return total, fmt.Errorf("download %s: %w", path, err)
		}
	}
}
