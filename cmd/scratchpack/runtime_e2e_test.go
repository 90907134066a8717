package main

// End-to-end tests of what programs load at run time without naming it in DT_NEEDED: a library opened with
// dlopen, glibc's gconv modules, NSS files, interpreters and their standard libraries, #! scripts. Each image
// is built with the run-time rules or --trace, then run in a chroot (runInRoot), and what the program prints
// there is asserted; each also shows, with the rule or the trace taken away, that the program then fails.

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scratchpack/scratchpack/internal/trace"
)

// needPtrace skips t when the kernel refuses to let this process trace a child (a seccomp profile that
// blocks ptrace, as Docker's default does on older kernels, or Yama's ptrace_scope): then neither --trace nor
// strace can run, and no package changes that.
func needPtrace(t *testing.T) {
	t.Helper()
	_, _, err := trace.Run(t.Context(), []string{"/bin/true"}, trace.Options{})
	if errors.Is(err, trace.ErrPtraceUnavailable) {
		t.Skipf("ptrace is not permitted here (seccomp or Yama ptrace_scope refuse PTRACE_TRACEME), so --trace and strace cannot run: %v", err)
	}
	if err != nil {
		t.Fatalf("tracing /bin/true: %v", err)
	}
}

// needHostFile fails t when a file that .ci/install-deps installs is missing (see needTools).
func needHostFile(t *testing.T, file string) {
	t.Helper()
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("%v: run .ci/install-deps (it installs what these tests need)", err)
	}
}

// runOnHost runs argv on the host with only PATH=/usr/bin:/bin (what runInRoot gives inside a root) and fails
// t unless it exits 0; it returns stdout. It is the reference a run inside a root must match.
func runOnHost(t *testing.T, argv ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("running %q on the host: %v\nstderr: %s", argv, err, stderr.String())
	}
	return string(out)
}

// mustFailInRoot runs argv in root and fails t unless it exits non-zero with wantStderr in its stderr.
func mustFailInRoot(t *testing.T, root string, wantStderr string, argv ...string) {
	t.Helper()
	stdout, stderr, err := runInRoot(t, root, nil, argv...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(stderr, wantStderr) {
		t.Errorf("running %q in %s: err %v, stdout %q, stderr %q; want a failure saying %q", argv, root, err, stdout, stderr, wantStderr)
	}
}

// existsInRoot reports whether p resolves inside root (every link on the way followed inside it).
func existsInRoot(root, p string) bool {
	_, err := resolveInRoot(root, p)
	return err == nil
}

// explainBuild runs `scratchpack build --explain ARGS...`, fails t unless it exits 0, and returns the report by
// path: each path as printed (without a link's " -> TARGET" or a directory's "/") with its indented lines
// (reasons, then the chain), trimmed.
func explainBuild(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	code, stdout, stderr := scratchpack(t, append([]string{"build", "--explain"}, args...)...)
	if code != 0 {
		t.Fatalf("scratchpack build --explain %q: exit %d\nstderr: %s", args, code, stderr)
	}
	entries := map[string][]string{}
	cur := ""
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if rest, ok := strings.CutPrefix(line, "    "); ok {
			if cur == "" {
				t.Fatalf("--explain printed a reason before any path: %q", line)
			}
			entries[cur] = append(entries[cur], strings.TrimSpace(rest))
			continue
		}
		p, _, _ := strings.Cut(line, " -> ")
		if p != "/" {
			p = strings.TrimSuffix(p, "/")
		}
		if !strings.HasPrefix(p, "/") {
			t.Fatalf("--explain printed a line that is neither a path nor indented: %q", line)
		}
		cur = p
		if _, ok := entries[cur]; !ok {
			entries[cur] = nil
		}
	}
	if len(entries) == 0 {
		t.Fatalf("scratchpack build --explain %q printed nothing", args)
	}
	return entries
}

// hasReason reports whether some line of lines starts with prefix and contains each of parts.
func hasReason(lines []string, prefix string, parts ...string) bool {
	return slices.ContainsFunc(lines, func(l string) bool {
		if !strings.HasPrefix(l, prefix) {
			return false
		}
		for _, p := range parts {
			if !strings.Contains(l, p) {
				return false
			}
		}
		return true
	})
}

// hostLibDir is the directory of the host's libc (real path), where glibc's gconv modules and zlib live.
func hostLibDir(t *testing.T) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(libc)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(real)
}

// TestRuntimeDlopen: a library opened with dlopen by name is invisible to ELF reading; a traced run of the
// program, or an strace log of one, brings it in.
func TestRuntimeDlopen(t *testing.T) {
	needRoot(t)
	prog := filepath.Join(fixtures(t), "dlopen", "prog")
	want := runOnHost(t, prog)
	if !strings.HasPrefix(want, "zlib ") {
		t.Fatalf("the dlopen fixture printed %q on the host, want \"zlib VERSION\"", want)
	}
	libz := path.Join(hostLibDir(t), "libz.so.1")

	t.Run("closure only", func(t *testing.T) {
		root := filepath.Join(t.TempDir(), "root")
		buildOK(t, prog, "-o", "dir:"+root)
		if existsInRoot(root, libz) {
			t.Errorf("%s is in the image without --trace: nothing names it in DT_NEEDED", libz)
		}
		mustFailInRoot(t, root, `dlopen("libz.so.1"): libz.so.1: cannot open shared object file`, prog)
	})

	t.Run("trace", func(t *testing.T) {
		needPtrace(t)
		root := filepath.Join(t.TempDir(), "root")
		buildOK(t, prog, "-o", "dir:"+root, "--trace", "--", prog)
		if !existsInRoot(root, libz) {
			t.Errorf("%s is not in the image built with --trace", libz)
		}
		if got := mustRunInRoot(t, root, nil, prog); got != want {
			t.Errorf("in the traced image the program printed %q, want %q (as on the host)", got, want)
		}

		// --explain says the trace brought libz in, and every reason of the report names who needed what.
		real, err := filepath.EvalSymlinks(libz)
		if err != nil {
			t.Fatal(err)
		}
		ex := explainBuild(t, prog, "--trace", "--", prog)
		if !hasReason(ex[real], "traced open by pid ", "(workload: "+prog+")") {
			t.Errorf("--explain gives %s the reasons %q, want \"traced open by pid N running ... (workload: %s)\"", real, ex[real], prog)
		}
		for p, lines := range ex {
			for _, l := range lines {
				if strings.Contains(l, "needed by  (") || strings.HasSuffix(l, "needed by") {
					t.Errorf("--explain gives %s the reason %q, which names nothing as the needer", p, l)
				}
			}
		}
	})

	t.Run("trace-file", func(t *testing.T) {
		needPtrace(t)
		needTools(t, "strace")
		dir := t.TempDir()
		log := filepath.Join(dir, "strace.log")
		hostTool(t, "strace", "-f", "-e", "trace=file,process", "-o", log, prog)
		root := filepath.Join(dir, "root")
		buildOK(t, prog, "--trace-file", log, "-o", "dir:"+root)
		if !existsInRoot(root, libz) {
			t.Errorf("%s is not in the image built with --trace-file", libz)
		}
		if got := mustRunInRoot(t, root, nil, prog); got != want {
			t.Errorf("in the image built from the strace log the program printed %q, want %q", got, want)
		}
	})
}

// TestRuntimeIconv: iconv_open to UTF-16 needs glibc's gconv configuration and UTF-16.so, which the gconv rule
// adds because the program imports iconv_open.
func TestRuntimeIconv(t *testing.T) {
	needRoot(t)
	prog := filepath.Join(fixtures(t), "iconv", "prog")
	const want = "10 bytes: 6800e9006c006c006f00\n" // "héllo" in UTF-16LE
	if got := runOnHost(t, prog); got != want {
		t.Fatalf("the iconv fixture printed %q on the host, want %q", got, want)
	}
	gconv := path.Join(hostLibDir(t), "gconv")

	for _, tc := range []struct {
		name    string
		args    []string
		works   bool
		in, out []string // files of gconv that must be, and must not be, in the image
	}{
		{"default rules", nil, true, []string{"gconv-modules", "UTF-16.so"}, nil},
		{"no gconv rule", []string{"--no-rule", "gconv"}, false, nil, []string{"gconv-modules", "UTF-16.so"}},
		{"gconv UTF-16 only", []string{"--gconv", "UTF-16"}, true, []string{"gconv-modules", "UTF-16.so"}, []string{"UTF-32.so"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			buildOK(t, append([]string{prog, "-o", "dir:" + root}, tc.args...)...)
			for _, f := range tc.in {
				if !existsInRoot(root, path.Join(gconv, f)) {
					t.Errorf("%s is not in the image", path.Join(gconv, f))
				}
			}
			for _, f := range tc.out {
				if existsInRoot(root, path.Join(gconv, f)) {
					t.Errorf("%s is in the image", path.Join(gconv, f))
				}
			}
			if !tc.works {
				mustFailInRoot(t, root, `iconv_open("UTF-16LE", "UTF-8"): Invalid argument`, prog)
				return
			}
			if got := mustRunInRoot(t, root, nil, prog); got != want {
				t.Errorf("in the image the program printed %q, want %q", got, want)
			}
		})
	}
}

// TestRuntimeNSSRules: --explain names the rule behind each NSS file, and without the accounts rule the NSS
// fixture's getpwnam("root") finds nothing (TestE2ENSS shows it works with it).
func TestRuntimeNSSRules(t *testing.T) {
	prog := filepath.Join(fixtures(t), "nss", "prog")
	ex := explainBuild(t, prog)
	for _, c := range []struct{ path, rule string }{
		{"/etc/passwd", "accounts rule: "},
		{"/etc/group", "accounts rule: "},
		{"/etc/nsswitch.conf", "nsswitch rule: "},
		{"/etc/hosts", "hosts rule: "},
		{"/tmp", "tmp rule: "},
	} {
		if !hasReason(ex[c.path], c.rule) {
			t.Errorf("--explain gives %s the reasons %q, want one starting %q", c.path, ex[c.path], c.rule)
		}
	}

	t.Run("no accounts rule", func(t *testing.T) {
		needRoot(t)
		root := filepath.Join(t.TempDir(), "root")
		buildOK(t, prog, "--no-rule", "accounts", "-o", "dir:"+root)
		for _, f := range []string{"/etc/passwd", "/etc/group"} {
			if existsInRoot(root, f) {
				t.Errorf("%s is in the image built with --no-rule accounts", f)
			}
		}
		mustFailInRoot(t, root, `getpwnam("root"): not found`, prog)
	})
}

// pythonWorkload is what the Python image is traced with: a few modules with C extensions and libraries.
const pythonWorkload = `import json, ssl, sqlite3, hashlib, ctypes; print("ok")`

// TestRuntimePython: python3 with its standard library, C extension modules and their libraries (OpenSSL,
// SQLite, libffi) through a traced run; without the trace the interpreter alone cannot even start.
func TestRuntimePython(t *testing.T) {
	needRoot(t)
	needHostFile(t, "/usr/bin/python3")
	// Where the standard library lives (the path is the same inside the image).
	jsonInit := strings.TrimSpace(runOnHost(t, "/usr/bin/python3", "-c", "import json; print(json.__file__)"))

	t.Run("traced", func(t *testing.T) {
		needPtrace(t)
		root := filepath.Join(t.TempDir(), "root")
		buildOK(t, "/usr/bin/python3", "-o", "dir:"+root, "--trace", "--", "python3", "-c", pythonWorkload)
		if !existsInRoot(root, jsonInit) {
			t.Errorf("%s is not in the traced image", jsonInit)
		}

		versions := []string{"/usr/bin/python3", "-c", `import json, ssl, sqlite3, hashlib, ctypes; print(ssl.OPENSSL_VERSION, sqlite3.sqlite_version, hashlib.sha256(b"x").hexdigest())`}
		got := mustRunInRoot(t, root, nil, versions...)
		if want := runOnHost(t, versions...); got != want {
			t.Errorf("in the image python3 printed %q, on the host %q", got, want)
		}
		fields := strings.Fields(got)
		if !strings.HasPrefix(got, "OpenSSL 3") || len(fields) < 3 || fields[len(fields)-1] != fmt.Sprintf("%x", sha256.Sum256([]byte("x"))) {
			t.Errorf("in the image python3 printed %q, want \"OpenSSL 3... SQLITE_VERSION SHA256(x)\"", got)
		}

		// Other uses of the same modules than the traced run's: the JSON encoder and decoder both ways, a
		// ctypes structure and a call into libc through ctypes' own libffi.
		other := []string{"/usr/bin/python3", "-c", `import json, ctypes
class P(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int32), ("y", ctypes.c_double)]
p = P(3, 0.5)
d = json.loads(json.dumps({"x": p.x, "y": p.y, "size": ctypes.sizeof(P), "s": "h\u00e9"}))
print(json.dumps(d, sort_keys=True), ctypes.CDLL(None).strlen(b"hello"))`}
		const want = `{"s": "h\u00e9", "size": 16, "x": 3, "y": 0.5} 5` + "\n"
		if got := mustRunInRoot(t, root, nil, other...); got != want {
			t.Errorf("json and ctypes in the image printed %q, want %q", got, want)
		}
	})

	t.Run("without a trace", func(t *testing.T) {
		// The python rule gives the interpreter its start-up; what a -c command imports no file shows.
		root := filepath.Join(t.TempDir(), "root")
		buildOK(t, "/usr/bin/python3", "-o", "dir:"+root)
		if existsInRoot(root, jsonInit) {
			t.Errorf("%s is in the image without --trace", jsonInit)
		}
		if got := mustRunInRoot(t, root, nil, "/usr/bin/python3", "-c", "print(42)"); got != "42\n" {
			t.Errorf("python3 -c print(42) printed %q", got)
		}
		mustFailInRoot(t, root, "No module named 'json'", "/usr/bin/python3", "-c", "import json")
	})
}

// perlScript uses POSIX, Data::Dumper and List::Util, each a module with an XS shared object.
const perlScript = `#!/usr/bin/perl
use strict;
use warnings;
use POSIX qw(floor strftime);
use Data::Dumper;
use List::Util qw(sum max first);
$Data::Dumper::Sortkeys = 1;
$Data::Dumper::Indent = 0;
my @n = (3, 1, 4, 1, 5, 9, 2, 6);
print "floor ", floor(7.9), "\n";
print "date ", strftime("%Y-%m-%d", gmtime(86400 * 365)), "\n";
print "sum ", sum(@n), " max ", max(@n), " first ", (first { $_ > 4 } @n), "\n";
print Dumper({ a => 1, b => [2, 3] }), "\n";
`

const perlWant = "floor 7\ndate 1971-01-01\nsum 31 max 9 first 5\n$VAR1 = {'a' => 1,'b' => [2,3]};\n"

// TestRuntimePerl: a #!/usr/bin/perl script with XS modules, traced, and without a trace (the perl rule).
func TestRuntimePerl(t *testing.T) {
	needRoot(t)
	needHostFile(t, "/usr/bin/perl")
	script := filepath.Join(t.TempDir(), "report.pl")
	if err := os.WriteFile(script, []byte(perlScript), 0o755); err != nil {
		t.Fatal(err)
	}
	if got := runOnHost(t, script); got != perlWant {
		t.Fatalf("the script printed %q on the host, want %q", got, perlWant)
	}
	// The XS shared objects of the three modules, as the host's perl finds them.
	var xs []string
	for _, m := range []string{"POSIX", "Data::Dumper", "List::Util"} {
		pm := strings.ReplaceAll(m, "::", "/") + ".pm"
		file := strings.TrimSpace(runOnHost(t, "/usr/bin/perl", "-M"+m, "-e", `print $INC{"`+pm+`"}`))
		dir := strings.TrimSuffix(file, pm)
		xs = append(xs, path.Join(dir, "auto", strings.TrimSuffix(pm, ".pm"), path.Base(strings.TrimSuffix(pm, ".pm"))+".so"))
	}

	t.Run("traced", func(t *testing.T) {
		needPtrace(t)
		root := filepath.Join(t.TempDir(), "root")
		buildOK(t, script, "-o", "dir:"+root, "--trace", "--", "/usr/bin/perl", script)
		for _, so := range xs {
			if !existsInRoot(root, so) {
				t.Errorf("the XS module %s is not in the traced image", so)
			}
		}
		if got := mustRunInRoot(t, root, nil, script); got != perlWant {
			t.Errorf("in the image the script printed %q, want %q", got, perlWant)
		}
	})

	t.Run("without a trace", func(t *testing.T) {
		// The perl rule follows the script's use statements, XS objects included.
		root := filepath.Join(t.TempDir(), "root")
		buildOK(t, script, "-o", "dir:"+root)
		if !existsInRoot(root, "/usr/bin/perl") {
			t.Errorf("the script's #! interpreter /usr/bin/perl is not in the image")
		}
		for _, so := range xs {
			if !existsInRoot(root, so) {
				t.Errorf("the XS module %s is not in the image", so)
			}
		}
		if got := mustRunInRoot(t, root, nil, script); got != perlWant {
			t.Errorf("in the image the script printed %q, want %q", got, perlWant)
		}
	})
}

// TestRuntimeEnvScript: a "#!/usr/bin/env python3" script brings env and the python3 that env finds on PATH
// inside the image; the trace adds the standard library python needs to start.
func TestRuntimeEnvScript(t *testing.T) {
	needRoot(t)
	needPtrace(t)
	needHostFile(t, "/usr/bin/python3")
	script := filepath.Join(t.TempDir(), "hello.py")
	src := "#!/usr/bin/env python3\nprint(\"hello from\", \"env python\", sum(range(10)), sorted({\"b\": 1, \"a\": 2}))\n"
	if err := os.WriteFile(script, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	const want = "hello from env python 45 ['a', 'b']\n"
	if got := runOnHost(t, script); got != want {
		t.Fatalf("the script printed %q on the host, want %q", got, want)
	}

	args := []string{script, "--trace", "--", script}
	root := filepath.Join(t.TempDir(), "root")
	buildOK(t, append([]string{"-o", "dir:" + root}, args...)...)
	for _, p := range []string{script, "/usr/bin/env", "/usr/bin/python3"} {
		if !existsInRoot(root, p) {
			t.Errorf("%s is not in the image", p)
		}
	}
	// The kernel runs /usr/bin/env for the script, and env finds python3 on the PATH runInRoot gives.
	if got := mustRunInRoot(t, root, nil, script); got != want {
		t.Errorf("in the image the script printed %q, want %q", got, want)
	}

	ex := explainBuild(t, args...)
	if !hasReason(ex["/usr/bin/env"], "#! interpreter of "+script) {
		t.Errorf("--explain gives /usr/bin/env the reasons %q, want \"#! interpreter of %s\"", ex["/usr/bin/env"], script)
	}
	found := false
	for _, lines := range ex {
		found = found || hasReason(lines, "python3 found on PATH for "+script)
	}
	if !found {
		t.Errorf("--explain says nowhere \"python3 found on PATH for %s\"", script)
	}
}

// TestRuntimeExplainCurl: --explain prints each file's chain of reasons down to the input and the rule that
// added the certificates, and writes nothing, even with -o.
func TestRuntimeExplainCurl(t *testing.T) {
	needTools(t, "curl")
	ex := explainBuild(t, "/usr/bin/curl")

	chain := []*regexp.Regexp{
		regexp.MustCompile(`^libssl\.so\.3 needed by \S+/libcurl\.so\.4 \(`),
		regexp.MustCompile(`^<- \S+/libcurl\.so\.4: libcurl\.so\.4 needed by /usr/bin/curl \(`),
		regexp.MustCompile(`^<- /usr/bin/curl: input$`),
	}
	var libssl []string
	for p, lines := range ex {
		if !strings.HasPrefix(path.Base(p), "libssl.so.3") {
			continue
		}
		libssl = append(libssl, p)
		i := 0
		for _, l := range lines {
			if i < len(chain) && chain[i].MatchString(l) {
				i++
			}
		}
		if i == len(chain) {
			libssl = nil
			break
		}
	}
	if libssl != nil {
		for _, p := range libssl {
			t.Logf("%s:\n  %s", p, strings.Join(ex[p], "\n  "))
		}
		t.Errorf("no libssl.so.3 entry of --explain has the chain %q", chain)
	}
	if !hasReason(ex["/etc/ssl/certs/ca-certificates.crt"], "certs rule: ", "libcurl.so.4") {
		t.Errorf("--explain gives /etc/ssl/certs/ca-certificates.crt the reasons %q, want the certs rule because libcurl.so.4 is in",
			ex["/etc/ssl/certs/ca-certificates.crt"])
	}

	for _, transport := range []string{"dir", "tar", "oci"} {
		t.Run("-o "+transport, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			code, stdout, stderr := scratchpack(t, "build", "--explain", "/usr/bin/curl", "-o", transport+":"+dest)
			if code != 0 || !strings.Contains(stdout, "<- /usr/bin/curl: input") {
				t.Errorf("exit %d, stderr %q; stdout has no chain: want exit 0 and the explanation", code, stderr)
			}
			if des, err := os.ReadDir(parent); err != nil || len(des) != 0 {
				t.Errorf("--explain wrote into the destination's directory: %v (%v)", des, err)
			}
		})
	}
	t.Run("existing output untouched", func(t *testing.T) {
		dest := t.TempDir()
		if err := os.WriteFile(filepath.Join(dest, "keep"), []byte("precious\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		before := treeSnapshot(t, dest)
		if code, _, stderr := scratchpack(t, "build", "--explain", "/usr/bin/curl", "-o", "dir:"+dest); code != 0 {
			t.Errorf("--explain with an existing output: exit %d: %s", code, stderr)
		}
		if diff := cmp.Diff(before, treeSnapshot(t, dest)); diff != "" {
			t.Errorf("--explain changed an existing output (-before +after):\n%s", diff)
		}
	})
}

// TestRuntimeUsageErrors: misused --trace, -- and --no-rule are refused with a message, nothing on stdout and
// nothing written; a usage error is found before any workload runs.
func TestRuntimeUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		code     int // 0: any non-zero status
		inStderr string
	}{
		{"trace with nothing after --", []string{"--trace", "/bin/true", "--"}, 2, "--trace"},
		{"trace without --", []string{"--trace", "/bin/true"}, 2, "--trace"},
		{"command after -- without --trace", []string{"/bin/true", "--", "/bin/echo", "hi"}, 2, "/bin/echo hi"},
		{"unknown rule", []string{"--no-rule", "bogus", "/bin/true"}, 0, "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dest := filepath.Join(parent, "out")
			code, stdout, stderr := scratchpack(t, append([]string{"build", "-o", "dir:" + dest}, tc.args...)...)
			if code == 0 || (tc.code != 0 && code != tc.code) || !strings.Contains(stderr, tc.inStderr) || stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit %d (0: any failure), nothing on stdout and a message naming %q",
					code, stdout, stderr, tc.code, tc.inStderr)
			}
			if _, err := os.Lstat(dest); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a refused build wrote %s (%v)", dest, err)
			}
		})
	}

	// --trace runs the workload for real: a build that a flag dooms must be refused before that.
	t.Run("unknown rule refused before the workload runs", func(t *testing.T) {
		needPtrace(t)
		dir := t.TempDir()
		marker := filepath.Join(dir, "ran")
		code, _, stderr := scratchpack(t, "build", "--no-rule", "bogus", "/bin/sh", "-o", "dir:"+filepath.Join(dir, "out"),
			"--trace", "--", "/bin/sh", "-c", "echo > "+marker)
		if code == 0 || !strings.Contains(stderr, "bogus") {
			t.Errorf("exit %d, stderr %q: want a failure naming bogus", code, stderr)
		}
		if _, err := os.Lstat(marker); err == nil {
			t.Errorf("the traced workload ran although --no-rule bogus doomed the build (exit %d): an invalid flag must be refused before anything runs", code)
		}
	})
}
