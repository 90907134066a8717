package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

var fixturesOnce sync.Once

// fixtures builds the C fixtures (make -C fixtures, idempotent) and returns their build directory.
func fixtures(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../../fixtures")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is not installed: the fixtures cannot be built")
	}
	var out []byte
	fixturesOnce.Do(func() {
		out, err = exec.Command("make", "-s", "-C", dir).CombinedOutput()
	})
	if err != nil {
		t.Fatalf("make -C fixtures: %v\n%s", err, out)
	}
	return filepath.Join(dir, "build")
}

// scratchpack runs the CLI in-process and returns its exit status, stdout and stderr.
func scratchpack(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// loaderList runs prog under the real loader in trace mode (nothing of it runs) and returns the sorted
// paths it maps, linux-vdso left out: `deps --format list` must print exactly these.
func loaderList(t *testing.T, prog string) []string {
	t.Helper()
	cmd := exec.Command(prog)
	cmd.Env = []string{"LD_TRACE_LOADED_OBJECTS=1"}
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tracing %s: %v", prog, err)
	}
	paths := tracePaths(string(out))
	slices.Sort(paths)
	return slices.Compact(paths)
}

// tracePaths returns the paths a LD_TRACE_LOADED_OBJECTS listing maps, in its order (linux-vdso is no file;
// a "not found" line gives its name).
func tracePaths(out string) []string {
	var paths []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "linux-vdso") {
			continue
		}
		if _, target, ok := strings.Cut(line, " => "); ok {
			line = target
		}
		p, _, _ := strings.Cut(line, " (0x")
		paths = append(paths, p)
	}
	return paths
}

func TestDepsListMatchesLoader(t *testing.T) {
	for _, prog := range []string{"/bin/ls", "/usr/bin/curl", "/usr/bin/git"} {
		if _, err := os.Stat(prog); err != nil {
			continue
		}
		t.Run(filepath.Base(prog), func(t *testing.T) {
			code, stdout, stderr := scratchpack(t, "deps", "--format", "list", prog)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := strings.Fields(stdout)
			if diff := cmp.Diff(loaderList(t, prog), got); diff != "" {
				t.Errorf("deps --format list %s differs from the loader (-loader +ours):\n%s", prog, diff)
			}
		})
	}
}

func TestDepsListMergesInputs(t *testing.T) {
	code, stdout, stderr := scratchpack(t, "deps", "--format", "list", "/bin/ls", "/bin/ls", "/bin/cat")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if !slices.IsSorted(lines) || len(slices.Compact(slices.Clone(lines))) != len(lines) {
		t.Errorf("list is not sorted and unique:\n%s", stdout)
	}
	if slices.Contains(lines, "/bin/ls") || slices.Contains(lines, "/bin/cat") {
		t.Errorf("list holds an input:\n%s", stdout)
	}
	want := append(loaderList(t, "/bin/ls"), loaderList(t, "/bin/cat")...)
	slices.Sort(want)
	if diff := cmp.Diff(slices.Compact(want), lines); diff != "" {
		t.Errorf("(-loader +ours):\n%s", diff)
	}
}

func TestDepsStaticPrintsNothing(t *testing.T) {
	prog := filepath.Join(fixtures(t), "static", "prog")
	for _, format := range []string{"list", "tree"} {
		code, stdout, stderr := scratchpack(t, "deps", "--format", format, prog)
		if code != 0 {
			t.Fatalf("--format %s: exit %d: %s", format, code, stderr)
		}
		if format == "list" && stdout != "" {
			t.Errorf("a static program listed dependencies: %q", stdout)
		}
		if format == "tree" && !strings.Contains(stdout, "(static)") {
			t.Errorf("tree does not say static: %q", stdout)
		}
	}
}

func TestDepsMissingLibrary(t *testing.T) {
	prog := filepath.Join(fixtures(t), "missing", "prog")
	code, stdout, stderr := scratchpack(t, "deps", "--format", "json", prog)
	if code != 1 {
		t.Fatalf("exit %d, want 1 (stderr %q)", code, stderr)
	}
	for _, want := range []string{"libgone.so.1 not found", "needed by " + prog, "searched:", "/etc/ld.so.cache"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	var res []jsonResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("json output: %v\n%s", err, stdout)
	}
	if len(res) != 1 || len(res[0].Missing) != 1 || res[0].Missing[0].Name != "libgone.so.1" || len(res[0].Missing[0].Searched) == 0 {
		t.Fatalf("json does not describe the missing library: %+v", res)
	}
	var paths []string
	for _, o := range res[0].Objects {
		paths = append(paths, o.Path)
	}
	if !slices.Contains(paths, "/lib64/ld-linux-x86-64.so.2") || !slices.Contains(paths, "/lib/x86_64-linux-gnu/libc.so.6") {
		t.Errorf("json lost what was found: %v", paths)
	}
}

func TestDepsBadInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	trueELF, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path, cause string
	}{
		{"not ELF", write("script.sh", []byte("#!/bin/sh\necho hi\n")), "not an ELF file"},
		{"empty", write("empty", nil), "file too short"},
		{"truncated header", write("trunc40", trueELF[:40]), "file too short"},
		{"truncated program headers", write("trunc100", trueELF[:100]), "beyond end of file"},
		{"directory", dir, "is a directory"},
		{"symlink loop", loop, "too many levels of symbolic links"},
		{"missing", filepath.Join(dir, "nope"), "does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, format := range []string{"tree", "list", "json"} {
				code, _, stderr := scratchpack(t, "deps", "--format", format, tc.path)
				if code == 0 {
					t.Errorf("--format %s: exit 0 for a bad input", format)
				}
				if !strings.Contains(stderr, tc.path) || !strings.Contains(stderr, tc.cause) {
					t.Errorf("--format %s: stderr %q does not name %s and %q", format, stderr, tc.path, tc.cause)
				}
			}
		})
	}
	// A bad input does not stop the others from being resolved.
	code, stdout, _ := scratchpack(t, "deps", "--format", "list", cases[0].path, "/bin/ls")
	if code != 1 || !strings.Contains(stdout, "libc.so.6") {
		t.Errorf("exit %d, stdout %q: want 1 and /bin/ls's list", code, stdout)
	}
}

func TestDepsUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"deps"},
		{"deps", "--format", "yaml", "/bin/ls"},
		{"deps", "--cpu", "fast", "/bin/ls"},
		{"deps", "--no-such-flag", "/bin/ls"},
		{"deps", "--root", "/nonexistent-root", "/bin/ls"},
		{"frobnicate"},
	} {
		if code, _, stderr := scratchpack(t, args...); code != 2 || stderr == "" {
			t.Errorf("%v: exit %d, stderr %q; want 2 and a message", args, code, stderr)
		}
	}
}

// TestDepsGolden pins the tree and JSON output for the $ORIGIN fixture resolved inside its own directory as a
// sysroot: the program is reached through a symlink, its libraries through $ORIGIN of its real path, and the
// C library is missing from that root (exit 1, every directory searched listed).
func TestDepsGolden(t *testing.T) {
	root := filepath.Join(fixtures(t), "origin")
	for _, format := range []string{"tree", "json"} {
		t.Run(format, func(t *testing.T) {
			code, stdout, stderr := scratchpack(t, "deps", "--root", root, "--cpu", "baseline", "--format", format, "/link/prog")
			if code != 1 {
				t.Fatalf("exit %d, want 1 (libc is not in this root); stderr %q", code, stderr)
			}
			checkGolden(t, "deps-origin."+format, stdout)
		})
	}
}
