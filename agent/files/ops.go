package files

import (
	"archive/zip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// copyMove copies or moves names from scpath to dspath. Paths are
// normalised like path (§7 #8); a name equal at both ends is skipped.
func (s *fileSession) copyMove(r *request, move bool) error {
	var errs []error
	for _, name := range r.Names {
		sc, err := join(r.ScPath, name)
		if err == nil {
			var ds string
			if ds, err = join(r.DsPath, name); err == nil && sc != ds {
				if move {
					s.audit("move", "from", sc, "to", ds)
					if err = moveTree(s.ctx, sc, ds); err == nil {
						s.event(EventMove, fmt.Sprintf("Move: \"%s\" to \"%s\"", sc, ds), sc, ds)
					}
				} else {
					s.audit("copy", "from", sc, "to", ds)
					if err = copyTree(s.ctx, sc, ds); err == nil {
						s.event(EventCopy, fmt.Sprintf("Copy: \"%s\" to \"%s\"", sc, ds), sc, ds)
					}
				}
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", name, reason(err)))
		}
	}
	return errors.Join(errs...)
}

func moveTree(ctx context.Context, sc, ds string) error {
	err := os.Rename(sc, ds)
	if err == nil || !isCrossDevice(err) {
		return err
	}
	if err := copyTree(ctx, sc, ds); err != nil {
		return err
	}
	return os.RemoveAll(sc)
}

// copyTree copies a file, or a folder recursively, without following
// symlinks (they are recreated as links). Files are written to a temporary
// name and renamed, so an existing destination is replaced whole or not at
// all.
func copyTree(ctx context.Context, sc, ds string) error {
	st, err := os.Lstat(sc)
	if err != nil {
		return err
	}
	switch {
	case st.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(sc)
		if err != nil {
			return err
		}
		return os.Symlink(target, ds)
	case st.IsDir():
		if within(ds, sc) {
			return errors.New("cannot copy a folder into itself")
		}
		if err := os.Mkdir(ds, st.Mode().Perm()); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		ents, err := os.ReadDir(sc)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := copyTree(ctx, filepath.Join(sc, e.Name()), filepath.Join(ds, e.Name())); err != nil {
				return err
			}
		}
		return nil
	case st.Mode().IsRegular():
		return copyFile(ctx, sc, ds)
	}
	return fmt.Errorf("%s is not a regular file", sc)
}

func copyFile(ctx context.Context, sc, ds string) error {
	in, st, err := openRegular(sc)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := createTemp(filepath.Dir(ds), filepath.Base(ds), st.Mode().Perm())
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, &ctxReader{ctx: ctx, r: in})
	if err == nil {
		err = tmp.Chmod(st.Mode().Perm())
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), ds)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

type findReply struct {
	Action string          `json:"action"`
	R      *string         `json:"r"`
	ReqID  json.RawMessage `json:"reqid,omitempty"`
}

// startFind searches below path for names matching the glob filter,
// streaming each match (with the path prefix removed, as the reference)
// and a final r:null. A new search or cancelfindfile stops the old one.
func (s *fileSession) startFind(r *request) error {
	root, err := resolvePath(r.Path)
	if err != nil {
		return s.fail(r, err)
	}
	filter := r.Filter
	if filter == "" {
		filter = "*"
	}
	if _, err := filepath.Match(filter, ""); err != nil {
		return s.fail(r, fmt.Errorf("bad filter \"%s\": %w", filter, err))
	}
	fold := runtime.GOOS == "windows" || runtime.GOOS == "darwin"
	if fold {
		filter = strings.ToLower(filter)
	}
	prefix := echoPath(r.Path)
	ctx, cancel := context.WithCancel(s.ctx)
	s.jobMu.Lock()
	if s.findCancel != nil {
		s.findCancel()
	}
	s.findCancel = cancel
	s.jobMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer cancel()
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if err != nil || p == root {
				return nil // unreadable folders are skipped, like find(1)
			}
			name := d.Name()
			if fold {
				name = strings.ToLower(name)
			}
			if ok, _ := filepath.Match(filter, name); ok {
				rel := strings.TrimPrefix(p, prefix)
				if s.sendJSON(findReply{Action: "findfile", R: &rel, ReqID: r.ReqID}) != nil {
					return io.EOF
				}
			}
			return nil
		})
		if ctx.Err() == nil {
			_ = s.sendJSON(findReply{Action: "findfile", ReqID: r.ReqID})
		}
	}()
	return nil
}

type dialogReply struct {
	Action   string  `json:"action"`
	Msg      *string `json:"msg"`
	File     string  `json:"file,omitempty"`
	Progress *int    `json:"progress,omitempty"`
	Error    string  `json:"error,omitempty"`
}

func dialog(msg string) dialogReply { return dialogReply{Action: "dialogmessage", Msg: &msg} }

// claimJob registers a zip/unzip; only one runs at a time per session.
func (s *fileSession) claimJob() (context.Context, bool) {
	s.jobMu.Lock()
	defer s.jobMu.Unlock()
	if s.zipCancel != nil {
		return nil, false
	}
	ctx, cancel := context.WithCancel(s.ctx)
	s.zipCancel = cancel
	return ctx, true
}

func (s *fileSession) releaseJob() {
	s.jobMu.Lock()
	if s.zipCancel != nil {
		s.zipCancel()
		s.zipCancel = nil
	}
	s.jobMu.Unlock()
}

// endJob sends what the web UI waits for at the end of a zip/unzip: close
// the dialog, re-list the folder.
func (s *fileSession) endJob() {
	_ = s.sendJSON(dialogReply{Action: "dialogmessage"})
	_ = s.sendJSON(map[string]string{"action": "refresh"})
}

// startZip compresses files (names in path) into path/output, in the
// background, with the reference's dialog messages. The archive is built
// under a temporary name; cancel deletes it.
func (s *fileSession) startZip(r *request) error {
	dir, err := resolvePath(r.Path)
	if err != nil {
		return s.fail(r, err)
	}
	if err := checkName(r.Output); err != nil {
		return s.fail(r, fmt.Errorf("output: %w", err))
	}
	var srcs []string
	for _, n := range r.Files {
		if checkName(n) != nil {
			continue
		}
		if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
			srcs = append(srcs, n)
		}
	}
	if len(srcs) == 0 {
		return s.fail(r, errors.New("no files to zip"))
	}
	ctx, ok := s.claimJob()
	if !ok {
		return s.fail(r, errors.New("a zip or unzip is already running"))
	}
	out := filepath.Join(dir, r.Output)
	if err := s.sendJSON(dialog("zipping")); err != nil {
		s.releaseJob()
		return err
	}
	s.audit("zip", "path", dir, "output", out)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.zip(ctx, dir, srcs, out)
		cancelled := ctx.Err() != nil
		s.releaseJob() // before the replies: the client may start the next job at once
		if err != nil && !cancelled {
			_ = s.fail(r, err)
		}
		s.endJob()
	}()
	return nil
}

func (s *fileSession) zip(ctx context.Context, dir string, srcs []string, out string) error {
	tmp, err := createTemp(dir, filepath.Base(out), 0o666)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	zw := zip.NewWriter(tmp)
	var files []string
	for _, n := range srcs {
		_ = filepath.WalkDir(filepath.Join(dir, n), func(p string, d fs.DirEntry, err error) error {
			if err == nil && p != tmp.Name() && p != out && (d.IsDir() || d.Type().IsRegular()) {
				files = append(files, p)
			}
			return nil
		})
	}
	last := time.Now()
	for i, p := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if time.Since(last) >= time.Second {
			last = time.Now()
			pct := i * 100 / len(files)
			shown := rel
			if runtime.GOOS == "windows" {
				shown = strings.ReplaceAll(rel, "/", `\`)
			}
			_ = s.sendJSON(dialogReply{Action: "dialogmessage", Msg: strPtr("zippingFile"), File: shown, Progress: &pct})
		}
		if err := addToZip(ctx, zw, p, rel); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return err
	}
	ok = true
	return nil
}

func addToZip(ctx context.Context, zw *zip.Writer, p, rel string) error {
	st, err := os.Lstat(p)
	if err != nil {
		return nil // vanished meanwhile
	}
	h, err := zip.FileInfoHeader(st)
	if err != nil {
		return err
	}
	h.Name = rel
	if st.IsDir() {
		h.Name += "/"
		_, err = zw.CreateHeader(h)
		return err
	}
	h.Method = zip.Deflate
	f, _, err := openRegular(p)
	if err != nil {
		return err
	}
	defer f.Close()
	w, err := zw.CreateHeader(h)
	if err != nil {
		return err
	}
	_, err = io.Copy(w, &ctxReader{ctx: ctx, r: f})
	return err
}

func strPtr(s string) *string { return &s }

// startUnzip extracts input into dest in the background. Entries that
// would land outside dest (absolute names, "..", or through a symlink
// inside dest) and symlink entries are refused.
func (s *fileSession) startUnzip(r *request) error {
	input, err := resolvePath(r.Input)
	if err == nil {
		var dest string
		if dest, err = resolvePath(r.Dest); err == nil {
			ctx, ok := s.claimJob()
			if !ok {
				return s.fail(r, errors.New("a zip or unzip is already running"))
			}
			s.audit("unzip", "input", input, "dest", dest)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				_ = s.sendJSON(dialog("unzipping"))
				err := unzip(ctx, input, dest)
				cancelled := ctx.Err() != nil
				s.releaseJob() // before the replies: the client may start the next job at once
				if err != nil {
					if !cancelled {
						_ = s.sendJSON(dialogReply{Action: "dialogmessage", Msg: strPtr("unziperror"), Error: reason(err)})
					}
					return
				}
				s.endJob()
			}()
			return nil
		}
	}
	return s.sendJSON(dialogReply{Action: "dialogmessage", Msg: strPtr("unziperror"), Error: reason(err)})
}

func unzip(ctx context.Context, input, dest string) error {
	zr, err := zip.OpenReader(input)
	if err != nil {
		return err
	}
	defer zr.Close()
	realDest, err := filepath.EvalSymlinks(dest)
	if err != nil {
		return err
	}
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := strings.ReplaceAll(zf.Name, `\`, "/")
		if !fs.ValidPath(strings.TrimSuffix(name, "/")) || strings.Contains(name, ":") {
			return fmt.Errorf("unsafe entry name \"%s\"", zf.Name)
		}
		target := filepath.Join(realDest, filepath.FromSlash(name))
		if zf.Mode()&fs.ModeSymlink != 0 {
			continue
		}
		if zf.FileInfo().IsDir() {
			if err := os.MkdirAll(target, 0o777); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o777); err != nil {
			return err
		}
		if real, err := filepath.EvalSymlinks(filepath.Dir(target)); err != nil || !within(real, realDest) {
			return fmt.Errorf("entry \"%s\" leaves the destination folder", zf.Name)
		}
		if st, err := os.Lstat(target); err == nil && !st.Mode().IsRegular() {
			return fmt.Errorf("entry \"%s\" would overwrite a non-regular file", zf.Name)
		}
		if err := extract(ctx, zf, target); err != nil {
			return err
		}
	}
	return nil
}

func extract(ctx context.Context, zf *zip.File, target string) error {
	rc, err := zf.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := createTemp(filepath.Dir(target), filepath.Base(target), zf.Mode().Perm()|0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(tmp, &ctxReader{ctx: ctx, r: rc})
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), target)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
