//go:build !linux

package main

// rss is only measured on Linux.
func rss() int64 { return 0 }
