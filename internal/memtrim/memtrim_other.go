//go:build !linux

package memtrim

func trimExecutable() {}
