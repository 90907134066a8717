package elfdeps

import (
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestImportsMatchesNM compares the undefined dynamic symbols read through PT_DYNAMIC (DT_HASH or
// DT_GNU_HASH for the count) with what binutils' nm reads through the section headers.
func TestImportsMatchesNM(t *testing.T) {
	if _, err := exec.LookPath("nm"); err != nil {
		t.Skip("nm (binutils) is not installed")
	}
	r, err := NewDir("/")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, p := range []string{"/bin/ls", "/usr/bin/curl", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libz.so.1", "/usr/bin/python3"} {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		ran++
		out, err := exec.Command("nm", "-D", "--undefined-only", "--format=posix", p).Output()
		if err != nil {
			t.Fatalf("nm %s: %v", p, err)
		}
		var want []string
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 {
				continue
			}
			name, _, _ := strings.Cut(f[0], "@")
			want = append(want, name)
		}
		slices.Sort(want)
		want = slices.Compact(want)
		got, err := r.Imports(p)
		if err != nil {
			t.Fatalf("Imports(%s): %v", p, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Imports(%s) (-nm +ours):\n%s", p, diff)
		}
	}
	if ran == 0 {
		t.Skip("none of the sample binaries exists")
	}
}

func TestDlopen(t *testing.T) {
	r, err := NewDir("/", WithCPU(HostCPU))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Dlopen("/bin/ls", "libz.so.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Objects) != 1 || res.Objects[0].Path != "/lib/x86_64-linux-gnu/libz.so.1" || res.Objects[0].How != HowCache {
		t.Errorf("dlopen(libz.so.1) from /bin/ls: %+v, want the cache's libz only (libc is already mapped)", res.Objects)
	}
	res, err = r.Dlopen("/bin/ls", "libc.so.6")
	if err != nil || len(res.Objects) != 0 || len(res.Problems) != 0 {
		t.Errorf("dlopen of an already mapped library: %+v, %v; want nothing new", res, err)
	}
	res, err = r.Dlopen("/bin/ls", "libnope-scratchpack.so.9")
	var nf *NotFoundError
	if err != nil || len(res.Problems) != 1 || !errors.As(res.Problems[0], &nf) || nf.NeededBy != "/bin/ls" {
		t.Errorf("dlopen of a missing library: %+v, %v; want one NotFoundError needed by /bin/ls", res, err)
	}
}
