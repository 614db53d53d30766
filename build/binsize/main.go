// Command binsize says what each module and package costs in the agent's
// release binary, and which reachable functions make the linker keep every
// exported method of every type (a call of reflect's Method or
// MethodByName with a non-constant argument turns that dead-code
// elimination off for the whole program).
//
//	go run ./build/binsize            sizes by module and the top packages
//	go run ./build/binsize -why       also the call chains that keep all methods
//	go run ./build/binsize -n 60      more packages
//
// It builds ./cmd/meshagent with build/release.sh's flags (CGO_ENABLED=0,
// -trimpath, its -tags, -s -w) for the file size, and once more without -s (symbols
// kept, still without DWARF) to attribute bytes to packages by the
// ELF symbol table (so linux targets only). Symbol sizes cover code, read-only data and
// initialised data; the runtime's function tables (go:func.*, pclntab)
// and section padding are counted under "(runtime tables)".
//
// Measured with it (linux/amd64, Go 1.26, 2026-12-02): no flags 32.76 MB;
// -w (no DWARF) 25.58; -s -w 23.16; -trimpath saves 0.03 on top; the
// nethttpomithttp2 tag (release.sh) 22.79. Of the symbol bytes, goja is
// 1.84 MB, golang.org/x/text 1.54 (1.27 of it collate's tables, reached
// only through goja's String.prototype.localeCompare), pion 1.9 in all.
// -why finds one root that keeps every exported method of every type:
// goja's objectGoReflect (buildMethodsInfo, _getMethod call Method with a
// variable index), reached through Runtime.ToValue, which goja's own
// JSON.stringify and Promise code call, so no change in our code removes
// it; godbus's exportedMethod entries only follow from it. Removing those
// two calls in a scratch copy of goja (an experiment, not shipped) gave
// 20.93 MB: 2.23 MB is what that costs. The .text (10.2 MB) and
// .gopclntab (8.2 MB) sections are most of the file.
package main

import (
	"bufio"
	"bytes"
	"cmp"
	"debug/elf"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/meshgo/meshagent/build/agentflags"
)

func main() {
	why := flag.Bool("why", false, "print the call chains that reach reflect Method/MethodByName users")
	top := flag.Int("n", 40, "packages to list")
	goos := flag.String("goos", "linux", "GOOS to build for (ELF targets)")
	goarch := flag.String("goarch", "amd64", "GOARCH to build for")
	pkg := flag.String("pkg", "./cmd/meshagent", "package to build")
	flag.StringVar(&tags, "tags", agentflags.Tags, "build tags (build/agentflags, as build/release.sh, by default)")
	flag.Parse()
	if err := run(os.Stdout, *pkg, *goos, *goarch, *top, *why); err != nil {
		fmt.Fprintln(os.Stderr, "binsize:", err)
		os.Exit(1)
	}
}

func run(w io.Writer, pkg, goos, goarch string, top int, why bool) error {
	dir, err := os.MkdirTemp("", "binsize-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	release := filepath.Join(dir, "release")
	syms := filepath.Join(dir, "syms")
	if _, err := build(release, pkg, goos, goarch, "-s -w"); err != nil {
		return err
	}
	dump, err := build(syms, pkg, goos, goarch, "-w"+map[bool]string{true: " -dumpdep"}[why])
	if err != nil {
		return err
	}
	st, err := os.Stat(release)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s %s/%s, CGO_ENABLED=0 -trimpath -tags=%q -ldflags=-s -w: %d bytes (%.2f MB)\n\n",
		pkg, goos, goarch, tags, st.Size(), float64(st.Size())/1e6)

	byPkg, total, err := symbolSizes(syms)
	if err != nil {
		return err
	}
	byMod := map[string]int64{}
	for p, n := range byPkg {
		byMod[module(p)] += n
	}
	fmt.Fprintf(w, "by module (symbol bytes in the file; %.2f MB in all)\n", float64(total)/1e6)
	printTable(w, byMod, total, 0)
	fmt.Fprintf(w, "\nby package (top %d)\n", top)
	printTable(w, byPkg, total, top)
	if why {
		fmt.Fprintln(w, "\nreachable functions that keep every exported method (first path the linker took):")
		reflectChains(w, dump)
	}
	return nil
}

// symbolSizes sums the sizes of the symbols that occupy bytes in the ELF
// file (not .bss/.noptrbss: the FIPS DRBG's 32 MiB buffer is there) by
// package.
func symbolSizes(path string) (map[string]int64, int64, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, 0, fmt.Errorf("%w (binsize reads ELF: use -goos linux)", err)
	}
	defer f.Close()
	syms, err := f.Symbols()
	if err != nil {
		return nil, 0, err
	}
	byPkg := map[string]int64{}
	var total int64
	for _, s := range syms {
		if s.Size == 0 || int(s.Section) <= 0 || int(s.Section) >= len(f.Sections) {
			continue
		}
		if f.Sections[s.Section].Type == elf.SHT_NOBITS {
			continue
		}
		byPkg[symPackage(s.Name)] += int64(s.Size)
		total += int64(s.Size)
	}
	return byPkg, total, nil
}

// tags are the build tags for both builds (-tags).
var tags string

// build links pkg with the given -ldflags and returns the linker's stderr
// (the -dumpdep graph when asked for).
func build(out, pkg, goos, goarch, ldflags string) ([]byte, error) {
	cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-ldflags", ldflags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s: %w\n%s", ldflags, err, tail(stderr.Bytes()))
	}
	return stderr.Bytes(), nil
}

func tail(b []byte) []byte {
	if len(b) > 4000 {
		return b[len(b)-4000:]
	}
	return b
}

func printTable(w io.Writer, m map[string]int64, total int64, top int) {
	type row struct {
		name string
		n    int64
	}
	var rows []row
	for k, v := range m {
		rows = append(rows, row{k, v})
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(b.n, a.n), strings.Compare(a.name, b.name)) })
	if top > 0 && len(rows) > top {
		rows = rows[:top]
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %9.1f kB %5.1f%%  %s\n", float64(r.n)/1e3, 100*float64(r.n)/float64(total), r.name)
	}
}

// symPackage is the import path a linker symbol belongs to.
func symPackage(s string) string {
	for _, p := range []string{"type:.eq.", "type:.hash.", "type:*", "type:", "go:itab.*", "go:itab.", "go:link.", "go:info."} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
	}
	if strings.HasPrefix(s, "go:") || strings.HasPrefix(s, "runtime.") && strings.Contains(s, "tab") {
		return "(runtime tables)"
	}
	if i := strings.IndexAny(s, "[(,"); i >= 0 {
		s = s[:i]
	}
	slash := strings.LastIndexByte(s, '/')
	if i := strings.IndexByte(s[slash+1:], '.'); i >= 0 {
		s = s[:slash+1+i]
	}
	if s == "" || strings.ContainsAny(s, " \"") {
		return "(other)"
	}
	return s
}

// module is the module (or "std") a package path belongs to, by its shape.
func module(p string) string {
	if strings.HasPrefix(p, "(") {
		return p
	}
	if strings.HasPrefix(p, "vendor/") {
		return "std (vendored " + strings.Join(strings.SplitN(strings.TrimPrefix(p, "vendor/"), "/", 4)[:min(3, strings.Count(p, "/"))], "/") + ")"
	}
	parts := strings.Split(p, "/")
	if !strings.Contains(parts[0], ".") {
		return "std"
	}
	if parts[0] == "github.com" && len(parts) >= 3 && parts[1] == "meshgo" {
		if len(parts) >= 4 {
			return strings.Join(parts[:4], "/")
		}
		return p
	}
	n := 3
	if len(parts) >= 4 && (parts[3] == "v2" || parts[3] == "v3" || parts[3] == "v4" || parts[3] == "v5") {
		n = 4
	}
	return strings.Join(parts[:min(n, len(parts))], "/")
}

// reflectChains reads the linker's -dumpdep output (each reachable symbol
// once, with the edge that first reached it) and prints, for every
// reachable symbol the compiler marked <ReflectMethod>, the path from the
// entry point to it.
func reflectChains(w io.Writer, dump []byte) {
	parent := map[string]string{}
	var marked []string
	clean := func(s string) (string, bool) {
		s = strings.TrimSpace(s)
		refl := strings.Contains(s, "<ReflectMethod>")
		if i := strings.Index(s, " <"); i >= 0 {
			s = s[:i]
		}
		return s, refl
	}
	sc := bufio.NewScanner(bytes.NewReader(dump))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		a, b, ok := strings.Cut(sc.Text(), " -> ")
		if !ok {
			continue
		}
		from, _ := clean(a)
		to, refl := clean(b)
		if _, seen := parent[to]; !seen {
			parent[to] = from
			if refl {
				marked = append(marked, to)
			}
		}
	}
	for _, m := range marked {
		var chain []string
		for n := m; n != "" && n != "_" && len(chain) < 200; n = parent[n] {
			chain = append(chain, n)
		}
		slices.Reverse(chain)
		fmt.Fprintf(w, "  %s\n", m)
		for _, c := range chain {
			if strings.Contains(c, "meshgo/meshagent") || c == chain[len(chain)-1] || strings.HasPrefix(c, "main.") {
				fmt.Fprintf(w, "      <- %s\n", c)
			}
		}
	}
}
