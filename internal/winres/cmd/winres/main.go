// Command winres writes the .syso holding meshagent.exe's version
// resource and icon (package winres). cmd/meshagent runs it through
// go generate; the output is committed so builds need no generation step.
//
//	winres -version 0.1.0-dev -o rsrc_windows_amd64.syso
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/meshgo/meshagent/internal/winres"
)

func main() {
	version := flag.String("version", "", "agent version (main.version)")
	out := flag.String("o", "rsrc_windows_amd64.syso", "output file")
	flag.Parse()
	b, err := winres.Agent(*version)
	if err == nil {
		err = os.WriteFile(*out, b, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "winres:", err)
		os.Exit(1)
	}
}
