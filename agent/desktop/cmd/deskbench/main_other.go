//go:build !linux

// Command deskbench needs Xvfb and so runs on Linux only.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "deskbench: Linux only (it drives an Xvfb)")
	os.Exit(2)
}
