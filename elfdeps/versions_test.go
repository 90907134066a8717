package elfdeps

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestVersionFixtures: libtree's scenario 06 against the real loader. prog-v2 needs vx@VER_2 and finds the
// old libx.so (VER_1 only) first: the loader refuses to start it, and the resolver reports the missing
// version, the library and who needs it. prog-ok finds the new copy first: both agree it starts.
func TestVersionFixtures(t *testing.T) {
	b := buildFixtures(t)
	for _, tc := range []struct {
		prog string
		want []VersionError
	}{
		{"version/prog-v2", []VersionError{{Version: "VER_2", Library: "libx.so", Path: filepath.Join(b, "version/prog-v2/../old/libx.so"), NeededBy: filepath.Join(b, "version/prog-v2")}}},
		{"version/prog-ok", nil},
	} {
		t.Run(tc.prog, func(t *testing.T) {
			prog := filepath.Join(b, tc.prog)
			out, err := exec.Command(prog).CombinedOutput()
			loaderRefused := err != nil && strings.Contains(string(out), "version `VER_2' not found")
			if loaderRefused != (tc.want != nil) {
				t.Fatalf("the real loader: %v, %q; want it to refuse: %v", err, out, tc.want != nil)
			}
			r, err := NewDir("/", WithCPU(HostCPU))
			if err != nil {
				t.Fatal(err)
			}
			res, err := r.Resolve(prog)
			if err != nil {
				t.Fatal(err)
			}
			var got []VersionError
			for _, p := range res.Problems {
				var ve *VersionError
				if errors.As(p, &ve) {
					got = append(got, *ve)
				} else {
					t.Errorf("unexpected problem: %v", p)
				}
			}
			for i := range got {
				got[i].Path = filepath.Clean(got[i].Path)
			}
			for i := range tc.want {
				tc.want[i].Path = filepath.Clean(tc.want[i].Path)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("version problems (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVersionsOfSynthObjects: a weak requirement, an object without version information, and a required
// version defined under another hash are treated as glibc treats them.
func TestVersionsOfSynthObjects(t *testing.T) {
	lib := &Object{Path: "/lib/libx.so.1", Soname: "libx.so.1", File: &File{VersionDefs: []VersionDef{{Name: "libx.so.1", Base: true, Hash: 1}, {Name: "V1", Hash: 2}}}}
	plain := &Object{Path: "/lib/liby.so.1", Soname: "liby.so.1", File: &File{}}
	prog := func(needs ...VersionNeed) *Object {
		return &Object{Path: "/bin/prog", File: &File{VersionNeeds: needs}}
	}
	for _, tc := range []struct {
		name string
		need VersionNeed
		want int
	}{
		{"defined", VersionNeed{File: "libx.so.1", Versions: []VersionReq{{Name: "V1", Hash: 2}}}, 0},
		{"missing", VersionNeed{File: "libx.so.1", Versions: []VersionReq{{Name: "V2", Hash: 3}}}, 1},
		{"missing but weak", VersionNeed{File: "libx.so.1", Versions: []VersionReq{{Name: "V2", Hash: 3, Weak: true}}}, 0},
		{"same name, other hash", VersionNeed{File: "libx.so.1", Versions: []VersionReq{{Name: "V1", Hash: 9}}}, 1},
		{"no version information (a warning only)", VersionNeed{File: "liby.so.1", Versions: []VersionReq{{Name: "V1", Hash: 2}}}, 0},
		{"not loaded", VersionNeed{File: "libz.so.1", Versions: []VersionReq{{Name: "V1", Hash: 2}}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkVersions([]*Object{prog(tc.need), lib, plain}, nil); len(got) != tc.want {
				t.Errorf("problems %v, want %d", got, tc.want)
			}
		})
	}
}
