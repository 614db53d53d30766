package files

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/meshgo/meshagent/proto/session"
)

// serveTransfer is protocol 10, devicefile.ashx's single download
// (sessions.md §3.9): the file named in the options goes out as binary
// frames after {"op":"ok","size":N}, then the channel is closed; failure is
// {"op":"cancel"}.
func serveTransfer(ctx context.Context, ch session.Channel, info session.Info, log *slog.Logger, serverLog func(int, []any, string)) error {
	var opts struct {
		File string `json:"file"`
	}
	_ = json.Unmarshal(info.Options, &opts)
	err := errors.New("no file requested")
	var path string
	if opts.File != "" {
		path, err = resolvePath(opts.File)
	}
	if err == nil {
		f, st, oerr := openRegular(path)
		if oerr == nil {
			defer f.Close()
			log.Info("files transfer", "path", path, "size", st.Size())
			hdr := fmt.Sprintf(`{"op":"ok","size":%d}`, st.Size())
			if err := ch.Write(ctx, session.Frame{Data: []byte(hdr)}); err != nil {
				return err
			}
			buf := make([]byte, 64*1024)
			for {
				n, rerr := f.Read(buf)
				if n > 0 {
					if err := ch.Write(ctx, session.Frame{Binary: true, Data: buf[:n]}); err != nil {
						return err
					}
				}
				if errors.Is(rerr, io.EOF) {
					if serverLog != nil {
						serverLog(EventTransfer, []any{path, st.Size()}, fmt.Sprintf("Download: \"%s\", Size: %d", path, st.Size()))
					}
					return nil
				}
				if rerr != nil {
					return fmt.Errorf("files transfer %s: %w", path, rerr)
				}
			}
		}
		err = oerr
	}
	log.Info("files transfer refused", "file", opts.File, "err", err)
	_ = ch.Write(ctx, session.Frame{Data: []byte(`{"op":"cancel"}`)})
	return nil
}
