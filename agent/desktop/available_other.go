//go:build !linux

package desktop

func waylandAvailable() bool { return false }
