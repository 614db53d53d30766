package updates

import (
	"crypto/sha512"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/meshgo/meshagent/proto/agentupdate"
)

// Binary is one of our agent's builds that can be offered.
type Binary struct {
	Platform string // GOOS/GOARCH
	Path     string
	Version  string // from the build's -X main.version, "" if not stamped
	Size     int64
	SHA384   string
	data     []byte
}

// binaryName matches build/release.sh's file names.
var binaryName = regexp.MustCompile(`^meshagent-([a-z0-9]+)-([a-z0-9]+)(\.exe)?$`)

// LoadCatalog reads every release build in dir (build/release.sh's output:
// meshagent-<goos>-<goarch>[.exe], and VERSION), keyed by platform. Files are read into
// memory once so that what is hashed and signed is exactly what is served,
// even if the directory changes during a rollout.
func LoadCatalog(dir string) (map[string]*Binary, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("updates: binaries directory: %w", err)
	}
	// build/release.sh writes the version it stamped into VERSION: Go
	// does not record -ldflags in the build information of a -trimpath
	// build, which release builds are.
	dirVersion := ""
	if b, err := os.ReadFile(filepath.Join(dir, "VERSION")); err == nil && len(b) < 128 {
		dirVersion = strings.TrimSpace(string(b))
	}
	out := map[string]*Binary{}
	for _, e := range ents {
		m := binaryName.FindStringSubmatch(e.Name())
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		if (m[1] == "windows") != (m[3] == ".exe") {
			continue
		}
		b, err := LoadBinary(filepath.Join(dir, e.Name()), m[1]+"/"+m[2])
		if err != nil {
			return nil, err
		}
		if b.Version == "" {
			b.Version = dirVersion
		}
		out[b.Platform] = b
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("updates: no agent builds (meshagent-<os>-<arch>[.exe]) in %s", dir)
	}
	return out, nil
}

// LoadBinary reads one build.
func LoadBinary(path, platform string) (*Binary, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("updates: %w", err)
	}
	if len(data) == 0 || len(data) > agentupdate.MaxSize {
		return nil, fmt.Errorf("updates: %s: %d bytes", path, len(data))
	}
	h := sha512.Sum384(data)
	return &Binary{Platform: platform, Path: path, Version: stampedVersion(path), Size: int64(len(data)), SHA384: hex.EncodeToString(h[:]), data: data}, nil
}

var versionFlag = regexp.MustCompile(`-X '?main\.version=([^' ]+)`)

// stampedVersion reads the version release.sh stamps with -ldflags -X from
// the Go build information recorded in the binary.
func stampedVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "-ldflags" {
			if m := versionFlag.FindStringSubmatch(s.Value); m != nil {
				return strings.Trim(m[1], `"`)
			}
		}
	}
	return ""
}
