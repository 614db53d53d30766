//go:build !windows

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "paintwin: a Windows program (GOOS=windows go build)")
	os.Exit(2)
}
