package elfdeps

import (
	"debug/elf"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestFixturesMatchLoader resolves every fixture program (each one a loader rule) and compares, entry for
// entry and in load order, with what the real loader maps when the program is traced on this machine.
func TestFixturesMatchLoader(t *testing.T) {
	for _, fp := range fixturePrograms(t) {
		t.Run(fp.Name, func(t *testing.T) {
			opts := []Option{WithWorkDir(fp.Dir), WithCPU(HostCPU)}
			for _, e := range fp.Env {
				if v, ok := strings.CutPrefix(e, "LD_LIBRARY_PATH="); ok {
					opts = append(opts, WithLibraryPath(v))
				}
			}
			r, err := NewDir("/", opts...)
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Resolve(fp.Path)
			if err != nil {
				t.Fatalf("Resolve(%s): %v", fp.Path, err)
			}
			want := traceLoader(t, fp.Dir, fp.Path, fp.Env...)
			got := ourTrace(res)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s: resolver differs from the real loader (-loader +ours):\n%s", fp.Path, diff)
			}
			var missing []string
			for _, p := range res.Problems {
				var nf *NotFoundError
				var le *LoadError
				switch {
				case errors.As(p, &nf):
					missing = append(missing, nf.Name)
				case errors.As(p, &le):
					missing = append(missing, le.Name)
				}
			}
			if diff := cmp.Diff(fp.WantMissing, missing); diff != "" {
				t.Errorf("missing names (-want +got):\n%s", diff)
			}
		})
	}
}

// TestWithCPUSharesCaches: a resolver derived by WithCPU picks its own glibc-hwcaps variant but reads no
// object again.
func TestWithCPUSharesCaches(t *testing.T) {
	var prog string
	for _, fp := range fixturePrograms(t) {
		if fp.Name == "hwcaps" {
			prog = fp.Path
		}
	}
	if prog == "" {
		t.Fatal("no hwcaps fixture")
	}
	v2 := func(m elf.Machine, c elf.Class) CPU {
		cpu := BaselineCPU(m, c)
		cpu.HWCaps = []string{"x86-64-v2"}
		return cpu
	}
	base, err := NewDir("/", WithCPU(BaselineCPU))
	if err != nil {
		t.Fatal(err)
	}
	lib := func(r *Resolver) string {
		res, err := r.Resolve(prog)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range res.Objects {
			if o.Name == "libhw.so.1" {
				return o.Path
			}
		}
		t.Fatalf("no libhw.so.1 in %v", res.Paths())
		return ""
	}
	plain := lib(base)
	parsed := len(base.c.objs)
	derived := base.WithCPU(v2)
	withV2 := lib(derived)
	if !strings.Contains(withV2, "/glibc-hwcaps/x86-64-v2/") || strings.Contains(plain, "glibc-hwcaps") {
		t.Errorf("baseline got %s, x86-64-v2 got %s", plain, withV2)
	}
	if got := len(base.c.objs); got != parsed+1 {
		t.Errorf("the derived resolver parsed %d new objects, want only the v2 copy of libhw", got-parsed)
	}
}
