package files

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/meshgo/meshagent/proto/session"
)

// Download block layout (sessions.md §3.5): a u32 flag word, then up to
// blockData bytes of the file.
const (
	blockData     = 16380
	flagMore      = 0x01000000
	flagLast      = 0x01000001
	defaultWindow = 8  // blocks in flight when startack gives no ack count
	maxWindow     = 64 // cap on a client-supplied ack count
)

// download is the one download a session may run at a time.
type download struct {
	id   json.RawMessage
	path string
	f    *os.File
	buf  []byte
	sent int64
	// inflight counts blocks sent and not yet acknowledged. The last block
	// waits in pending until it is 0: MeshCentral's web UI handles a short
	// last block at once but full blocks asynchronously, so a last block
	// sent while others are in flight overtakes them and the saved file
	// loses its tail (seen in headless Chromium with an 8-block window).
	inflight int
	pending  []byte
}

type downloadReply struct {
	Action string          `json:"action"`
	Sub    string          `json:"sub"`
	ID     json.RawMessage `json:"id"`
	Error  string          `json:"error,omitempty"`
}

func (d *download) close() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}

func (s *fileSession) download(r *request) error {
	if r.Sub == "start" {
		return s.startDownload(r)
	}
	d := s.dl
	if d == nil || !sameID(d.id, r.ID) {
		return nil // late acks of a finished download, or a stranger's id
	}
	switch r.Sub {
	case "startack":
		n := defaultWindow
		if r.Ack > 0 {
			n = min(r.Ack, maxWindow)
		}
		for i := 0; i < n && s.dl == d && d.pending == nil; i++ {
			if err := s.sendBlock(); err != nil {
				return err
			}
		}
	case "ack":
		return s.downloadAck(d)
	case "stop", "cancel": // the web UI says cancel, the reference knew only stop (§7 #5)
		s.audit("download cancelled", "path", d.path, "sent", d.sent)
		d.close()
		s.dl = nil
	}
	return nil
}

// downloadAck handles the client's ack of one block of d: the next block
// goes out, or the last one once nothing else is in flight.
func (s *fileSession) downloadAck(d *download) error {
	if d.inflight > 0 {
		d.inflight--
	}
	if d.pending != nil {
		if d.inflight > 0 {
			return nil
		}
		last := d.pending
		s.finishDownload(d, int64(len(last)-4))
		return s.write(session.Frame{Binary: true, Data: last})
	}
	return s.sendBlock()
}

// ackPrefix starts the ack both MeshCentral clients send for every block,
// JSON.stringify({action:'download', sub:'ack', id}) in meshctrl.js and
// the web UI: always these bytes, then the id and "}".
var ackPrefix = []byte(`{"action":"download","sub":"ack","id":`)

// isDownloadAck reports whether data is exactly that ack for the download
// with id (as compacted by parseRequest). It lets the session skip the
// general request parser for the one message that comes once per 16 KiB
// block: that parse was 7-8 MB of garbage per 50 MiB downloaded, most of
// the download's allocation. Any other spelling takes the general path,
// which gives the same result.
func isDownloadAck(data, id []byte) bool {
	n := len(ackPrefix)
	return len(id) > 0 && len(data) == n+len(id)+1 && data[len(data)-1] == '}' &&
		bytes.HasPrefix(data, ackPrefix) && bytes.Equal(data[n:len(data)-1], id)
}

func (s *fileSession) startDownload(r *request) error {
	if s.dl != nil {
		old := s.dl
		old.close()
		s.dl = nil
		if err := s.sendText(downloadReply{Action: "download", Sub: "cancel", ID: old.id}); err != nil {
			return err
		}
	}
	var f *os.File
	var path string
	err := errors.New("missing path")
	if r.HasPath {
		if path, err = resolvePath(r.Path); err == nil {
			f, _, err = openRegular(path)
		}
	} else if r.Ask == "coredump" {
		err = errors.New("this agent keeps no core dump")
	}
	if err != nil {
		s.log.Info("download refused", "path", r.Path, "err", err)
		return s.sendText(downloadReply{Action: "download", Sub: "cancel", ID: r.ID,
			Error: fmt.Sprintf("download of %s failed: %s", r.Path, reason(err))})
	}
	s.dl = &download{id: r.ID, path: path, f: f, buf: make([]byte, 4+blockData)}
	s.audit("download", "path", path)
	s.event(EventDownload, fmt.Sprintf("Download: \"%s\"", path), path)
	return s.sendText(downloadReply{Action: "download", Sub: "start", ID: r.ID})
}

// sendBlock sends the next block; a short read marks the last one, so a
// file whose size is a multiple of the block size ends with an empty block,
// as both clients expect.
func (s *fileSession) sendBlock() error {
	d := s.dl
	n, err := io.ReadFull(d.f, d.buf[4:])
	last := false
	switch {
	case err == nil:
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		last = true
	default:
		d.close()
		s.dl = nil
		s.log.Warn("download read failed", "path", d.path, "err", err)
		return s.sendText(downloadReply{Action: "download", Sub: "cancel", ID: d.id,
			Error: fmt.Sprintf("download of %s failed: %s", d.path, reason(err))})
	}
	binary.BigEndian.PutUint32(d.buf, flagMore)
	if last {
		binary.BigEndian.PutUint32(d.buf, flagLast)
		if d.inflight > 0 {
			d.pending = append([]byte(nil), d.buf[:4+n]...)
			return nil
		}
		s.finishDownload(d, int64(n))
		return s.write(session.Frame{Binary: true, Data: d.buf[:4+n]})
	}
	d.sent += int64(n)
	d.inflight++
	return s.write(session.Frame{Binary: true, Data: d.buf[:4+n]})
}

// finishDownload ends d once its last block (n file bytes) is sent.
func (s *fileSession) finishDownload(d *download, n int64) {
	d.sent += n
	d.close()
	if s.dl == d {
		s.dl = nil
	}
	s.audit("download done", "path", d.path, "size", d.sent)
}
