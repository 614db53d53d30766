//go:build linux

package wayland

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// IfDataControl is wlroots' clipboard manager protocol: a client without a
// surface or focus may read and set the selection (what clipboard managers
// and remote desktop agents need).
const IfDataControl = "zwlr_data_control_manager_v1"

// textMimes are the text types offered and looked for, best first.
var textMimes = []string{"text/plain;charset=utf-8", "UTF8_STRING", "text/plain", "STRING", "TEXT"}

// maxSelection bounds a read selection so a huge paste cannot exhaust memory.
const maxSelection = 16 << 20

// DataDevice is a zwlr_data_control_device_v1 on the first seat. It tracks
// the current selection offer and its mime types.
type DataDevice struct {
	c   *Client
	mgr uint32
	dev uint32

	mu      sync.Mutex
	mimes   map[uint32][]string // offers announced, by object id
	current uint32              // offer that is the selection, 0 for none
	source  uint32              // our source while we own the selection
	data    []byte
}

// NewDataDevice binds the data-control manager and the seat and creates
// the device; the compositor then announces the current selection.
func NewDataDevice(c *Client) (*DataDevice, error) {
	g, ok := c.Find(IfDataControl)
	if !ok {
		return nil, fmt.Errorf("compositor offers no %s", IfDataControl)
	}
	sg, ok := c.Find(IfSeat)
	if !ok {
		return nil, errors.New("compositor offers no wl_seat")
	}
	d := &DataDevice{c: c, mimes: map[uint32][]string{}}
	var err error
	if d.mgr, err = c.Bind(g, 1, nil); err != nil {
		return nil, err
	}
	seat, err := c.Bind(sg, 1, nil)
	if err != nil {
		return nil, err
	}
	d.dev = c.NewID(d.deviceEvent)
	if err := c.Send(d.mgr, 1, new(Writer).Uint(d.dev).Uint(seat)); err != nil { // get_data_device
		return nil, err
	}
	return d, c.Roundtrip(5 * time.Second)
}

func (d *DataDevice) deviceEvent(m Message) {
	r := NewReader(m)
	switch m.Opcode {
	case 0: // data_offer(new_id offer): a new offer, its mime types follow
		id := r.Uint()
		d.mu.Lock()
		d.mimes[id] = nil
		d.mu.Unlock()
		d.c.SetHandler(id, func(m Message) {
			if m.Opcode == 0 { // offer(mime_type)
				mt := NewReader(m).String()
				d.mu.Lock()
				if _, ok := d.mimes[id]; ok {
					d.mimes[id] = append(d.mimes[id], mt)
				}
				d.mu.Unlock()
			}
		})
	case 1: // selection(offer or null)
		id := r.Uint()
		d.mu.Lock()
		old := d.current
		d.current = id
		d.mu.Unlock()
		if old != 0 && old != id {
			d.destroyOffer(old)
		}
	case 3: // primary_selection (v2): not used; drop the offer
		if id := r.Uint(); id != 0 {
			d.mu.Lock()
			cur := d.current
			d.mu.Unlock()
			if id != cur {
				d.destroyOffer(id)
			}
		}
	}
}

func (d *DataDevice) destroyOffer(id uint32) {
	d.mu.Lock()
	delete(d.mimes, id)
	d.mu.Unlock()
	d.c.Send(id, 1, nil) // destroy
}

// Selection reads the current selection as text: "" with no error when
// the selection is empty or holds no text type.
func (d *DataDevice) Selection(timeout time.Duration) (string, error) {
	if err := d.c.Roundtrip(timeout); err != nil {
		return "", err
	}
	d.mu.Lock()
	id, have := d.current, d.mimes[d.current]
	d.mu.Unlock()
	if id == 0 {
		return "", nil
	}
	mime := ""
	for _, want := range textMimes {
		for _, h := range have {
			if h == want && mime == "" {
				mime = h
			}
		}
	}
	if mime == "" {
		return "", nil
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return "", err
	}
	rf := os.NewFile(uintptr(p[0]), "selection")
	defer rf.Close()
	err := d.c.Send(id, 0, new(Writer).String(mime).FD(p[1])) // receive(mime, fd)
	unix.Close(p[1])
	if err != nil {
		return "", err
	}
	rf.SetReadDeadline(time.Now().Add(timeout))
	b, err := io.ReadAll(io.LimitReader(rf, maxSelection+1))
	if err != nil {
		return "", fmt.Errorf("read selection: %w", err)
	}
	if len(b) > maxSelection {
		return "", fmt.Errorf("selection larger than %d bytes", maxSelection)
	}
	return string(b), nil
}

// SetSelection makes text the selection. The device answers paste requests
// until another client takes the selection (Owned then reports false) or
// the connection closes: Wayland, like X, keeps no copy of its own.
func (d *DataDevice) SetSelection(text string) error {
	src := d.c.NewID(nil)
	data := []byte(text)
	d.c.SetHandler(src, func(m Message) {
		switch m.Opcode {
		case 0: // send(mime_type, fd)
			_ = NewReader(m).String() // mime type: we offer text only
			fd, ok := d.c.TakeFD()
			if !ok {
				return
			}
			go func() {
				f := os.NewFile(uintptr(fd), "paste")
				f.SetWriteDeadline(time.Now().Add(10 * time.Second))
				f.Write(data)
				f.Close()
			}()
		case 1: // cancelled: someone else owns the selection now
			d.mu.Lock()
			if d.source == src {
				d.source = 0
			}
			d.mu.Unlock()
			d.c.Send(src, 1, nil) // destroy
		}
	})
	if err := d.c.Send(d.mgr, 0, new(Writer).Uint(src)); err != nil { // create_data_source
		return err
	}
	for _, mt := range textMimes {
		if err := d.c.Send(src, 0, new(Writer).String(mt)); err != nil { // offer
			return err
		}
	}
	d.mu.Lock()
	old := d.source
	d.source, d.data = src, data
	d.mu.Unlock()
	if err := d.c.Send(d.dev, 0, new(Writer).Uint(src)); err != nil { // set_selection
		return err
	}
	if old != 0 {
		d.c.Send(old, 1, nil)
	}
	return d.c.Roundtrip(5 * time.Second)
}

// Owned reports whether the selection is still ours.
func (d *DataDevice) Owned() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.source != 0
}
