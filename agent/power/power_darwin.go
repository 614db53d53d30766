package power

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
)

// macSys is the macOS path: shutdown(8), which only root may run, and
// pmset sleepnow.
type macSys struct {
	euid func() int
	run  func(file string, args ...string) ([]byte, error)
}

type system = *macSys

func realSystem(*slog.Logger) system {
	return &macSys{euid: os.Geteuid, run: func(f string, a ...string) ([]byte, error) { return exec.Command(f, a...).CombinedOutput() }}
}

func do(s system, a Action, forced bool) (string, error) {
	file, args := darwinCommand(a)
	if a != Sleep && s.euid() != 0 {
		return "", fmt.Errorf("shutdown(8) needs root: %w", ErrPrivilege)
	}
	if out, err := s.run(file, args...); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", file, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return file + " " + strings.Join(args, " "), nil
}
