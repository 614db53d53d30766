//go:build linux

// Command winelane is the CI's Windows lane: it runs the Windows build's
// tests under wine on this Linux machine and prints how many ran, passed,
// failed and were skipped (with each skip's reason).
//
//	winelane [-timeout 15m] [-run REGEXP] [-v] [packages]
//
// It builds the bcryptprimitives.dll stand-in with MinGW, makes a fresh
// wine prefix in a temporary directory, starts Xvfb for wine's desktop,
// generates the go -overlay that makes os.RemoveAll and UDP sockets work
// under wine 8 (internal/winetest), and runs `GOOS=windows go test -json -exec
// "winelane exec"` with it. Without packages it tests every package of
// this module that the Windows agent (./cmd/meshagent) is built from, and
// internal/winetest. Everything it starts is stopped when it ends.
//
//	winelane exec BINARY [ARGS]
//
// is the -exec wrapper: it runs BINARY under wine64 in the prefix named
// by the environment the lane sets.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/meshgo/meshagent/internal/winetest"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "exec" {
		os.Exit(execWine(os.Args[2:]))
	}
	timeout := flag.Duration("timeout", 15*time.Minute, "bound on the whole lane (prefix, build and tests)")
	run := flag.String("run", "", "go test -run `regexp`")
	verbose := flag.Bool("v", false, "print every test's output, not only failures'")
	parallel := flag.Int("p", 2, "test binaries run at once")
	exclude := map[string]string{}
	flag.Func("exclude", "`pkg=reason`: leave a package (path relative to the module) out of the default set, printing the reason (repeatable)", func(v string) error {
		pkg, reason, ok := strings.Cut(v, "=")
		if !ok || strings.TrimSpace(reason) == "" {
			return errors.New("want pkg=reason")
		}
		exclude[pkg] = reason
		return nil
	})
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	code, err := lane(ctx, flag.Args(), exclude, *run, *verbose, *parallel, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "winelane:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// execWine runs a test binary under wine64, forwarding its exit status.
// The wine process dies with this one (go test kills the -exec program
// on its timeout).
func execWine(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "winelane exec: no program")
		return 2
	}
	if os.Getenv("WINEPREFIX") == "" {
		fmt.Fprintln(os.Stderr, "winelane exec: WINEPREFIX unset: run through winelane, not on its own")
		return 2
	}
	wine, err := winetest.Wine64()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cmd := exec.Command(wine, args...)
	// Wine starts its system processes (services.exe, explorer.exe, ...)
	// from the first program of a session, and they inherit that
	// program's descriptors: given os.Stdout itself, they would keep go
	// test's pipe open long after the test binary ended. Through copies,
	// Wait stops copying WaitDelay after the binary itself has exited.
	cmd.Stdin = os.Stdin
	cmd.Stdout, cmd.Stderr = struct{ io.Writer }{os.Stdout}, struct{ io.Writer }{os.Stderr}
	cmd.WaitDelay = 2 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "winelane exec:", err)
		return 2
	}
	go func() {
		for s := range sigs {
			cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	var ee *exec.ExitError
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
		if !cmd.ProcessState.Success() {
			err = &exec.ExitError{ProcessState: cmd.ProcessState}
		}
	}
	if errors.As(err, &ee) {
		if ee.ExitCode() >= 0 {
			return ee.ExitCode()
		}
		return 1
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "winelane exec:", err)
		return 1
	}
	return 0
}

func lane(ctx context.Context, pkgs []string, exclude map[string]string, run string, verbose bool, parallel int, timeout time.Duration) (int, error) {
	start := time.Now()
	step := func(s string) { fmt.Printf("winelane: %s (%.1fs)\n", s, time.Since(start).Seconds()) }
	work, err := os.MkdirTemp("", "winelane-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(work)

	dll, err := winetest.BuildShim(ctx, work)
	if err != nil {
		return 1, err
	}
	step("built the bcryptprimitives.dll shim")
	overlay, err := winetest.Overlay(ctx, work)
	if err != nil {
		return 1, err
	}
	x, err := winetest.StartXvfb(ctx)
	if err != nil {
		return 1, err
	}
	defer x.Stop()
	step("Xvfb on " + x.Display)
	prefix, err := winetest.NewPrefix(ctx, work+"/prefix", dll, x.Display)
	if err != nil {
		return 1, err
	}
	defer prefix.Close()
	step("fresh wine prefix with the shim")

	self, err := os.Executable()
	if err != nil {
		return 1, err
	}
	if len(pkgs) == 0 {
		if pkgs, err = windowsPackages(ctx); err != nil {
			return 1, err
		}
	}
	kept := pkgs[:0]
	for _, p := range pkgs {
		if reason, ok := exclude[short(p)]; ok {
			fmt.Printf("winelane: not run: %s: %s\n", short(p), reason)
			delete(exclude, short(p))
			continue
		}
		kept = append(kept, p)
	}
	pkgs = kept
	for p := range exclude {
		return 1, fmt.Errorf("-exclude %s: not among the packages", p)
	}
	// Each package gets what is left of the lane's bound, so that go test
	// itself stops a hung binary (and prints its goroutines) before the
	// lane's context kills everything.
	left := time.Until(start.Add(timeout)) - 30*time.Second
	if left < time.Minute {
		left = time.Minute
	}
	args := []string{"test", "-count=1", "-json", "-p", fmt.Sprint(parallel), "-overlay", overlay,
		"-exec", self + " exec", "-timeout", left.Round(time.Second).String()}
	if run != "" {
		args = append(args, "-run", run)
	}
	args = append(args, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	cmd.Env = append(cmd.Env, prefix.Env()...)
	cmd.Env = append(cmd.Env, "WINELANE=1") // internal/winetest checks that it detects wine
	cmd.Stderr = os.Stderr
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 1, err
	}
	step(fmt.Sprintf("GOOS=windows go test %d packages under wine", len(pkgs)))
	if err := cmd.Start(); err != nil {
		return 1, err
	}
	s := newSummary(os.Stdout, verbose)
	s.read(out)
	werr := cmd.Wait()
	s.print()
	step("done")
	if ctx.Err() != nil {
		return 1, fmt.Errorf("lane stopped after %v: %w", time.Since(start).Round(time.Second), ctx.Err())
	}
	if werr != nil || s.failed > 0 || s.pkgFailed > 0 {
		return 1, fmt.Errorf("Windows tests failed under wine (go test: %v)", werr)
	}
	return 0, nil
}

// windowsPackages lists this module's packages that the Windows agent is
// built from and that have tests, plus internal/winetest.
func windowsPackages(ctx context.Context) ([]string, error) {
	mod, err := goOut(ctx, "list", "-m")
	mod = strings.TrimSpace(mod)
	if err != nil {
		return nil, err
	}
	deps, err := goOut(ctx, "list", "-deps", "-f", `{{if not .Standard}}{{.ImportPath}}{{end}}`, "./cmd/meshagent")
	if err != nil {
		return nil, err
	}
	var cands []string
	for _, p := range strings.Fields(deps) {
		if strings.HasPrefix(p, mod+"/") {
			cands = append(cands, p)
		}
	}
	cands = append(cands, mod+"/internal/winetest")
	tested, err := goOut(ctx, append([]string{"list", "-f", `{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}`}, cands...)...)
	if err != nil {
		return nil, err
	}
	return strings.Fields(tested), nil
}

func goOut(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "GOOS=windows", "GOARCH=amd64", "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return string(b), nil
}

// event is one line of go test -json (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

type testKey struct{ pkg, test string }

// summary counts the events of go test -json and keeps each test's
// output until its result says whether it is worth printing.
type summary struct {
	w       io.Writer
	verbose bool
	output  map[testKey][]string

	ran, passed, failed, skipped int // top-level tests
	subtests, subSkipped         int
	pkgs, pkgFailed              int
	skips                        []string
	failures                     []string
}

func newSummary(w io.Writer, verbose bool) *summary {
	return &summary{w: w, verbose: verbose, output: map[testKey][]string{}}
}

func (s *summary) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(s.w, sc.Text()) // build errors and the like
			continue
		}
		s.event(e)
	}
}

func (s *summary) event(e event) {
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "output", "build-output":
		s.output[k] = append(s.output[k], e.Output)
		if s.verbose {
			io.WriteString(s.w, e.Output)
		}
		return
	case "pass", "fail", "skip":
	default:
		return
	}
	out := s.output[k]
	delete(s.output, k)
	if e.Test == "" { // the package's result
		s.pkgs++
		fmt.Fprintf(s.w, "%-4s %s (%.1fs)\n", strings.ToUpper(e.Action), e.Package, e.Elapsed)
		if e.Action == "fail" {
			s.pkgFailed++
			if !s.verbose {
				for _, l := range out {
					io.WriteString(s.w, "     "+l)
				}
			}
		}
		return
	}
	if strings.Contains(e.Test, "/") {
		s.subtests++
		switch e.Action {
		case "fail":
			if !s.verbose {
				s.printOut(out)
			}
		case "skip":
			s.subSkipped++
			s.skips = append(s.skips, short(e.Package)+"."+e.Test+": "+skipReason(out))
		}
		return
	}
	s.ran++
	name := short(e.Package) + "." + e.Test
	switch e.Action {
	case "pass":
		s.passed++
	case "fail":
		s.failed++
		s.failures = append(s.failures, name)
		if !s.verbose {
			s.printOut(out)
		}
	case "skip":
		s.skipped++
		s.skips = append(s.skips, name+": "+skipReason(out))
	}
}

func (s *summary) printOut(out []string) {
	for _, l := range out {
		io.WriteString(s.w, "     "+l)
	}
}

// skipReason is the last line a skipped test logged (its t.Skip message).
func skipReason(out []string) string {
	for i := len(out) - 1; i >= 0; i-- {
		l := strings.TrimSpace(out[i])
		if l == "" || strings.HasPrefix(l, "--- SKIP") || strings.HasPrefix(l, "=== ") {
			continue
		}
		return l
	}
	return "(no reason given)"
}

func short(pkg string) string {
	if i := strings.Index(pkg, "/meshagent/"); i >= 0 {
		return pkg[i+len("/meshagent/"):]
	}
	return pkg
}

func (s *summary) print() {
	fmt.Fprintf(s.w, "\n==== Windows tests under wine: %d packages (%d failed); %d tests ran: %d passed, %d failed, %d skipped; %d subtests (%d skipped)\n",
		s.pkgs, s.pkgFailed, s.ran, s.passed, s.failed, s.skipped, s.subtests, s.subSkipped)
	sort.Strings(s.skips)
	for _, l := range s.skips {
		fmt.Fprintln(s.w, "skipped: "+l)
	}
	for _, l := range s.failures {
		fmt.Fprintln(s.w, "FAILED:  "+l)
	}
}
