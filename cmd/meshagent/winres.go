package main

// meshagent.exe's version resource and icon live in
// rsrc_windows_amd64.syso, which the Go linker links into windows/amd64
// builds only. It is committed; TestWindowsResourceCurrent fails when it
// no longer matches the generator and main.version. The resource carries
// the source default of main.version: a release build that sets
// -X main.version must regenerate it with that version first.
//
//go:generate go run ../../internal/winres/cmd/winres -version 0.1.0-dev -o rsrc_windows_amd64.syso
