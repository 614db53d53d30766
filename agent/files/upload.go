package files

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// upload is an upload in progress. Data goes to tmp, a new file beside the
// target; the target is replaced by rename only when the upload completes.
type upload struct {
	reqid   json.RawMessage
	target  string
	tmp     *os.File
	size    int64 // what the client announced, -1 if nothing
	written int64 // bytes in tmp, including an appended-to prefix
	old     os.FileInfo
}

type uploadReply struct {
	Action string          `json:"action"`
	ReqID  json.RawMessage `json:"reqid,omitempty"`
	Error  string          `json:"error,omitempty"`
}

func (s *fileSession) startUpload(r *request) error {
	if s.up != nil {
		// The reference just closes the previous file; we keep it only if
		// it is complete.
		s.finishUpload("superseded by a new upload")
	}
	up, err := s.openUpload(r)
	if err != nil {
		s.log.Info("upload refused", "path", r.Path, "name", r.Name, "err", err)
		return s.sendJSON(uploadReply{Action: "uploaderror", ReqID: r.ReqID, Error: fmt.Sprintf("upload of %s failed: %s", uploadName(r), reason(err))})
	}
	s.up = up
	s.audit("upload start", "path", up.target, "size", up.size)
	return s.sendJSON(uploadReply{Action: "uploadstart", ReqID: r.ReqID})
}

func (s *fileSession) openUpload(r *request) (*upload, error) {
	target, err := uploadTarget(r)
	if err != nil {
		return nil, err
	}
	up := &upload{reqid: r.ReqID, size: r.Size}
	mode := os.FileMode(0o666)
	if st, err := os.Stat(target); err == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("%s is a folder", target)
		}
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s is not a regular file", target)
		}
		// Writing through a symlink updates the file it points to, as the
		// reference's open does; the rename must then replace that file.
		if real, err := filepath.EvalSymlinks(target); err == nil {
			target = real
		}
		if err := checkWritable(target); err != nil {
			return nil, err
		}
		up.old = st
		mode = st.Mode().Perm()
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	up.target = target
	up.tmp, err = createTemp(filepath.Dir(target), filepath.Base(target), mode)
	if err != nil {
		return nil, err
	}
	if r.Append && up.old != nil {
		src, _, err := openRegular(target)
		if err == nil {
			up.written, err = io.Copy(up.tmp, &ctxReader{ctx: s.ctx, r: src})
			src.Close()
		}
		if err != nil {
			up.discard()
			return nil, err
		}
	}
	if up.old != nil {
		// Creation applied the umask; give the new file the old mode.
		_ = up.tmp.Chmod(mode)
	}
	return up, nil
}

// createTemp makes a new, exclusive temporary file in dir. The name starts
// with a dot and says what it is, so a leftover one (agent killed) is
// recognisable in a listing.
func createTemp(dir, base string, mode os.FileMode) (*os.File, error) {
	if len(base) > 120 {
		base = base[:120]
	}
	for i := 0; ; i++ {
		var rnd [6]byte
		_, _ = rand.Read(rnd[:])
		name := filepath.Join(dir, "."+base+".meshupload-"+hex.EncodeToString(rnd[:]))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, mode)
		if err == nil || !errors.Is(err, os.ErrExist) || i > 10 {
			return f, err
		}
	}
}

// uploadData writes one chunk of the open upload and acks it.
func (s *fileSession) uploadData(data []byte) error {
	up := s.up
	if _, err := up.tmp.Write(data); err != nil {
		s.up = nil
		up.discard()
		s.log.Warn("upload write failed", "path", up.target, "err", err)
		return s.sendJSON(uploadReply{Action: "uploaderror", ReqID: up.reqid,
			Error: fmt.Sprintf("upload of %s failed: %s; the existing file was left unchanged", up.target, reason(err))})
	}
	up.written += int64(len(data))
	return s.sendJSON(uploadReply{Action: "uploadack", ReqID: up.reqid})
}

func (s *fileSession) uploadDone(r *request) error {
	up := s.up
	if up == nil {
		return nil // as the reference: nothing open, nothing to say
	}
	s.up = nil
	if err := up.commit(); err != nil {
		s.log.Warn("upload commit failed", "path", up.target, "err", err)
		return s.sendJSON(uploadReply{Action: "uploaderror", ReqID: up.reqid,
			Error: fmt.Sprintf("upload of %s failed: %s; the existing file was left unchanged", up.target, reason(err))})
	}
	s.audit("upload done", "path", up.target, "size", up.written)
	s.uploadEvent(up)
	return s.sendJSON(uploadReply{Action: "uploaddone", ReqID: up.reqid})
}

func (s *fileSession) uploadCancel(r *request) error {
	up := s.up
	if up == nil {
		return nil
	}
	s.up = nil
	up.discard()
	s.audit("upload cancelled", "path", up.target)
	return s.sendJSON(uploadReply{Action: "uploadcancel", ReqID: up.reqid})
}

// finishUpload ends an upload the client did not finish explicitly.
// meshctrl never sends uploaddone: it closes the session once every chunk
// was acked (sessions.md §3.8), so a file whose announced size was fully
// received is kept; anything short of that is dropped and the old file
// stays as it was.
func (s *fileSession) finishUpload(why string) {
	up := s.up
	s.up = nil
	if up.size >= 0 && up.written == up.size {
		if err := up.commit(); err != nil {
			s.log.Warn("upload commit failed", "path", up.target, "err", err)
			return
		}
		s.audit("upload done", "path", up.target, "size", up.written, "how", why)
		s.uploadEvent(up)
		return
	}
	up.discard()
	s.log.Info("incomplete upload discarded", "path", up.target, "received", up.written, "announced", up.size, "why", why)
}

// commit makes the temporary file the target: flushed to disk first, with
// the old file's mode and owner, then renamed over it.
func (up *upload) commit() error {
	name := up.tmp.Name()
	err := up.tmp.Sync()
	if cerr := up.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && up.old != nil {
		keepOwner(name, up.old)
	}
	if err == nil {
		err = os.Rename(name, up.target)
	}
	if err != nil {
		os.Remove(name)
		return err
	}
	syncDir(filepath.Dir(up.target))
	return nil
}

func (up *upload) discard() {
	name := up.tmp.Name()
	up.tmp.Close()
	os.Remove(name)
}

// uploadName is how an error names the file an upload request meant.
func uploadName(r *request) string {
	if r.HasName {
		return filepath.Join(r.Path, r.Name)
	}
	return r.Path
}

// uploadEvent reports a committed upload (msgid 105, as meshcore.js does
// once the browser says uploaddone).
func (s *fileSession) uploadEvent(up *upload) {
	s.event(EventUploadDone, fmt.Sprintf("Upload: \"%s\", Size: %d", up.target, up.written), up.target, up.written)
}
