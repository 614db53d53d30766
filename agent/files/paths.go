package files

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

var errBadName = errors.New("invalid name")

// checkName accepts a single directory entry name. The protocol sends a
// folder plus names inside it (delfiles, oldname, names, name, output);
// a name with a separator or "..", or an empty one, would silently act on
// some other folder, so it is refused rather than joined.
func checkName(n string) error {
	if n == "" || n == "." || n == ".." || strings.ContainsAny(n, nameForbidden) {
		return fmt.Errorf("%w %q", errBadName, n)
	}
	return nil
}

// join resolves folder (as the client sent it) and checks name.
func join(folder, name string) (string, error) {
	dir, err := resolvePath(folder)
	if err != nil {
		return "", err
	}
	if err := checkName(name); err != nil {
		return "", err
	}
	return filepath.Join(dir, name), nil
}

// within reports whether p is base or below it (both clean).
func within(p, base string) bool {
	if p == base {
		return true
	}
	rel, err := filepath.Rel(base, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

// entry is one item of an ls reply (sessions.md §3.4).
type entry struct {
	N  string `json:"n"`
	T  int    `json:"t"`
	Dt string `json:"dt,omitempty"`
	S  *int64 `json:"s,omitempty"`
	F  *int64 `json:"f,omitempty"`
	D  string `json:"d,omitempty"`
}

// mtimeFormat is the reference's date layout; we give real UTC (§7 #9).
const mtimeFormat = "2006-01-02T15:04:05Z"

// listDir lists dir like the reference: stat follows symlinks, entries
// whose stat fails are left out, "." and ".." never appear.
func listDir(dir string) ([]entry, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	out := make([]entry, 0, len(ents))
	for _, e := range ents {
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		it := entry{N: e.Name(), T: 3, D: st.ModTime().UTC().Format(mtimeFormat)}
		if st.IsDir() {
			it.T = 2
		} else {
			sz := st.Size()
			it.S = &sz
		}
		out = append(out, it)
	}
	return out, nil
}

// reason turns a filesystem error into a short text for the user, without
// the temporary file names our own operations use.
func reason(err error) string {
	var pe *os.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err.Error()
	case errors.As(err, &le):
		return le.Err.Error()
	}
	return err.Error()
}
