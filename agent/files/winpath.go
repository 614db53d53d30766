package files

import (
	"errors"
	"path"
	"strings"
)

// cleanWindowsPath is the Windows path policy, kept free of build tags so
// it is tested on every platform. It accepts "C:\dir" (either slash), a bare
// "C:" and UNC "\\server\share\...". Drive-relative ("C:dir"),
// root-relative ("\dir") and device-namespace ("\\?\", "\\.\") paths are
// refused, so nothing depends on the agent's current directory or reaches
// raw devices; ".." is resolved lexically and cannot climb above the drive
// or the share.
func cleanWindowsPath(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", errors.New("invalid path")
	}
	p = strings.ReplaceAll(p, `\`, "/")
	if len(p) >= 3 && p[0] == '/' && p[2] == ':' && isLetter(p[1]) {
		p = p[1:] // "\C:\x", as some clients build it
	}
	back := func(s string) string { return strings.ReplaceAll(s, "/", `\`) }
	switch {
	case len(p) >= 2 && p[1] == ':' && isLetter(p[0]):
		if len(p) == 2 {
			p += "/"
		}
		if p[2] != '/' {
			return "", errors.New("drive-relative paths are not allowed")
		}
		return strings.ToUpper(p[:1]) + ":" + back(path.Clean(p[2:])), nil
	case strings.HasPrefix(p, "//?/") || strings.HasPrefix(p, "//./"):
		return "", errors.New("device paths are not allowed")
	case strings.HasPrefix(p, "//"):
		parts := strings.SplitN(p[2:], "/", 3)
		if len(parts) < 2 || parts[0] == "" || parts[1] == "" || parts[0] == ".." || parts[1] == ".." || parts[1] == "." {
			return "", errors.New("incomplete UNC path")
		}
		rest := "/"
		if len(parts) == 3 {
			rest = path.Clean("/" + parts[2])
		}
		return back("//" + parts[0] + "/" + parts[1] + rest), nil
	}
	return "", errors.New("path must start with a drive letter")
}

func isLetter(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
