package elfdeps

// The oracle: what the real loader maps for the fixture programs of fixtures/ (see fixtures/README.md), read
// from its trace mode. Resolver tests compare their answer with traceLoader for every fixturePrograms entry.

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// traceEntry is one object the loader mapped (or failed to find), in load order.
type traceEntry struct {
	Name string // the DT_NEEDED name or path printed before "=>", or the path printed alone
	Path string // the path it mapped (relative ones joined to the working directory); "" if not found
}

// traceLoader runs prog under the real loader in trace mode (env LD_TRACE_LOADED_OBJECTS=1, plus extra env such
// as LD_LIBRARY_PATH, working dir dir) and returns the objects it maps in load order: each entry's Name (the
// DT_NEEDED name or path printed before "=>"), Path (the absolute path it mapped; "" if "not found").
// linux-vdso is dropped; the interpreter is listed (glibc prints it where it is first needed, musl first).
// Absolute paths are kept as printed (glibc does not canonicalise "$ORIGIN/../lib"); compare with filepath.Clean.
//
// For musl programs it runs the musl loader in ldd mode (`/lib/ld-musl-x86_64.so.1 --list prog`) instead, with
// prog's symlinks resolved: a kernel-started musl program takes $ORIGIN from /proc/self/exe, --list from the
// path it is given. musl's "Error loading shared library NAME" lines become entries with Path "", in order.
//
// It refuses (t.Fatal) files without PT_INTERP: a static binary ignores LD_TRACE_LOADED_OBJECTS and really runs.
// Inherited LD_* and GLIBC_TUNABLES variables are dropped, so only env reaches the loader.
func traceLoader(t testing.TB, dir, prog string, env ...string) []traceEntry {
	t.Helper()
	entries, err := oracleTrace(t.Context(), dir, prog, env)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// fixtureProgram is one fixture program and what the real loader does with it.
type fixtureProgram struct {
	Name string   // scenario, e.g. "rpath-inherit-chain"
	Path string   // absolute path of the program to execute (may be a symlink)
	Dir  string   // working directory to run it in
	Env  []string // extra environment, e.g. "LD_LIBRARY_PATH=..."
	Musl bool     // linked against musl (PT_INTERP /lib/ld-musl-x86_64.so.1)
	// WantMissing are the names the loader reports as not found, in load order.
	WantMissing []string
	// Want are the trace entries for the fixture's own objects, in load order: those mapped from the build
	// directory (Path cleaned) and the not-found ones (Path ""). System objects (libc, the loader) are left out.
	Want []traceEntry
}

// fixturePrograms lists every fixture program with the answer the real loader gives on this machine
// (hwcaps choices depend on the CPU; $LIB and $PLATFORM on the glibc build: both are read from the host).
func fixturePrograms(t testing.TB) []fixtureProgram {
	t.Helper()
	b := buildFixtures(t)
	host := oracleHostEnv(t, b)
	caps := oracleHostHWCaps(t, filepath.Join(b, "rpath", "prog"))
	at := func(rel string) string { return filepath.Join(b, rel) }
	e := func(name, rel string) traceEntry {
		if rel == "" {
			return traceEntry{Name: name}
		}
		return traceEntry{Name: name, Path: at(rel)}
	}
	pick := func(dir string, subdirs ...string) string { // the first supported subdir holding libhw.so.1
		for _, s := range subdirs {
			if caps[s] {
				return "hwcaps/" + dir + "/" + s + "/libhw.so.1"
			}
		}
		return "hwcaps/" + dir + "/libhw.so.1"
	}
	const v2 = "glibc-hwcaps/x86-64-v2"
	llp := "LD_LIBRARY_PATH=" + at("llp/llp")
	origin := []traceEntry{e("libo.so.1", "origin/real/lib/libo.so.1"), e("libo2.so.1", "origin/real/lib2/libo2.so.1")}
	mu := []traceEntry{e("libmu.so.1", "musl/lib/libmu.so.1"), e("libmu2.so.1", "musl/lib2/libmu2.so.1")}
	slo := at("slash/sub/libslo.so")

	progs := []fixtureProgram{
		{Name: "rpath", Path: "rpath/prog", Want: []traceEntry{e("librp.so.1", "rpath/lib/librp.so.1")}},
		{Name: "runpath", Path: "runpath/prog", Want: []traceEntry{e("librn.so.1", "runpath/lib/librn.so.1")}},
		{Name: "rpath-inherit", Path: "inherit/prog", Want: []traceEntry{
			e("libia.so.1", "inherit/dirA/libia.so.1"), e("libib.so.1", "inherit/dirB/libib.so.1")}},
		{Name: "rpath-inherit-chain", Path: "inherit/prog-chain", Want: []traceEntry{
			e("libic1.so.1", "inherit/c1/libic1.so.1"), e("libic2.so.1", "inherit/c2/libic2.so.1"),
			e("libic3.so.1", "inherit/c3/libic3.so.1")}},
		{Name: "rpath-blocked-by-runpath", Path: "inherit/prog-block", Want: []traceEntry{
			e("libiba.so.1", "inherit/blockA/libiba.so.1"), e("libib.so.1", "inherit/dirC/libib.so.1")}},
		{Name: "runpath-not-inherited", Path: "inherit/prog-runpath", Want: []traceEntry{
			e("libir.so.1", "inherit/rdir/libir.so.1"), e("libir2.so.1", "")}},
		{Name: "origin", Path: "origin/real/bin/prog", Want: origin},
		{Name: "origin-symlink", Path: "origin/link/prog", Want: origin},
		{Name: "origin-braced-symlink", Path: "origin/link/prog-braced", Want: origin},
		{Name: "dst-lib", Path: "dst/prog-lib", Want: []traceEntry{e("libdstl.so.1", "dst/"+host["LIB"]+"/libdstl.so.1")}},
		{Name: "dst-platform", Path: "dst/prog-platform", Want: []traceEntry{
			e("libdstp.so.1", "dst/"+host["PLATFORM"]+"/libdstp.so.1")}},
		{Name: "dst-unknown-kept", Path: "dst/prog-unknown", Want: []traceEntry{e("libdstu.so.1", "dst/$FOO/libdstu.so.1")}},
		{Name: "hwcaps", Path: "hwcaps/prog-hwcaps", Want: []traceEntry{e("libhw.so.1", pick("hw", v2))}},
		{Name: "hwcaps-legacy", Path: "hwcaps/prog-legacy", Want: []traceEntry{e("libhw.so.1", pick("lx", "x86_64"))}},
		{Name: "hwcaps-legacy-tls", Path: "hwcaps/prog-tls", Want: []traceEntry{e("libhw.so.1", pick("lt", "tls", "x86_64"))}},
		{Name: "hwcaps-before-legacy", Path: "hwcaps/prog-mixed", Want: []traceEntry{e("libhw.so.1", pick("hl", v2, "tls"))}},
		{Name: "wrong-machine", Path: "wrongmach/prog", Want: []traceEntry{e("libwm.so.1", "wrongmach/right/libwm.so.1")}},
		{Name: "wrong-machine-only", Path: "wrongmach/prog-only", Want: []traceEntry{e("libwm.so.1", "")}},
		{Name: "missing", Path: "missing/prog", Want: []traceEntry{e("libgone.so.1", "")}},
		{Name: "musl", Path: "musl/prog", Musl: true, Want: mu},
		{Name: "musl-symlink", Path: "musl/link/prog", Musl: true, Want: mu},
		{Name: "musl-rpath", Path: "musl/prog-rpath", Musl: true, Want: mu},
		{Name: "musl-ld-library-path-before-rpath", Path: "musl/prog-rpath", Musl: true,
			Env:  []string{"LD_LIBRARY_PATH=" + at("musl/llp")},
			Want: []traceEntry{e("libmu.so.1", "musl/llp/libmu.so.1"), e("libmu2.so.1", "musl/lib2/libmu2.so.1")}},
		{Name: "musl-dst-disables-runpath", Path: "musl/prog-dst", Musl: true, Want: []traceEntry{e("libmu.so.1", "")}},
		{Name: "musl-wrong-machine-mapped", Path: "musl/prog-machine", Musl: true,
			Want: []traceEntry{e("libwm.so.1", "musl/machine/libwm.so.1")}},
		{Name: "musl-wrong-class-fatal", Path: "musl/prog-class32", Musl: true, Want: []traceEntry{e("libwm.so.1", "")}},
		{Name: "slash-name", Path: "slash/prog", Dir: "slash",
			Want: []traceEntry{e("./sub/libslash.so", "slash/sub/libslash.so")}},
		{Name: "slash-name-other-cwd", Path: "slash/prog", Dir: "slash/sub", Want: []traceEntry{e("./sub/libslash.so", "")}},
		{Name: "slash-name-origin", Path: "slash/prog-origin", Dir: "slash/sub",
			Want: []traceEntry{{Name: slo, Path: slo}}}, // DT_NEEDED "$ORIGIN/sub/libslo.so", printed expanded
		{Name: "soname-match", Path: "soname/prog", Want: []traceEntry{
			e("libsy.so.1", "soname/lib/libsy.so.1"), e("libsx.so.1.0", "soname/lib/libsx.so.1.0")}},
		{Name: "bfs-order", Path: "bfs/prog", Want: []traceEntry{
			e("libd1.so.1", "bfs/lib/libd1.so.1"), e("libd2.so.1", "bfs/lib/libd2.so.1"), e("libd3.so.1", "bfs/lib/libd3.so.1"),
			e("libd4.so.1", "bfs/lib/libd4.so.1"), e("libd5.so.1", "bfs/lib/libd5.so.1")}},
		{Name: "nodeflib", Path: "nodeflib/prog", Want: []traceEntry{
			e("libnf.so.1", "nodeflib/lib/libnf.so.1"), e("libc.so.6", "")}},
		{Name: "nodeflib-libc-in-runpath", Path: "nodeflib/prog-libc", Want: []traceEntry{
			e("libnf.so.1", "nodeflib/lib/libnf.so.1")}},
		{Name: "nodeflib-library", Path: "nodeflib/prog-lib", Want: []traceEntry{
			e("libnfm.so.1", "nodeflib/lib/libnfm.so.1"), e("libm.so.6", "")}},
		{Name: "ld-library-path", Path: "llp/prog-plain", Env: []string{llp}, Want: []traceEntry{e("libq.so.1", "llp/llp/libq.so.1")}},
		{Name: "ld-library-path-unset", Path: "llp/prog-plain", Want: []traceEntry{e("libq.so.1", "")}},
		{Name: "ld-library-path-after-rpath", Path: "llp/prog-rpath", Env: []string{llp},
			Want: []traceEntry{e("libq.so.1", "llp/rp/libq.so.1")}},
		{Name: "ld-library-path-before-runpath", Path: "llp/prog-runpath", Env: []string{llp},
			Want: []traceEntry{e("libq.so.1", "llp/llp/libq.so.1")}},
		{Name: "ld-library-path-origin", Path: "llp/prog-plain", Env: []string{"LD_LIBRARY_PATH=$ORIGIN/llp"},
			Want: []traceEntry{e("libq.so.1", "llp/llp/libq.so.1")}},
		{Name: "ld-library-path-empty-is-cwd", Path: "llp/prog-plain", Dir: "llp/llp",
			Env:  []string{"LD_LIBRARY_PATH=/nonexistent:"},
			Want: []traceEntry{e("libq.so.1", "llp/llp/libq.so.1")}}, // printed as the bare "libq.so.1 (0x...)"
	}
	for i := range progs {
		p := &progs[i]
		p.Path = at(p.Path)
		p.Dir = at(p.Dir) // "" => the build directory
		for _, w := range p.Want {
			if w.Path == "" {
				p.WantMissing = append(p.WantMissing, w.Name)
			}
		}
	}
	return progs
}

var oracleBuild struct {
	once sync.Once
	dir  string
	err  error
}

// buildFixtures runs `make -C <repo>/fixtures` once per test binary and returns the absolute build directory.
// It skips only if gcc is missing. Concurrent test binaries are serialised by a lock on fixtures/Makefile.
func buildFixtures(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is not installed: the loader fixtures (fixtures/) cannot be built")
	}
	oracleBuild.once.Do(func() { oracleBuild.dir, oracleBuild.err = oracleMake() })
	if oracleBuild.err != nil {
		t.Fatal(oracleBuild.err)
	}
	return oracleBuild.dir
}

func oracleMake() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the repository root: no go.mod above the test directory")
		}
		dir = parent
	}
	fixtures := filepath.Join(dir, "fixtures")
	lock, err := os.Open(filepath.Join(fixtures, "Makefile"))
	if err != nil {
		return "", fmt.Errorf("opening the fixtures Makefile: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "make", "-C", fixtures).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the fixtures (make -C %s): %w\n%s", fixtures, err, out)
	}
	return filepath.Join(fixtures, "build"), nil
}

func oracleTrace(ctx context.Context, dir, prog string, env []string) ([]traceEntry, error) {
	file := prog
	if !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	file, err := filepath.Abs(file)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	interp, err := oracleInterp(file)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out, stderr bytes.Buffer
	switch base := filepath.Base(interp); {
	case strings.HasPrefix(base, "ld-musl-"):
		real, err := filepath.EvalSymlinks(file)
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, interp, "--list", real)
		cmd.Dir, cmd.Env = dir, oracleEnv(env)
		cmd.Stdout, cmd.Stderr = &out, &out // one pipe: error lines stay in load order
		runErr := cmd.Run()
		entries, failed, err := oracleParseMusl(out.String(), dir)
		var exit *exec.ExitError
		if err == nil && runErr != nil && !(errors.As(runErr, &exit) && exit.ExitCode() == 127 && failed) {
			err = runErr
		}
		if err != nil {
			return nil, fmt.Errorf("tracing %s with %s --list: %w\n%s", file, interp, err, out.String())
		}
		return entries, nil
	case strings.HasPrefix(base, "ld-linux"):
		cmd := exec.CommandContext(ctx, file)
		cmd.Dir, cmd.Env = dir, append(oracleEnv(env), "LD_TRACE_LOADED_OBJECTS=1")
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("tracing %s (LD_TRACE_LOADED_OBJECTS=1): %w\nstdout:\n%sstderr:\n%s", file, err, out.String(), stderr.String())
		}
		entries, err := oracleParseGlibc(out.String(), dir)
		if err != nil {
			return nil, fmt.Errorf("tracing %s: %w", file, err)
		}
		return entries, nil
	default:
		return nil, fmt.Errorf("tracing %s: unknown loader %s (want glibc ld-linux* or musl ld-musl-*)", file, interp)
	}
}

// oracleInterp returns file's PT_INTERP and refuses a file without one.
func oracleInterp(file string) (string, error) {
	f, err := elf.Open(file)
	if err != nil {
		return "", fmt.Errorf("reading %q: %w", file, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				return "", fmt.Errorf("reading PT_INTERP of %q: %w", file, err)
			}
			return strings.TrimRight(string(b), "\x00"), nil
		}
	}
	return "", fmt.Errorf("%s has no PT_INTERP: refusing to trace it (a static program would really run)", file)
}

// oracleEnv is the test's environment without loader variables, plus extra.
func oracleEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LD_") && !strings.HasPrefix(kv, "GLIBC_TUNABLES=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// oracleParseLine parses "\tNAME => PATH (0x...)", "\tPATH (0x...)" and "\tNAME => not found".
func oracleParseLine(line, dir string) (traceEntry, error) {
	bad := fmt.Errorf("unexpected trace line %q", line)
	l, ok := strings.CutPrefix(line, "\t")
	if !ok {
		return traceEntry{}, bad
	}
	if name, ok := strings.CutSuffix(l, " => not found"); ok && name != "" {
		return traceEntry{Name: name}, nil
	}
	i := strings.LastIndex(l, " (0x")
	if i <= 0 || !strings.HasSuffix(l, ")") || strings.Trim(l[i+4:len(l)-1], "0123456789abcdef") != "" || i+5 == len(l) {
		return traceEntry{}, bad
	}
	name, path, arrow := strings.Cut(l[:i], " => ")
	if !arrow {
		path = name
	}
	if name == "" || path == "" {
		return traceEntry{}, bad
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(dir, path)
	}
	return traceEntry{Name: name, Path: path}, nil
}

func oracleParseGlibc(out, dir string) ([]traceEntry, error) {
	var entries []traceEntry
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		e, err := oracleParseLine(line, dir)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(e.Name, "linux-vdso") && !strings.HasPrefix(e.Name, "linux-gate") {
			entries = append(entries, e)
		}
	}
	return entries, nil
}

// oracleParseMusl parses musl's --list output with its stderr merged; failed reports load errors.
func oracleParseMusl(out, dir string) (entries []traceEntry, failed bool, err error) {
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "Error loading shared library "); ok {
			name, _, ok := strings.Cut(rest, ": ")
			if !ok || name == "" {
				return nil, false, fmt.Errorf("unexpected musl error line %q", line)
			}
			entries, failed = append(entries, traceEntry{Name: name}), true
			continue
		}
		if strings.HasPrefix(line, "Error relocating ") { // follows from a library that did not load
			continue
		}
		e, err := oracleParseLine(line, dir)
		if err != nil {
			return nil, false, err
		}
		entries = append(entries, e)
	}
	return entries, failed, nil
}

// oracleHostEnv reads build/host.env: how the Makefile expanded $LIB and $PLATFORM, and the libc directory.
func oracleHostEnv(t testing.TB, build string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(build, "host.env"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	return env
}

// oracleHostHWCaps asks the glibc loader of prog (`ld.so --help`) which glibc-hwcaps subdirectories
// ("glibc-hwcaps/x86-64-v2") and legacy subdirectories ("tls", "x86_64") it searches on this machine.
func oracleHostHWCaps(t testing.TB, prog string) map[string]bool {
	t.Helper()
	interp, err := oracleInterp(prog)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), interp, "--help")
	cmd.Env = oracleEnv(nil)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running %s --help: %v", interp, err)
	}
	caps := map[string]bool{}
	prefix := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Subdirectories of glibc-hwcaps directories"):
			prefix = "glibc-hwcaps/"
		case strings.HasPrefix(line, "Legacy HWCAP subdirectories"):
			prefix = "legacy"
		case strings.TrimSpace(line) == "":
			prefix = ""
		case prefix != "" && strings.Contains(line, "supported, searched"):
			name := strings.Fields(line)[0]
			if prefix == "legacy" {
				caps[name] = true
			} else {
				caps[prefix+name] = true
			}
		}
	}
	return caps
}

// oracleOwned keeps the entries of the fixture's own objects (under build, or not found), paths cleaned.
func oracleOwned(entries []traceEntry, build string) []traceEntry {
	var owned []traceEntry
	for _, e := range entries {
		if e.Path != "" {
			e.Path = filepath.Clean(e.Path)
			if !strings.HasPrefix(e.Path, build+string(filepath.Separator)) {
				continue
			}
		}
		owned = append(owned, e)
	}
	return owned
}

// oracleDiff renders want and got one entry a line, "-" for want only, "+" for got only.
func oracleDiff(want, got []traceEntry) string {
	var b strings.Builder
	i, j := 0, 0
	for i < len(want) || j < len(got) {
		switch {
		case i < len(want) && j < len(got) && want[i] == got[j]:
			fmt.Fprintf(&b, "  %s => %q\n", want[i].Name, want[i].Path)
			i, j = i+1, j+1
		case i < len(want):
			fmt.Fprintf(&b, "- %s => %q\n", want[i].Name, want[i].Path)
			i++
		default:
			fmt.Fprintf(&b, "+ %s => %q\n", got[j].Name, got[j].Path)
			j++
		}
	}
	return b.String()
}

// TestOracleFixtures pins what the real loader does with every fixture program.
func TestOracleFixtures(t *testing.T) {
	progs := fixturePrograms(t)
	b := buildFixtures(t)
	for _, p := range progs {
		t.Run(p.Name, func(t *testing.T) {
			got := traceLoader(t, p.Dir, p.Path, p.Env...)
			if owned := oracleOwned(got, b); !reflect.DeepEqual(owned, p.Want) {
				t.Errorf("trace of %s (-want +got):\n%s", p.Path, oracleDiff(p.Want, owned))
			}
			interp, err := oracleInterp(p.Path)
			if err != nil {
				t.Fatal(err)
			}
			if musl := strings.Contains(interp, "ld-musl"); musl != p.Musl {
				t.Errorf("%s: PT_INTERP %s, but Musl is %v", p.Path, interp, p.Musl)
			}
			if !oracleContains(got, traceEntry{Name: interp, Path: interp}) {
				t.Errorf("trace of %s does not list its interpreter %s:\n%s", p.Path, interp, oracleDiff(nil, got))
			}
		})
	}
}

func oracleContains(entries []traceEntry, e traceEntry) bool {
	for _, x := range entries {
		if x == e {
			return true
		}
	}
	return false
}

// TestFixtureRun runs every fixture program for real: those the trace says load must run and print exactly
// the copies the trace named (each library prints its own path relative to build/, see fixtures/lib.c); the
// others must fail to start, naming the first missing library. This proves trace mode tells the truth.
func TestFixtureRun(t *testing.T) {
	progs := fixturePrograms(t)
	b := buildFixtures(t)
	for _, p := range progs {
		t.Run(p.Name, func(t *testing.T) {
			var out bytes.Buffer
			cmd := exec.CommandContext(t.Context(), p.Path)
			cmd.Dir, cmd.Env = p.Dir, oracleEnv(p.Env)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if len(p.WantMissing) > 0 {
				if err == nil || !strings.Contains(out.String(), p.WantMissing[0]) {
					t.Fatalf("%s: want a load failure naming %s, got err=%v, output:\n%s", p.Path, p.WantMissing[0], err, out.String())
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: %v\n%s", p.Path, err, out.String())
			}
			got := map[string]bool{}
			for _, f := range strings.FieldsFunc(out.String(), func(r rune) bool { return strings.ContainsRune("(),\n", r) }) {
				got[f] = true
			}
			want := map[string]bool{}
			for _, w := range p.Want {
				rel, err := filepath.Rel(b, w.Path)
				if err != nil {
					t.Fatal(err)
				}
				want[rel] = true
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s printed the copies %v, want %v (fixturePrograms, as traced)", p.Path, got, want)
			}
		})
	}
}

// TestOracleNodeflibLibcFromRunpath: with DF_1_NODEFLIB the program's libc.so.6 is not taken from ld.so.cache
// or the default dirs, but a system dir listed in its own RUNPATH is fine.
func TestOracleNodeflibLibcFromRunpath(t *testing.T) {
	b := buildFixtures(t)
	libcDir := oracleHostEnv(t, b)["LIBC_DIR"]
	got := traceLoader(t, b, filepath.Join(b, "nodeflib", "prog-libc"))
	want := traceEntry{Name: "libc.so.6", Path: filepath.Join(libcDir, "libc.so.6")}
	if !oracleContains(got, want) {
		t.Errorf("trace (-want +got):\n%s", oracleDiff([]traceEntry{want}, got))
	}
}

// TestOracleRefusesStatic: a static program has no PT_INTERP and would really run; the oracle must not run it.
func TestOracleRefusesStatic(t *testing.T) {
	b := buildFixtures(t)
	dir := filepath.Join(b, "static")
	marker := filepath.Join(dir, "ran")
	if err := os.Remove(marker); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	_, err := oracleTrace(t.Context(), dir, filepath.Join(dir, "prog"), nil)
	if err == nil || !strings.Contains(err.Error(), "no PT_INTERP") {
		t.Errorf("oracleTrace(static program) = %v, want a no-PT_INTERP refusal", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the static program ran (%s exists)", marker)
	}
}

// TestOracleParse pins the trace formats the oracle accepts, and that it rejects anything else.
func TestOracleParse(t *testing.T) {
	tests := []struct {
		name, out string
		musl      bool
		want      []traceEntry
		wantErr   bool
	}{
		{name: "glibc", out: "\tlinux-vdso.so.1 (0x00007ffd4b3f2000)\n" +
			"\tlibx.so.1 => /d/bin/../lib/libx.so.1 (0x00007f3564300000)\n" +
			"\tlibgone.so.1 => not found\n" +
			"\t./sub/libslash.so (0x00007fedef13f000)\n" +
			"\tlibq.so.1 (0x00007f8acadad000)\n" +
			"\t/lib64/ld-linux-x86-64.so.2 (0x00007f356430f000)\n",
			want: []traceEntry{{"libx.so.1", "/d/bin/../lib/libx.so.1"}, {"libgone.so.1", ""},
				{"./sub/libslash.so", "/cwd/sub/libslash.so"}, {"libq.so.1", "/cwd/libq.so.1"},
				{"/lib64/ld-linux-x86-64.so.2", "/lib64/ld-linux-x86-64.so.2"}}},
		{name: "musl", musl: true, out: "\t/lib/ld-musl-x86_64.so.1 (0x7f6b80dc5000)\n" +
			"Error loading shared library libmu.so.1: No such file or directory (needed by /p)\n" +
			"\tlibc.so => /lib/ld-musl-x86_64.so.1 (0x7f6b80dc5000)\n" +
			"Error relocating /p: mu: symbol not found\n",
			want: []traceEntry{{"/lib/ld-musl-x86_64.so.1", "/lib/ld-musl-x86_64.so.1"}, {"libmu.so.1", ""},
				{"libc.so", "/lib/ld-musl-x86_64.so.1"}}},
		{name: "no tab", out: "libx.so.1 => /lib/libx.so.1 (0x1000)\n", wantErr: true},
		{name: "no address", out: "\tlibx.so.1 => /lib/libx.so.1\n", wantErr: true},
		{name: "bad address", out: "\tlibx.so.1 => /lib/libx.so.1 (0xzz)\n", wantErr: true},
		{name: "empty address", out: "\tlibx.so.1 => /lib/libx.so.1 (0x)\n", wantErr: true},
		{name: "static", out: "\tstatically linked\n", wantErr: true},
		{name: "glibc error line", out: "ld.so: error\n", wantErr: true},
		{name: "musl unknown line", musl: true, out: "Error: something\n", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []traceEntry
			var err error
			if tc.musl {
				got, _, err = oracleParseMusl(tc.out, "/cwd")
			} else {
				got, err = oracleParseGlibc(tc.out, "/cwd")
			}
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("(-want +got):\n%s", oracleDiff(tc.want, got))
			}
		})
	}
}
