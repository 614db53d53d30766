// Package winetest is the support for running the Windows build's tests
// under wine (the CI's Windows lane, internal/winetest/cmd/winelane).
//
// Test code on any OS calls Version to learn whether it runs under wine
// and SkipUnderWine to skip, with a one-line reason naming the wine gap,
// a test that real Windows passes but wine cannot. The Linux-only half
// (lane_linux.go) builds the bcryptprimitives.dll stand-in, a fresh wine
// prefix and the go -overlay that the lane needs.
package winetest

import "testing"

// SkipUnderWine skips t when it runs under wine. gap says in one line
// which wine limitation makes the test unable to pass there (it is
// printed in the lane's summary); on real Windows and on other OSes the
// test runs.
func SkipUnderWine(t testing.TB, gap string) {
	t.Helper()
	if v := Version(); v != "" {
		t.Skipf("wine %s: %s", v, gap)
	}
}
