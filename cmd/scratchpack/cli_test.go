package main

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// checkGolden compares got with testdata/golden/NAME, which go test -update rewrites.
func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	golden := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs (-golden +got):\n%s", golden, diff)
	}
}

// controlBytes matches what a help text must not hold: control characters other than newline.
var controlBytes = regexp.MustCompile("[\x00-\x09\x0b-\x1f\x7f]")

// TestHelp: every help is on stdout with exit 0, nothing on stderr, no control bytes, and equals its golden
// file; an unknown flag or command is a usage error pointing at --help.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"help.txt", []string{"--help"}},
		{"help.txt", []string{"help"}},
		{"help-deps.txt", []string{"deps", "--help"}},
		{"help-deps.txt", []string{"help", "deps"}},
		{"help-build.txt", []string{"build", "--help"}},
		{"help-build.txt", []string{"build", "-h"}},
		{"help-rules.txt", []string{"rules", "--help"}},
		{"help-completion.txt", []string{"completion", "--help"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := scratchpack(t, tc.args...)
			if code != 0 || stderr != "" {
				t.Fatalf("exit %d, stderr %q: want 0 and nothing", code, stderr)
			}
			if loc := controlBytes.FindStringIndex(stdout); loc != nil {
				t.Errorf("control byte %q at %d: %q", stdout[loc[0]:loc[1]], loc[0], stdout[max(0, loc[0]-40):loc[1]])
			}
			if strings.Contains(stdout, "`") {
				t.Error("a backquote in the help (pflag would take it for an argument name)")
			}
			checkGolden(t, tc.golden, stdout)
		})
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--bogus", "/bin/true"}, "unknown flag: --bogus (see 'scratchpack build --help')"},
		{[]string{"deps", "--format"}, "flag needs an argument: --format (see 'scratchpack deps --help')"},
		{[]string{"frobnicate"}, "unknown command \"frobnicate\"; run 'scratchpack --help'"},
		{[]string{"--root", "/"}, "flags come after the command"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := scratchpack(t, tc.args...)
			if code != 2 || stdout != "" || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 and %q", code, stdout, stderr, tc.want)
			}
		})
	}
}

// TestVersion: version and --version print the same line, from the build information.
func TestVersion(t *testing.T) {
	code, a, _ := scratchpack(t, "version")
	code2, b, _ := scratchpack(t, "--version")
	if code != 0 || code2 != 0 || a != b {
		t.Fatalf("version: exit %d %q; --version: exit %d %q", code, a, code2, b)
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build information in the test binary")
	}
	if !strings.HasPrefix(a, "scratchpack ") || !strings.Contains(a, bi.GoVersion) {
		t.Errorf("version %q: want scratchpack VERSION (REVISION, %s)", a, bi.GoVersion)
	}
}

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
)

// binary builds scratchpack as make build does (once per test run) and returns its path.
func binary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH")
	}
	binaryOnce.Do(func() {
		dir, err := os.MkdirTemp("", "scratchpack-bin-")
		if err != nil {
			binaryErr = err
			return
		}
		binaryPath = filepath.Join(dir, "scratchpack")
		if out, err := exec.Command(goTool, "build", "-buildvcs=auto", "-o", binaryPath, ".").CombinedOutput(); err != nil {
			binaryErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binaryErr != nil {
		t.Fatal(binaryErr)
	}
	return binaryPath
}

// TestVersionOfTheBinary builds scratchpack as make build does, in this checkout, and checks that its
// version names this checkout's commit.
func TestVersionOfTheBinary(t *testing.T) {
	gitTool, err := exec.LookPath("git")
	if err != nil {
		t.Skip("git is not on PATH")
	}
	rev, err := exec.Command(gitTool, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	out, err := exec.Command(binary(t), "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), strings.TrimSpace(string(rev))) {
		t.Errorf("--version %q does not name the commit %s", out, rev)
	}
}

// TestCompletion: each script is valid for its shell, and bash's completes commands and a command's flags.
func TestCompletion(t *testing.T) {
	scripts := map[string]string{}
	for _, sh := range []string{"bash", "zsh", "fish"} {
		code, stdout, stderr := scratchpack(t, "completion", sh)
		if code != 0 || stderr != "" || stdout == "" {
			t.Fatalf("completion %s: exit %d, stderr %q", sh, code, stderr)
		}
		scripts[sh] = stdout
		file := filepath.Join(t.TempDir(), "completion."+sh)
		if err := os.WriteFile(file, []byte(stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		needTools(t, sh)
		if out, err := exec.Command(sh, "-n", file).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", sh, err, out)
		}
	}
	complete := func(words ...string) []string {
		t.Helper()
		script := filepath.Join(t.TempDir(), "c.bash")
		if err := os.WriteFile(script, []byte(scripts["bash"]), 0o644); err != nil {
			t.Fatal(err)
		}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+w+"'")
		}
		cmd := exec.Command("bash", "-c", ". "+script+"; COMP_WORDS=("+strings.Join(quoted, " ")+"); COMP_CWORD="+strconv.Itoa(len(words)-1)+"; _scratchpack; printf '%s\\n' \"${COMPREPLY[@]}\"")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("bash completion of %q: %v", words, err)
		}
		return strings.Fields(string(out))
	}
	if diff := cmp.Diff([]string{"build"}, complete("scratchpack", "bu")); diff != "" {
		t.Errorf("completing 'bu' (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"--trace", "--trace-env", "--trace-file", "--trace-file-cwd", "--trace-inherit-env", "--trace-timeout", "--trace-user"}, complete("scratchpack", "build", "--tra")); diff != "" {
		t.Errorf("completing 'build --tra' (-want +got):\n%s", diff)
	}
	if code, _, stderr := scratchpack(t, "completion", "tcsh"); code != 2 || !strings.Contains(stderr, "tcsh") {
		t.Errorf("completion tcsh: exit %d, stderr %q", code, stderr)
	}
}

// TestBuildJSON: --format json prints one object naming the output, the platform, and the files and bytes
// that went in, for a tree output and an image output.
func TestBuildJSON(t *testing.T) {
	dir := t.TempDir()
	root, layout := filepath.Join(dir, "root"), filepath.Join(dir, "oci")
	code, stdout, stderr := scratchpack(t, "build", "--certs", "never", "--format", "json", "/bin/true:/true", "-o", "dir:"+root, "-o", "oci:"+layout+":v1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got buildJSON
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not one build object: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Error("stdout holds more than one JSON value")
	}
	if got.Files < 3 || got.Bytes <= 0 || got.Platform != "linux/amd64" || len(got.Outputs) != 2 {
		t.Errorf("%+v: want files, bytes, linux/amd64 and two outputs", got)
	}
	digest := got.Outputs[1].Digest
	want := []outputJSON{
		{Output: "dir:" + root, Transport: "dir", Path: root},
		{Output: "oci:" + layout + ":v1", Transport: "oci", Path: layout, Reference: "v1", Digest: digest},
	}
	if diff := cmp.Diff(want, got.Outputs); diff != "" || !strings.HasPrefix(digest, "sha256:") {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	if got.Path != root || got.Digest != "" {
		t.Errorf("top level: path %q digest %q, want the first output's", got.Path, got.Digest)
	}
}

// TestImageOnlyFlagsWarn: image flags given for a tree output are named in a warning, not dropped silently.
func TestImageOnlyFlagsWarn(t *testing.T) {
	code, _, stderr := scratchpack(t, "build", "--certs", "never", "--env", "A=1", "--entrypoint", "/x", "/bin/true", "-o", "dir:"+filepath.Join(t.TempDir(), "r"))
	if code != 0 || !strings.Contains(stderr, "warning: --entrypoint, --env only apply to images") {
		t.Errorf("exit %d, stderr %q: want a warning naming --entrypoint and --env", code, stderr)
	}
	code, _, stderr = scratchpack(t, "build", "--certs", "never", "--env", "A=1", "/bin/true", "-o", "oci:"+filepath.Join(t.TempDir(), "o"))
	if code != 0 || strings.Contains(stderr, "warning") {
		t.Errorf("an image output: exit %d, stderr %q: want no warning", code, stderr)
	}
}

// TestSignalStopsTheBuild: TERM, HUP and INT during a build's write stop it with exit 130, leaving neither
// the output nor a temporary beside it (issue 9 #9, #10).
func TestSignalStopsTheBuild(t *testing.T) {
	bin := binary(t)
	big := randomFile(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			parent := t.TempDir()
			cmd := exec.Command(bin, "build", "--certs", "never", "/bin/true", "--add", big+":/big", "-o", "oci:"+filepath.Join(parent, "out"))
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(700 * time.Millisecond)
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err := cmd.Wait()
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Errorf("exit %d (%v), stderr %q; want 130", code, err, stderr.String())
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("it took %v to stop", d)
			}
			if ents, _ := os.ReadDir(parent); len(ents) != 0 {
				t.Errorf("a stopped build left %v", ents)
			}
		})
	}
}

var (
	randomOnce sync.Once
	randomPath string
)

// randomFile is a 512 MiB file of random bytes (incompressible: gzip takes seconds over it), made once per
// test run next to the test binary's scratchpack.
func randomFile(t *testing.T) string {
	t.Helper()
	bin := binary(t)
	randomOnce.Do(func() {
		p := filepath.Join(filepath.Dir(bin), "random.bin")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// A MiB at a time: the test process stays small (its memory is no part of what is measured).
		if _, err := io.CopyN(f, rand.Reader, 512<<20); err != nil {
			t.Fatal(err)
		}
		randomPath = p
	})
	if randomPath == "" {
		t.Fatal("no random file")
	}
	return randomPath
}

// TestBuildMemoryIsBounded: building an image keeps its peak RSS at most 64 MiB plus 1 KiB per entry,
// whatever the closure's size (the compressed layer goes to a file, not to memory): 512 MiB of random data,
// and a tree of 100,000 small files, with GOMAXPROCS 2 and 16 (issue 9 #8).
func TestBuildMemoryIsBounded(t *testing.T) {
	bin := binary(t)
	many := filepath.Join(t.TempDir(), "many")
	const files = 100000
	for i := range files {
		d := filepath.Join(many, fmt.Sprintf("%03d", i/1000))
		if i%1000 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%05d", i)), []byte("small\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		add     string
		entries int
	}{
		{"512 MiB of random data", randomFile(t) + ":/big", 1},
		{"100,000 small files", many + ":/many", files + files/1000},
	} {
		for _, procs := range []string{"2", "16"} {
			t.Run(tc.name+" GOMAXPROCS="+procs, func(t *testing.T) {
				out := filepath.Join(t.TempDir(), "oci")
				cmd := exec.Command(bin, "build", "--certs", "never", "/bin/true", "--add", tc.add, "-o", "oci:"+out)
				cmd.Env = append(os.Environ(), "GOMAXPROCS="+procs)
				var msg strings.Builder
				cmd.Stdout, cmd.Stderr = &msg, &msg
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				// The child's ru_maxrss would hold this test process's peak too (exec records the old
				// address space's, which a vfork child shares with its parent): read its own high-water
				// mark, VmHWM, until it exits.
				peak := make(chan int64)
				go func() { peak <- pollHWM(cmd.Process.Pid) }()
				if err := cmd.Wait(); err != nil {
					t.Fatalf("build: %v\n%s", err, msg.String())
				}
				hwm := <-peak
				limit := int64(64<<10 + tc.entries) // KiB
				t.Logf("peak RSS %d KiB (limit %d KiB)", hwm, limit)
				if hwm == 0 || hwm > limit {
					t.Errorf("peak RSS %d KiB, want 1 to %d KiB", hwm, limit)
				}
			})
		}
	}
}

// pollHWM reads a process's VmHWM (KiB) every 10 ms until the process is gone, and returns the last value
// read (a high-water mark only grows).
func pollHWM(pid int) int64 {
	var last int64
	for {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return last
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				if n, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64); err == nil && n > last {
					last = n
				}
			}
		}
		if strings.Contains(string(data), "State:\tZ") {
			return last
		}
		time.Sleep(10 * time.Millisecond)
	}
}
