package elfdeps

// TestForeignTreeMatchesLoader: TestSystemCorpusMatchesLoader for Debian 12 trees of other architectures, each
// judged by its own glibc loader run inside the tree (chroot; under qemu-user when the host cannot run it).
//
// Trees. If SCRATCHPACK_FOREIGN_TREES is set, it names a directory holding one tree per Debian architecture,
// named after it: $SCRATCHPACK_FOREIGN_TREES/arm64, .../armhf, .../i386 (each a directory or a symbolic link
// to one, e.g. arm64 -> /var/tmp/sp-trees/arm64-full). A tree must be merged-/usr Debian 12 (bookworm), as
// `mmdebstrap --variant=extract --arch=ARCH --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr bookworm DIR`
// makes it; it may lack /etc/ld.so.cache. Otherwise the test makes the trees itself with that command (a
// small package set, debtree.CorpusPackages) through internal/debtree, which keeps them for later runs. Either way
// the tree is left untouched: the test works on a copy, where it runs the tree's own ldconfig to make the
// ld.so.cache the real loader reads (the armhf loader finds vfp/neon/libvpx.so.7 only through a cache entry
// with hwcap bits), and then compares the resolver without that cache (answering for the cache ldconfig would
// make of ld.so.conf) with the same loader runs.
//
// The CPU the loader sees (AT_PLATFORM, AT_HWCAP under qemu's emulated processor) is read from the loader
// itself (`ld.so --help`) and given to the resolver, so both answer for the same processor.

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/scratchpack/scratchpack/internal/debtree"
)

// foreignTreesEnv names the directory of pre-built trees (see the top of this file).
const foreignTreesEnv = "SCRATCHPACK_FOREIGN_TREES"

// foreignQemu is where the copy of a tree gets the static qemu-user binary that runs its programs.
const foreignQemu = "/.qemu-static"

// foreignArch is one Debian architecture the test judges.
type foreignArch struct {
	name    string // Debian architecture: the tree's name, mmdebstrap's --arch
	goarch  string // GOARCH of a host that runs its programs natively
	triplet string // multiarch triplet: /usr/lib/TRIPLET is in the corpus
	loader  string // PT_INTERP of the tree's programs
	machine elf.Machine
	class   elf.Class
	qemu    string // qemu-user binary that runs its programs on another host
	// hwcapPick says the tree's loader must map some object from a hwcap subdirectory for at least one
	// corpus file (armhf: vfp/neon/libvpx.so.7; i386: i686/sse2/libx264.so.164): the case must stay covered.
	hwcapPick bool
}

var foreignArches = []foreignArch{
	{name: "arm64", goarch: "arm64", triplet: "aarch64-linux-gnu", loader: "/lib/ld-linux-aarch64.so.1",
		machine: elf.EM_AARCH64, class: elf.ELFCLASS64, qemu: "qemu-aarch64-static"},
	{name: "armhf", goarch: "arm", triplet: "arm-linux-gnueabihf", loader: "/lib/ld-linux-armhf.so.3",
		machine: elf.EM_ARM, class: elf.ELFCLASS32, qemu: "qemu-arm-static", hwcapPick: true},
	{name: "i386", goarch: "386", triplet: "i386-linux-gnu", loader: "/lib/ld-linux.so.2",
		machine: elf.EM_386, class: elf.ELFCLASS32, qemu: "qemu-i386-static", hwcapPick: true},
}

// native reports whether this host runs the architecture's programs without qemu (i386 on an x86-64 kernel).
func (a foreignArch) native() bool {
	return a.goarch == runtime.GOARCH || (a.goarch == "386" && runtime.GOARCH == "amd64")
}

// TestForeignTreeMatchesLoader resolves every ELF file of a foreign tree's /usr/bin, /usr/sbin and
// /usr/lib/TRIPLET with the tree as root and compares, object for object and in order, with what the tree's
// own loader maps in trace mode inside the tree. Every difference is reported.
func TestForeignTreeMatchesLoader(t *testing.T) {
	for _, a := range foreignArches {
		t.Run(a.name, func(t *testing.T) {
			if testing.Short() && a.name != "arm64" {
				t.Skipf("-short: only arm64 is judged")
			}
			testForeignTree(t, a)
		})
	}
}

func testForeignTree(t *testing.T, a foreignArch) {
	if os.Geteuid() != 0 {
		t.Skip("not root: the tree's loader runs under chroot(2)")
	}
	var qemu string
	if !a.native() {
		var err error
		if qemu, err = exec.LookPath(a.qemu); err != nil {
			t.Skipf("%s is not installed: %s programs cannot run on this %s host", a.qemu, a.name, runtime.GOARCH)
		}
	}
	start := time.Now()
	src := foreignTree(t, a)

	// Work on a copy: it gets the cache (and the links) ldconfig makes, and the qemu binary.
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "--reflink=auto", src+"/.", root).CombinedOutput(); err != nil {
		t.Fatalf("copying %s: %v\n%s", src, err, out)
	}
	run := func(ctx context.Context, args ...string) *exec.Cmd {
		if qemu != "" {
			args = append([]string{foreignQemu}, args...)
		}
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/usr/bin:/bin:/usr/sbin:/sbin"}
		return cmd
	}
	if qemu != "" {
		if err := foreignCopyFile(qemu, filepath.Join(root, foreignQemu), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// The loader every program of the tree names.
	look, err := NewDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := foreignParse(root, "/usr/bin/curl"); err != nil {
		t.Fatal(err)
	} else if f.Interp != a.loader {
		t.Fatalf("/usr/bin/curl of the %s tree has PT_INTERP %q, want %q", a.name, f.Interp, a.loader)
	}
	if l, err := look.Lookup(a.loader); err != nil || !l.Mode.IsRegular() {
		t.Fatalf("the %s tree has no loader %s: %v", a.name, a.loader, err)
	}

	// /etc/ld.so.cache, made by the tree's own ldconfig (merged /usr: /sbin/ldconfig is /usr/sbin/ldconfig).
	ldconfig := ""
	for _, p := range []string{"/sbin/ldconfig", "/usr/sbin/ldconfig"} {
		if l, err := look.Lookup(p); err == nil && l.Mode.IsRegular() {
			ldconfig = p
			break
		}
	}
	if ldconfig == "" {
		t.Fatalf("the %s tree has no ldconfig (libc-bin)", a.name)
	}
	foreignRun(t, run, ldconfig)
	if _, err := look.Lookup("/etc/ld.so.cache"); err != nil {
		t.Fatalf("%s made no /etc/ld.so.cache: %v", ldconfig, err)
	}

	// The processor, as the loader sees it.
	help := foreignRun(t, run, a.loader, "--help")
	cpu, sections, err := parseLoaderHelp(help)
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", a.loader, err, help)
	}
	t.Logf("%s: %s --help says:\n%s", a.name, a.loader, sections)
	t.Logf("%s: CPU %+v", a.name, cpu)

	corpus := foreignCorpus(t, root, a)
	if len(corpus) < 20 {
		t.Fatalf("the %s corpus has only %d ELF files: the walk is broken", a.name, len(corpus))
	}
	res := foreignCompare(t, root, run, a, cpu, corpus, false)
	t.Logf("%s: compared %d of %d files with the tree's loader (%d from a hwcap subdirectory; %d not comparable) in %v",
		a.name, res.compared, len(corpus), len(res.hwcapPicks), len(res.incomparable), time.Since(start).Round(time.Millisecond))
	if len(res.incomparable) > 0 {
		t.Logf("%s: not comparable (the program's resolution reaches the program itself):\n  %s", a.name, strings.Join(res.incomparable, "\n  "))
	}
	if len(res.diffs) > 0 {
		t.Errorf("%s: %d files differ from the tree's loader:\n%s", a.name, len(res.diffs), strings.Join(res.diffs, "\n"))
	}
	if res.compared < len(corpus)*9/10 {
		t.Errorf("%s: only %d of %d files could be compared", a.name, res.compared, len(corpus))
	}
	if a.hwcapPick && len(res.hwcapPicks) == 0 {
		t.Errorf("%s: no corpus file made the loader map an object from a hwcap subdirectory: that case is not covered", a.name)
	}

	// arm64: no Debian package ships an atomics/ build; a copy of libz there is what the loader takes on
	// qemu's processor (which has LSE atomics), through the cache entry ldconfig writes for it.
	some := append([]string{"/usr/bin/curl"}, res.hwcapPicks...)
	if slices.Contains(cpu.LegacyHWCaps, "atomics") {
		libz, err := filepath.EvalSymlinks(filepath.Join(root, "usr/lib", a.triplet, "libz.so.1"))
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(root, "usr/lib", a.triplet, "atomics")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := foreignCopyFile(libz, filepath.Join(dir, filepath.Base(libz)), 0o644); err != nil {
			t.Fatal(err)
		}
		foreignRun(t, run, ldconfig)
		planted := foreignCompare(t, root, run, a, cpu, some, false)
		if len(planted.hwcapPicks) == 0 {
			t.Errorf("%s: the loader did not take %s/libz.so.1 from the cache: the case is not what it says", a.name, dir)
		}
		if len(planted.diffs) > 0 {
			t.Errorf("%s: with libz in atomics/, %d files differ:\n%s", a.name, len(planted.diffs), strings.Join(planted.diffs, "\n"))
		}
	}

	// The tree without its cache, as mmdebstrap's extract variant leaves it: the resolver answers for the
	// cache ldconfig would make of ld.so.conf (what the loader above read), so every file resolves as with
	// the real cache: the whole corpus, i686/sse2/ and vfp/neon/ and the planted atomics/ included.
	nocache := foreignCompare(t, root, run, a, cpu, corpus, true)
	t.Logf("%s: without a cache, compared %d files (%d from a hwcap subdirectory)", a.name, nocache.compared, len(nocache.hwcapPicks))
	if len(nocache.diffs) > 0 {
		t.Errorf("%s: without a cache, %d files differ from the loader with ldconfig's cache:\n%s", a.name, len(nocache.diffs), strings.Join(nocache.diffs, "\n"))
	}
}

// foreignOutcome is one comparison of files with the tree's loader.
type foreignOutcome struct {
	compared     int
	hwcapPicks   []string // files for which the loader maps an object from a hwcap subdirectory
	diffs        []string
	incomparable []string
}

// foreignCompare resolves files with the tree as root, for the loader's CPU, and compares each with the
// tree's loader.
//
// With cacheless, the loader runs with the tree's cache and the resolver without it: for a root that has
// /etc/ld.so.conf but no cache, the resolver answers for the cache ldconfig would write, which is what the
// loader then reads.
func foreignCompare(t *testing.T, root string, run func(context.Context, ...string) *exec.Cmd, a foreignArch, cpu CPU, corpus []string, cacheless bool) foreignOutcome {
	t.Helper()

	// Every file is given to the loader explicitly, `LOADER FILE` with LD_TRACE_LOADED_OBJECTS=1 (as ldd does;
	// `--list` would make a missing library fatal instead of "not found"): a library cannot be exec'd, and
	// without binfmt_misc neither can a foreign program. Our resolver models a library as `ld.so FILE` too,
	// but a program as the kernel starts it. The two differ only in the main map: `ld.so PROG` gives it the
	// name PROG and records its file identity, so a DT_NEEDED that reaches PROG again (by its path or by
	// another name of the same file) reuses it rather than mapping it a second time; and $ORIGIN is the
	// directory of PROG as given, not of its real path (/proc/self/exe). The corpus paths are real paths
	// (regular files found without following links), so $ORIGIN agrees; the files whose resolution reaches the
	// program again are set aside below as not comparable, so every comparison made is a fair one.
	truths := make([][]traceEntry, len(corpus))
	truthErrs := make([]error, len(corpus))
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(2, min(4, runtime.NumCPU())))
	for i := range corpus {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			truths[i], truthErrs[i] = foreignTrace(run, a.loader, corpus[i])
		}()
	}
	wg.Wait()

	if cacheless {
		cache := filepath.Join(root, "etc/ld.so.cache")
		if err := os.Rename(cache, cache+".away"); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := os.Rename(cache+".away", cache); err != nil {
				t.Fatal(err)
			}
		}()
	}
	r, err := NewDir(root, WithCPU(func(m elf.Machine, c elf.Class) CPU {
		if m == a.machine && c == a.class {
			return cpu
		}
		return BaselineCPU(m, c)
	}))
	if err != nil {
		t.Fatal(err)
	}
	results, errs := r.ResolveAll(corpus)

	var out foreignOutcome
	for i, p := range corpus {
		if errs[i] == nil && !foreignFair(results[i]) {
			out.incomparable = append(out.incomparable, p)
			continue
		}
		d, compared := judgeTrace(p, results[i], errs[i], truths[i], truthErrs[i])
		out.diffs = append(out.diffs, d...)
		if !compared {
			continue
		}
		out.compared++
		if slices.ContainsFunc(truths[i], func(e traceEntry) bool { return foreignHWCapDir(e.Path, cpu) }) {
			out.hwcapPicks = append(out.hwcapPicks, p)
		}
	}
	return out
}

// foreignFair reports whether res, a resolution as the kernel would start the program, is also what
// `ld.so PROG` loads (see the comment on the loader runs): always for a library; for a program, when its path
// is its real path and nothing maps its file again.
func foreignFair(res *Result) bool {
	in := res.Input
	if in.File.Interp == "" {
		return true
	}
	if in.RealPath != in.Path {
		return false
	}
	return !slices.ContainsFunc(res.Objects, func(o *Object) bool { return o.RealPath == in.RealPath })
}

// foreignHWCapDir reports whether p lies in a glibc-hwcaps or legacy hwcap subdirectory the CPU searches.
func foreignHWCapDir(p string, cpu CPU) bool {
	if strings.Contains(p, "/glibc-hwcaps/") {
		return true
	}
	names := append([]string{"tls", cpu.Platform}, cpu.LegacyHWCaps...)
	for _, c := range strings.Split(path.Dir(p), "/") {
		if c != "" && slices.Contains(names, c) {
			return true
		}
	}
	return false
}

// foreignRun runs a command of the tree (inside it) and returns its standard output; it fails the test on error.
func foreignRun(t *testing.T, run func(context.Context, ...string) *exec.Cmd, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := run(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("running %v inside the tree: %v\n%s%s", args, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// foreignTrace asks the tree's loader, in trace mode inside the tree, which objects it maps for file, parsed
// by the oracle's strict parser (as loaderTrace does on this machine).
func foreignTrace(run func(context.Context, ...string) *exec.Cmd, loader, file string) ([]traceEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := run(ctx, loader, file)
	cmd.Env = append(cmd.Env, "LD_TRACE_LOADED_OBJECTS=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil && stdout.Len() == 0 {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return oracleParseGlibc(stdout.String(), "/")
}

// parseLoaderHelp reads the processor-dependent choices out of glibc 2.36's `ld.so --help`:
//
//	Subdirectories of glibc-hwcaps directories, in priority order:   (or "No subdirectories of ... are searched.")
//	  x86-64-v3 (supported, searched)
//	  x86-64-v2 (supported, searched)
//
//	Legacy HWCAP subdirectories under library search path directories:
//	  i686 (AT_PLATFORM; supported, searched)
//	  tls (supported, searched)
//	  sse2 (supported, searched)
//
// The searched glibc-hwcaps names become HWCaps (in that order, best first), the AT_PLATFORM line Platform,
// and the other searched legacy names but tls LegacyHWCaps, in the order printed (highest bit first). It also
// returns both sections verbatim.
func parseLoaderHelp(out string) (CPU, string, error) {
	var cpu CPU
	var sections strings.Builder
	section := "" // "hwcaps", "legacy" or ""
	sawHWCaps, sawLegacy := false, false
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Subdirectories of glibc-hwcaps directories"):
			section, sawHWCaps = "hwcaps", true
		case line == "No subdirectories of glibc-hwcaps directories are searched.":
			section, sawHWCaps = "", true
		case strings.HasPrefix(line, "Legacy HWCAP subdirectories"):
			section, sawLegacy = "legacy", true
		case strings.TrimSpace(line) == "":
			if section != "" {
				sections.WriteString("\n")
			}
			section = ""
			continue
		case section == "":
			continue
		default:
			name, attrs, _ := strings.Cut(strings.TrimSpace(line), " ")
			if !strings.HasPrefix(line, "  ") || name == "" {
				return CPU{}, "", fmt.Errorf("unexpected line %q", line)
			}
			searched := strings.Contains(attrs, "searched")
			switch {
			case section == "hwcaps" && searched:
				cpu.HWCaps = append(cpu.HWCaps, name)
			case section == "legacy" && strings.Contains(attrs, "AT_PLATFORM"):
				cpu.Platform = name
			case section == "legacy" && searched && name != "tls":
				cpu.LegacyHWCaps = append(cpu.LegacyHWCaps, name)
			}
		}
		sections.WriteString(line + "\n")
	}
	if !sawHWCaps {
		return CPU{}, "", errors.New("no glibc-hwcaps section")
	}
	// glibc 2.37 and later print no legacy section: they search no legacy subdirectory.
	cpu.NoLegacy = !sawLegacy
	return cpu, strings.TrimRight(sections.String(), "\n"), nil
}

// foreignParse parses the ELF file at p inside root.
func foreignParse(root, p string) (*File, error) {
	fh, err := os.Open(filepath.Join(root, p))
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return nil, err
	}
	return ParseELF(fh, st.Size())
}

// foreignCorpus mirrors systemCorpus inside root: every regular ELF file under /usr/bin, /usr/sbin and
// /usr/lib/TRIPLET (symbolic links are not followed: their targets are in the corpus too) that the tree's
// loader would load: programs whose PT_INTERP is that loader, and shared objects of its class and machine
// with DT_NEEDED entries. It returns paths inside the tree.
func foreignCorpus(t *testing.T, root string, a foreignArch) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/lib/" + a.triplet} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			rel = "/" + filepath.ToSlash(rel)
			f, err := foreignParse(root, rel)
			if err != nil || f.Class != a.class || f.Machine != a.machine || !f.Dynamic {
				return nil
			}
			switch {
			case f.Interp == a.loader:
				out = append(out, rel)
			case f.Interp == "" && len(f.Needed) > 0 && f.Type == elf.ET_DYN:
				out = append(out, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walking %s: %v", dir, err)
		}
	}
	return out
}

// foreignTree returns the pristine tree for a: $SCRATCHPACK_FOREIGN_TREES/ARCH, or one made with mmdebstrap
// (see the top of this file).
func foreignTree(t *testing.T, a foreignArch) string {
	t.Helper()
	if dir := os.Getenv(foreignTreesEnv); dir != "" {
		tree := filepath.Join(dir, a.name)
		if st, err := os.Stat(tree); err != nil || !st.IsDir() {
			t.Fatalf("$%s=%s has no %s tree: %v", foreignTreesEnv, dir, a.name, err)
		}
		t.Logf("%s: using the tree %s", a.name, tree)
		return tree
	}
	tree, err := debtree.Make(a.name, debtree.CorpusPackages(a.name)...)
	if errors.Is(err, debtree.ErrNoTool) {
		t.Skipf("cannot make the %s tree (and $%s is not set): %v", a.name, foreignTreesEnv, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// foreignCopyFile copies the regular file src to dst with mode perm.
func foreignCopyFile(src, dst string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
