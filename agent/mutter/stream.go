//go:build linux

package mutter

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
)

// Frames reads a PipeWire video node through a GStreamer subprocess:
// gst-launch-1.0 pipewiresrc ! videoconvert ! BGRx ! fdsink on fd 3. Why
// a subprocess: no pure-Go PipeWire client exists, and cgo or purego
// bindings to libpipewire would tie the agent's build or its address space
// to the library; the subprocess keeps CGO_ENABLED=0 builds and costs a
// pipe copy per frame, and Mutter only sends a frame when the screen
// changes. Its -v output on stdout tells the negotiated size.
type Frames struct {
	cmd   *exec.Cmd
	r     *os.File
	mu    sync.Mutex
	w, h  int
	sized chan struct{}
	once  sync.Once
	done  chan struct{}
	err   error
	tail  []byte // last lines of gst output, for errors
}

// GstArgs is the gst-launch-1.0 command line for node.
func GstArgs(node uint32) []string { return gstArgs(node, false) }

// gstArgs is the command line; with remote, pipewiresrc connects through
// the PipeWire fd the child has as fd 4 (a portal's OpenPipeWireRemote).
func gstArgs(node uint32, remote bool) []string {
	src := []string{"-v", "pipewiresrc", "path=" + strconv.FormatUint(uint64(node), 10)}
	if remote {
		src = append(src, "fd=4")
	}
	return append(src, "!", "videoconvert", "!", "video/x-raw,format=BGRx", "!", "fdsink", "fd=3", "sync=false")
}

// StartFrames starts the pipeline for node. cred (nil: the agent's own)
// and env say who runs it and where PipeWire is (XDG_RUNTIME_DIR or
// PIPEWIRE_RUNTIME_DIR): the session user's own daemon.
func StartFrames(node uint32, cred *syscall.Credential, env []string) (*Frames, error) {
	return StartFramesRemote(node, nil, cred, env)
}

// StartFramesRemote is StartFrames through a PipeWire connection already
// open (remote, nil for the daemon's socket): a portal hands one that sees
// only its session's streams. The child gets its own copy of the fd.
func StartFramesRemote(node uint32, remote *os.File, cred *syscall.Credential, env []string) (*Frames, error) {
	bin, err := exec.LookPath("gst-launch-1.0")
	if err != nil {
		return nil, fmt.Errorf("pipewire frames need gst-launch-1.0 (gstreamer1.0-tools, gstreamer1.0-pipewire): %w", err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, gstArgs(node, remote != nil)...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.ExtraFiles = []*os.File{pw}
	if remote != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, remote)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		pr.Close()
		pw.Close()
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return nil, fmt.Errorf("start gst-launch-1.0: %w", err)
	}
	pw.Close()
	f := &Frames{cmd: cmd, r: pr, sized: make(chan struct{}), done: make(chan struct{})}
	go f.readLog(out)
	return f, nil
}

var capsSize = regexp.MustCompile(`GstFdSink:[^ ]*\.GstPad:sink: caps = video/x-raw.*width=\(int\)(\d+), height=\(int\)(\d+)`)

// readLog watches gst's messages for the sink's caps and keeps the tail.
func (f *Frames) readLog(out io.Reader) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		f.mu.Lock()
		f.tail = append(f.tail, line...)
		f.tail = append(f.tail, '\n')
		if len(f.tail) > 4096 {
			f.tail = f.tail[len(f.tail)-4096:]
		}
		if m := capsSize.FindStringSubmatch(line); m != nil {
			w, _ := strconv.Atoi(m[1])
			h, _ := strconv.Atoi(m[2])
			if f.w == 0 {
				f.w, f.h = w, h
				f.once.Do(func() { close(f.sized) })
			} else if w != f.w || h != f.h {
				// The frame stream has no boundaries of its own: a new size
				// mid-stream cannot be followed, so stop and be restarted.
				f.err = fmt.Errorf("pipewire stream size changed to %dx%d", w, h)
				f.mu.Unlock()
				f.Close()
				continue
			}
		}
		f.mu.Unlock()
	}
	err := f.cmd.Wait()
	f.mu.Lock()
	if f.err == nil {
		f.err = fmt.Errorf("gst-launch-1.0 ended (%v): %s", err, f.tail)
	}
	f.mu.Unlock()
	f.once.Do(func() { close(f.sized) })
	close(f.done)
}

// Size waits for the negotiated frame size; 0, 0 with the error when the
// pipeline ended first.
func (f *Frames) Size() (int, int, error) {
	<-f.sized
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.w == 0 {
		return 0, 0, f.err
	}
	return f.w, f.h, nil
}

// Read fills buf (w*h*4 bytes, BGRx, stride w*4) with the next frame.
func (f *Frames) Read(buf []byte) error {
	if _, err := io.ReadFull(f.r, buf); err != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.err != nil {
			return f.err
		}
		return fmt.Errorf("pipewire frames: %w", err)
	}
	return nil
}

// Done is closed when the pipeline ended.
func (f *Frames) Done() <-chan struct{} { return f.done }

// Close ends the pipeline.
func (f *Frames) Close() error {
	if f.cmd.Process != nil {
		syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
	}
	return f.r.Close()
}
