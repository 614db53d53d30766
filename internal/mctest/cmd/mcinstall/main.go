// Command mcinstall installs npm meshcentral@1.1.55 into the cache directory
// the mctest harness uses ($MESHGO_MESHCENTRAL_DIR or the user cache dir),
// so that parallel test binaries find it ready. .ci/run calls it before the
// tests. It prints the node_modules/meshcentral path.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/meshgo/meshagent/internal/mctest"
)

func main() {
	p, err := mctest.EnsureInstalled(func(format string, args ...any) {
		slog.Info(fmt.Sprintf(format, args...))
	})
	if err != nil {
		slog.Error("install failed", "err", err)
		os.Exit(1)
	}
	fmt.Println(p)
}
