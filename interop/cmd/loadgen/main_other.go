//go:build !linux

package main

import (
	"fmt"
	"os"
)

// main says why loadgen does nothing here: it reads the server's CPU time
// and RSS from /proc, which only Linux has. It exists so that
// `GOOS=windows go build ./...` and `GOOS=darwin go build ./...` build
// the whole module.
func main() {
	fmt.Fprintln(os.Stderr, "loadgen: Linux only (it reads the server's CPU time and RSS from /proc)")
	os.Exit(2)
}
