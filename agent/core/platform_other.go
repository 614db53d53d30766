//go:build !windows

package core

import (
	"bytes"
	"os"
	"runtime"
	"strings"
)

// osName is os-release's PRETTY_NAME, or GOOS without one.
func osName() string {
	name := runtime.GOOS
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range bytes.Split(data, []byte("\n")) {
			if v, ok := bytes.CutPrefix(line, []byte("PRETTY_NAME=")); ok {
				name = strings.Trim(string(v), `"`)
			}
		}
	}
	return name
}
