//go:build !windows

package winetest

// Version returns "": only a Windows build can run under wine.
func Version() string { return "" }
