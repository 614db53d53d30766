// Package agentflags is the one place that lists the build tags the agent
// is built with, so every builder of the agent ships the same program:
// build/release.sh reads tags.txt, internal/agentbin (tests), server-lite's
// agent download (agentdl) and its local agent (main.go) read Tags.
//
// nethttpomithttp2 leaves HTTP/2 out of net/http (0.38 MB of the binary):
// the agent speaks HTTP/1.1 only (the WebSocket upgrade, update downloads,
// the IP-location query). `go run ./build/binsize` says what each package
// costs.
package agentflags

import (
	_ "embed"
	"strings"
)

//go:embed tags.txt
var tagsFile string

// Tags is the -tags value (comma-separated) for `go build ./cmd/meshagent`.
var Tags = strings.Join(strings.Fields(tagsFile), ",")
