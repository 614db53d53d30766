package inproc

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/meshgo/meshagent/agent/files"
	"github.com/meshgo/meshagent/agent/terminal"
	"github.com/meshgo/meshagent/proto/session"
	"github.com/meshgo/meshagent/server-lite/sessionclient"
)

// The clients against the agent's own handlers over an in-memory channel:
// the wire formats without a server or a process in between.

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func serveFiles(t *testing.T) *sessionclient.Files {
	a, b := session.Pipe(64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		files.Serve(ctx, a, session.Info{Protocol: session.ProtoFiles, Rights: session.RightAdmin}, files.Options{Logger: quiet})
	}()
	f := sessionclient.NewFiles(b)
	t.Cleanup(func() { f.Close(); cancel(); <-done })
	return f
}

func TestFilesAgainstAgentFiles(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	data := make([]byte, 3<<20+17) // not a multiple of any chunk or block
	rand.Read(data)
	data[0] = '{' // the first chunk needs the 0 escape
	f := serveFiles(t)
	var last int64
	if err := f.Upload(ctx, dir, "x.bin", bytes.NewReader(data), int64(len(data)), func(n int64) { last = n }); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "x.bin")); !bytes.Equal(got, data) || last != int64(len(data)) {
		t.Fatalf("uploaded %d bytes, progress %d", len(got), last)
	}
	es, err := f.List(ctx, dir)
	if err != nil || len(es) != 1 || es[0] != (sessionclient.Entry{Name: "x.bin", Type: "file", Size: int64(len(data)), MTime: es[0].MTime}) || es[0].MTime == "" {
		t.Fatalf("list: %+v %v", es, err)
	}
	var buf bytes.Buffer
	n, err := f.Download(ctx, filepath.Join(dir, "x.bin"), &buf, nil)
	if err != nil || n != int64(len(data)) || !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("download: %d %v", n, err)
	}
	// Errors are answers, not hangs, and the session stays usable.
	if _, err := f.Download(ctx, filepath.Join(dir, "missing"), io.Discard, nil); !errors.Is(err, sessionclient.ErrRemoteFile) {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := f.List(ctx, filepath.Join(dir, "missing")); !errors.Is(err, sessionclient.ErrNoFolder) {
		t.Fatalf("missing folder: %v", err)
	}
	if err := f.Upload(ctx, filepath.Join(dir, "missing"), "y", bytes.NewReader([]byte("hi")), 2, nil); err == nil {
		t.Fatal("upload into a missing folder succeeded")
	}
	// An empty file both ways.
	if err := f.Upload(ctx, dir, "empty", bytes.NewReader(nil), 0, nil); err != nil {
		t.Fatalf("empty upload: %v", err)
	}
	if st, err := os.Stat(filepath.Join(dir, "empty")); err != nil || st.Size() != 0 {
		t.Fatalf("empty upload: %v", err)
	}
	if n, err := f.Download(ctx, filepath.Join(dir, "empty"), io.Discard, nil); err != nil || n != 0 {
		t.Fatalf("empty download: %d %v", n, err)
	}
	if es, err := f.List(ctx, dir); err != nil || len(es) != 2 {
		t.Fatalf("list after errors: %+v %v", es, err)
	}
}

func TestTerminalRun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("POSIX shell on a pty")
	}
	a, b := session.Pipe(64)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		terminal.Serve(ctx, a, session.Info{Protocol: session.ProtoTerminal, Rights: session.RightAdmin}, terminal.Options{Logger: quiet})
	}()
	term := sessionclient.NewTerminal(b)
	defer func() { term.Close(); <-done }()
	res, err := term.Run(ctx, "echo 'it''s'; printf 'a\\nb'; false")
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != "its\na\nb" || res.Status != 1 {
		t.Fatalf("Run: %q status %d", res.Output, res.Status)
	}
}
