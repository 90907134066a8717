package elfdeps

import (
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
