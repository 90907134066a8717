package elfdeps

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Search directories as NotFoundError.Searched names them.
const (
	dirL      = "/lib/x86_64-linux-gnu"
	dirUL     = "/usr/lib/x86_64-linux-gnu"
	dirLib    = "/lib"
	dirUsrLib = "/usr/lib"
)

var defaultSearched = []string{dirL + " (default)", dirUL + " (default)", dirLib + " (default)", dirUsrLib + " (default)"}

// objView is what a case pins of each mapped object.
type objView struct {
	Path string
	How  How
	Via  string
}

// problemView is what a case pins of each problem.
type problemView struct {
	Kind       string // "not found" or "load"
	Name       string
	NeededBy   string
	Path       string   // LoadError.Path
	Searched   []string // NotFoundError.Searched
	WrongClass []string
}

var rtldView = objView{synthRTLDPath, HowInterp, ""}

func viewObjects(objs []*Object) []objView {
	var out []objView
	for _, o := range objs {
		if o == nil { // a Deps entry that was not found
			out = append(out, objView{Path: "(nil)"})
			continue
		}
		out = append(out, objView{o.Path, o.How, o.Via})
	}
	return out
}

func viewProblems(t *testing.T, errs []error) []problemView {
	t.Helper()
	var out []problemView
	for _, err := range errs {
		var nf *NotFoundError
		var le *LoadError
		switch {
		case errors.As(err, &nf):
			out = append(out, problemView{Kind: "not found", Name: nf.Name, NeededBy: nf.NeededBy, Searched: nf.Searched, WrongClass: nf.WrongClass})
		case errors.As(err, &le):
			out = append(out, problemView{Kind: "load", Name: le.Name, NeededBy: le.NeededBy, Path: le.Path})
		default:
			t.Errorf("problem of unexpected type %T: %v", err, err)
		}
	}
	return out
}

func wantNotFound(name, neededBy string, searched ...string) problemView {
	return problemView{Kind: "not found", Name: name, NeededBy: neededBy, Searched: searched}
}

func wantLoadErr(name, neededBy, path string) problemView {
	return problemView{Kind: "load", Name: name, NeededBy: neededBy, Path: path}
}

// objByPath returns the mapped object at p.
func objByPath(t *testing.T, res *Result, p string) *Object {
	t.Helper()
	for _, o := range res.Objects {
		if o.Path == p {
			return o
		}
	}
	t.Fatalf("no object %s among %v", p, viewObjects(res.Objects))
	return nil
}

type resolveCase struct {
	name  string
	root  synthRoot // the fake ld.so is added at synthRTLDPath unless the case sets that path (nil: none)
	opts  []Option  // after WithCPU(synthCPU)
	input string    // default synthProg

	want         []objView
	wantProblems []problemView
	wantFlavor   Flavor // default glibc
	check        func(t *testing.T, res *Result)
	ownProblems  bool // check inspects Problems itself
}

func runResolveCases(t *testing.T, tests []resolveCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := synthRoot{synthRTLDPath: synthRTLD()}
			for p, v := range tc.root {
				root[p] = v
			}
			r, err := New(root.mapFS(t), append([]Option{WithCPU(synthCPU)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			input := tc.input
			if input == "" {
				input = synthProg
			}
			res := resolveWithin(t, r, input)
			if res == nil {
				return
			}
			want := tc.wantFlavor
			if want == "" {
				want = FlavorGlibc
			}
			if res.Flavor != want {
				t.Errorf("Flavor = %q, want %q", res.Flavor, want)
			}
			if diff := cmp.Diff(tc.want, viewObjects(res.Objects)); diff != "" {
				t.Errorf("Objects (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantProblems, viewProblems(t, res.Problems)); diff != "" && !tc.ownProblems {
				t.Errorf("Problems (-want +got):\n%s", diff)
			}
			if tc.check != nil {
				tc.check(t, res)
			}
		})
	}
}

// resolveWithin resolves p, failing the test on an error or if the resolver takes more than a few seconds
// (a symlink loop must not hang it).
func resolveWithin(t *testing.T, r *Resolver, p string) *Result {
	t.Helper()
	type out struct {
		res *Result
		err error
	}
	done := make(chan out, 1)
	go func() {
		res, err := r.Resolve(p)
		done <- out{res, err}
	}()
	select {
	case o := <-done:
		if o.err != nil {
			t.Errorf("Resolve(%q): %v", p, o.err)
			return nil
		}
		return o.res
	case <-time.After(20 * time.Second):
		t.Fatalf("Resolve(%q) did not return", p)
		return nil
	}
}

// synthLib is a shared library needing names.
func synthLib(needed ...string) synthOpts { return synthOpts{Needed: needed} }

// synthProgram is a glibc program needing names.
func synthProgram(needed ...string) synthOpts { return synthExe(synthOpts{Needed: needed}) }

func TestResolveGlibcOrder(t *testing.T) { runResolveCases(t, glibcOrderCases()) }

func glibcOrderCases() []resolveCase {
	return []resolveCase{
		{
			name: "breadth-first with a diamond",
			root: synthRoot{
				synthProg:              synthProgram("liba.so", "libb.so"),
				dirL + "/liba.so":      synthLib("libd.so"),
				dirL + "/libb.so":      synthLib("libd.so", "libe.so"),
				dirL + "/libd.so":      synthLib("libf.so"),
				dirUL + "/libe.so":     synthLib(),
				dirUsrLib + "/libf.so": synthLib(),
			},
			want: []objView{
				{dirL + "/liba.so", HowDefault, ""},
				{dirL + "/libb.so", HowDefault, ""},
				{dirL + "/libd.so", HowDefault, ""},
				{dirUL + "/libe.so", HowDefault, ""},
				{dirUsrLib + "/libf.so", HowDefault, ""},
				rtldView,
			},
			check: func(t *testing.T, res *Result) {
				a, b, d := objByPath(t, res, dirL+"/liba.so"), objByPath(t, res, dirL+"/libb.so"), objByPath(t, res, dirL+"/libd.so")
				if d.NeededBy != a.Path {
					t.Errorf("libd.so NeededBy = %q, want the first object needing it, %q", d.NeededBy, a.Path)
				}
				if len(b.Deps) != 2 || b.Deps[0] != d || a.Deps[0] != d {
					t.Errorf("libd.so is not one shared object: liba.Deps=%v libb.Deps=%v", a.Deps, b.Deps)
				}
				if d.Dir != dirL {
					t.Errorf("libd.so Dir = %q, want %q", d.Dir, dirL)
				}
			},
		},
		{
			name: "already loaded by SONAME, the interpreter included",
			root: synthRoot{
				synthProg:               synthProgram("liba.so", "libb.so"),
				dirL + "/liba.so":       synthOpts{Soname: "libalias.so.1"},
				dirL + "/libalias.so.1": synthLib(), // never searched: the name is already loaded
				dirL + "/libb.so":       synthLib("libalias.so.1", "ld-linux-x86-64.so.2", "liba.so"),
			},
			want: []objView{
				{dirL + "/liba.so", HowDefault, ""},
				{dirL + "/libb.so", HowDefault, ""},
				rtldView,
			},
			check: func(t *testing.T, res *Result) {
				a, b := objByPath(t, res, dirL+"/liba.so"), objByPath(t, res, dirL+"/libb.so")
				if len(b.Deps) != 3 || b.Deps[0] != a || b.Deps[1] != res.Interp || b.Deps[2] != a {
					t.Errorf("libb.so Deps = %v, want liba.so, the interpreter, liba.so", viewObjects(b.Deps))
				}
			},
		},
		{
			name: "the interpreter by its PT_INTERP path",
			root: synthRoot{
				synthProg:           synthProgram("libc.so.6"),
				dirL + "/libc.so.6": synthLib(synthRTLDPath),
			},
			want: []objView{{dirL + "/libc.so.6", HowDefault, ""}, rtldView},
		},
		{
			// glibc records no file identity for ld.so (nor for the program): only its names and SONAME
			// match, and another path to the same file maps a second copy (checked with Debian 12's loader).
			name: "the interpreter needed by another path to the same file is mapped again",
			root: synthRoot{
				synthRTLDPath:                  synthLink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
				dirL + "/ld-linux-x86-64.so.2": synthRTLD(),
				synthProg:                      synthProgram("libc.so.6"),
				dirL + "/libc.so.6":            synthLib("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
			},
			want: []objView{{dirL + "/libc.so.6", HowDefault, ""}, {dirL + "/ld-linux-x86-64.so.2", HowPath, ""}, rtldView},
		},
		{
			name: "the same file under two names is one object",
			root: synthRoot{
				synthProg:           synthProgram("libz.so.1", "libz.so"),
				dirL + "/libz.so.1": synthLib(),
				dirUL + "/libz.so":  synthLink("/lib/x86_64-linux-gnu/libz.so.1"),
			},
			want: []objView{{dirL + "/libz.so.1", HowDefault, ""}, rtldView},
		},
		{
			name:  "a shared library as input is loaded as ld.so would load it",
			input: dirL + "/libtop.so",
			root: synthRoot{
				dirL + "/libtop.so":     synthOpts{Needed: []string{"libdep.so"}, RunPath: "$ORIGIN/sub"},
				dirL + "/sub/libdep.so": synthLib("ld-linux-x86-64.so.2"),
			},
			want: []objView{
				{dirL + "/sub/libdep.so", HowRUNPATH, dirL + "/libtop.so"},
				{synthRTLDPath, HowDefaultInterp, ""},
			},
		},
		{
			name:       "static program maps nothing",
			input:      "/bin/static",
			root:       synthRoot{"/bin/static": synthOpts{Type: elf.ET_EXEC, Static: true}},
			wantFlavor: FlavorStatic,
			check: func(t *testing.T, res *Result) {
				if res.Interp != nil || len(res.Objects) != 0 {
					t.Errorf("static input: Interp=%v Objects=%v, want none", res.Interp, viewObjects(res.Objects))
				}
			},
		},
		{
			name:       "static-pie maps nothing",
			input:      "/bin/static-pie",
			root:       synthRoot{"/bin/static-pie": synthOpts{Flags1: uint64(elf.DF_1_PIE)}},
			wantFlavor: FlavorStatic,
		},
		{
			name: "missing interpreter",
			root: synthRoot{
				synthRTLDPath:               nil,
				synthProg:                   synthProgram("liba.so"),
				dirL + "/liba.so":           synthLib(),
				"/usr/lib/x86_64-linux-gnu": synthDir{}, // the multiarch layout the fallback default directories follow
			},
			want:        []objView{{dirL + "/liba.so", HowDefault, ""}},
			ownProblems: true,
			check: func(t *testing.T, res *Result) {
				var nf *NotFoundError
				if len(res.Problems) != 1 || !errors.As(res.Problems[0], &nf) || nf.Name != synthRTLDPath || nf.NeededBy != synthProg {
					t.Errorf("Problems = %v, want one *NotFoundError for %s needed by %s", res.Problems, synthRTLDPath, synthProg)
				}
			},
		},
	}
}

func TestResolveGlibcRPath(t *testing.T) { runResolveCases(t, glibcRPathCases()) }

func glibcRPathCases() []resolveCase {
	return []resolveCase{
		{
			name: "DT_RPATH of the program inherited through a library without RUNPATH",
			root: synthRoot{
				synthProg:         synthExe(synthOpts{Needed: []string{"liba.so"}, RPath: "/opt/a"}),
				"/opt/a/liba.so":  synthLib("libb.so"),
				"/opt/a/libb.so":  synthLib(),
				dirL + "/libb.so": synthLib(),
			},
			want: []objView{
				{"/opt/a/liba.so", HowRPATH, synthProg},
				{"/opt/a/libb.so", HowRPATH, synthProg},
				rtldView,
			},
		},
		{
			name: "DT_RPATH of a library inherited by its dependencies",
			root: synthRoot{
				synthProg:          synthProgram("liba.so"),
				dirL + "/liba.so":  synthOpts{Needed: []string{"libb.so"}, RPath: "/opt/b"},
				"/opt/b/libb.so":   synthLib("libc2.so"),
				"/opt/b/libc2.so":  synthLib(),
				dirL + "/libc2.so": synthLib(),
			},
			want: []objView{
				{dirL + "/liba.so", HowDefault, ""},
				{"/opt/b/libb.so", HowRPATH, dirL + "/liba.so"},
				{"/opt/b/libc2.so", HowRPATH, dirL + "/liba.so"},
				rtldView,
			},
		},
		{
			name: "the loader's own DT_RPATH comes before its loader's",
			root: synthRoot{
				synthProg:        synthExe(synthOpts{Needed: []string{"liba.so"}, RPath: "/opt/p"}),
				"/opt/p/liba.so": synthOpts{Needed: []string{"libb.so"}, RPath: "/opt/a"},
				"/opt/p/libb.so": synthLib(),
				"/opt/a/libb.so": synthLib(),
			},
			want: []objView{
				{"/opt/p/liba.so", HowRPATH, synthProg},
				{"/opt/a/libb.so", HowRPATH, "/opt/p/liba.so"},
				rtldView,
			},
		},
		{
			name: "inheritance blocked when the immediate loader has DT_RUNPATH",
			root: synthRoot{
				synthProg:          synthExe(synthOpts{Needed: []string{"liba.so"}, RPath: "/opt/a"}),
				"/opt/a/liba.so":   synthOpts{Needed: []string{"libb.so"}, RunPath: "/opt/r"},
				"/opt/a/libb.so":   synthLib(),
				dirUL + "/libb.so": synthLib(),
			},
			want: []objView{
				{"/opt/a/liba.so", HowRPATH, synthProg},
				{dirUL + "/libb.so", HowDefault, ""},
				rtldView,
			},
		},
		{
			name: "inheritance walks past a RUNPATH object when the immediate loader has none",
			root: synthRoot{
				synthProg:          synthExe(synthOpts{Needed: []string{"liba.so"}, RPath: "/opt/a"}),
				"/opt/a/liba.so":   synthOpts{Needed: []string{"libb.so"}, RunPath: "/opt/r"},
				"/opt/r/libb.so":   synthLib("libc2.so"),
				"/opt/a/libc2.so":  synthLib(),
				dirL + "/libc2.so": synthLib(),
			},
			want: []objView{
				{"/opt/a/liba.so", HowRPATH, synthProg},
				{"/opt/r/libb.so", HowRUNPATH, "/opt/a/liba.so"},
				{"/opt/a/libc2.so", HowRPATH, synthProg},
				rtldView,
			},
		},
		{
			name: "DT_RPATH ignored when the same object has DT_RUNPATH",
			root: synthRoot{
				synthProg:            synthExe(synthOpts{Needed: []string{"liba.so", "libonlya.so"}, RPath: "/opt/a", RunPath: "/opt/r"}),
				"/opt/a/liba.so":     synthLib(),
				"/opt/r/liba.so":     synthLib(),
				"/opt/a/libonlya.so": synthLib(),
			},
			want: []objView{{"/opt/r/liba.so", HowRUNPATH, synthProg}, rtldView},
			wantProblems: []problemView{
				wantNotFound("libonlya.so", synthProg, append([]string{"/opt/r (RUNPATH of /bin/prog)"}, defaultSearched...)...),
			},
		},
		{
			name: "DT_RPATH of an object with DT_RUNPATH is not inherited either",
			root: synthRoot{
				synthProg:           synthProgram("liba.so"),
				dirL + "/liba.so":   synthOpts{Needed: []string{"libb.so"}, RPath: "/opt/a", RunPath: "/opt/r"},
				"/opt/r/libb.so":    synthLib("libc2.so"),
				"/opt/a/libc2.so":   synthLib(),
				"/opt/r/libc2.so":   synthLib(),
				dirUL + "/libc2.so": synthLib(),
			},
			want: []objView{
				{dirL + "/liba.so", HowDefault, ""},
				{"/opt/r/libb.so", HowRUNPATH, dirL + "/liba.so"},
				{dirUL + "/libc2.so", HowDefault, ""},
				rtldView,
			},
		},
		{
			name: "DT_RUNPATH not inherited",
			root: synthRoot{
				synthProg:        synthExe(synthOpts{Needed: []string{"liba.so"}, RunPath: "/opt/r"}),
				"/opt/r/liba.so": synthLib("libb.so"),
				"/opt/r/libb.so": synthLib(),
			},
			want:         []objView{{"/opt/r/liba.so", HowRUNPATH, synthProg}, rtldView},
			wantProblems: []problemView{wantNotFound("libb.so", "/opt/r/liba.so", defaultSearched...)},
			check: func(t *testing.T, res *Result) {
				var nf *NotFoundError
				if !errors.As(res.Err(), &nf) {
					t.Fatalf("Err() = %v, want a *NotFoundError", res.Err())
				}
				msg := nf.Error()
				for _, s := range []string{"libb.so", "/opt/r/liba.so", dirL} {
					if !strings.Contains(msg, s) {
						t.Errorf("error %q does not mention %q", msg, s)
					}
				}
			},
		},
		{
			name: "LD_LIBRARY_PATH comes after DT_RPATH",
			opts: []Option{WithLibraryPath("/opt/llp")},
			root: synthRoot{
				synthProg:          synthExe(synthOpts{Needed: []string{"liba.so", "libb.so"}, RPath: "/opt/rp"}),
				"/opt/rp/liba.so":  synthLib(),
				"/opt/llp/liba.so": synthLib(),
				"/opt/llp/libb.so": synthLib(),
				dirL + "/libb.so":  synthLib(),
			},
			want: []objView{
				{"/opt/rp/liba.so", HowRPATH, synthProg},
				{"/opt/llp/libb.so", HowLibraryPath, ""},
				rtldView,
			},
		},
		{
			name: "LD_LIBRARY_PATH comes before DT_RUNPATH; ';' separates too",
			opts: []Option{WithLibraryPath("/opt/none;/opt/llp")},
			root: synthRoot{
				synthProg:          synthExe(synthOpts{Needed: []string{"liba.so"}, RunPath: "/opt/rn"}),
				"/opt/rn/liba.so":  synthLib(),
				"/opt/llp/liba.so": synthLib(),
			},
			want: []objView{{"/opt/llp/liba.so", HowLibraryPath, ""}, rtldView},
		},
		{
			name:  "LD_LIBRARY_PATH $ORIGIN is the program's directory",
			input: "/opt/app/bin/prog",
			opts:  []Option{WithLibraryPath("$ORIGIN/../llp")},
			root: synthRoot{
				"/opt/app/bin/prog":    synthProgram("liba.so"),
				"/opt/app/llp/liba.so": synthLib(),
			},
			want: []objView{{"/opt/app/bin/../llp/liba.so", HowLibraryPath, ""}, rtldView},
		},
		{
			name: "empty LD_LIBRARY_PATH element is the working directory",
			opts: []Option{WithWorkDir("/work"), WithLibraryPath("/opt/none::/opt/x")},
			root: synthRoot{
				synthProg:        synthProgram("liba.so"),
				"/work/liba.so":  synthLib(),
				"/opt/x/liba.so": synthLib(),
			},
			want: []objView{{"/work/liba.so", HowLibraryPath, ""}, rtldView},
			check: func(t *testing.T, res *Result) {
				if d := res.Objects[0].Dir; d != "/work" {
					t.Errorf("Dir = %q, want /work", d)
				}
			},
		},
		{
			name: "empty DT_RPATH element is the working directory",
			opts: []Option{WithWorkDir("/work")},
			root: synthRoot{
				synthProg:         synthExe(synthOpts{Needed: []string{"liba.so"}, RPath: "/opt/none:"}),
				"/work/liba.so":   synthLib(),
				dirL + "/liba.so": synthLib(),
			},
			want: []objView{{"/work/liba.so", HowRPATH, synthProg}, rtldView},
		},
		{
			name: "relative DT_RUNPATH element is relative to the working directory",
			opts: []Option{WithWorkDir("/work")},
			root: synthRoot{
				synthProg:           synthExe(synthOpts{Needed: []string{"liba.so"}, RunPath: "rel"}),
				"/work/rel/liba.so": synthLib(),
				"/bin/rel/liba.so":  synthLib(),
			},
			want: []objView{{"/work/rel/liba.so", HowRUNPATH, synthProg}, rtldView},
		},
		{
			name: "DF_1_NODEFLIB skips the default directories for the flagged loader only",
			root: synthRoot{
				synthProg: synthExe(synthOpts{Needed: []string{"liba.so", "libdef.so"}, RPath: "/opt/a",
					Flags1: uint64(elf.DF_1_NODEFLIB)}),
				"/opt/a/liba.so":     synthLib("libdef2.so"),
				dirL + "/libdef.so":  synthLib(),
				dirL + "/libdef2.so": synthLib(),
			},
			want: []objView{
				{"/opt/a/liba.so", HowRPATH, synthProg},
				{dirL + "/libdef2.so", HowDefault, ""},
				rtldView,
			},
			wantProblems: []problemView{wantNotFound("libdef.so", synthProg, "/opt/a (RPATH of /bin/prog)")},
		},
	}
}

func TestResolveGlibcDST(t *testing.T) { runResolveCases(t, glibcDSTCases()) }

func glibcDSTCases() []resolveCase {
	return []resolveCase{
		{
			name:  "$ORIGIN of the program is its real directory",
			input: "/usr/bin/prog",
			root: synthRoot{
				"/usr/bin/prog":        synthLink("../../opt/app/bin/prog"),
				"/opt/app/bin/prog":    synthExe(synthOpts{Needed: []string{"liba.so"}, RPath: "$ORIGIN/../lib"}),
				"/opt/app/lib/liba.so": synthLib(),
				"/usr/lib/liba.so":     synthLib(), // /usr/bin/../lib: where a $ORIGIN taken from the link would lead
			},
			want: []objView{{"/opt/app/bin/../lib/liba.so", HowRPATH, "/usr/bin/prog"}, rtldView},
			check: func(t *testing.T, res *Result) {
				want := []Link{{Path: "/usr/bin/prog", Target: "../../opt/app/bin/prog"}}
				if diff := cmp.Diff(want, res.Input.Links); diff != "" {
					t.Errorf("Input.Links (-want +got):\n%s", diff)
				}
				if res.Input.RealPath != "/opt/app/bin/prog" {
					t.Errorf("Input.RealPath = %q", res.Input.RealPath)
				}
			},
		},
		{
			name: "$ORIGIN of a library is the directory it was opened from, uncanonicalised",
			root: synthRoot{
				synthProg:               synthExe(synthOpts{Needed: []string{"libq.so", "liba.so.1"}, RPath: "/opt/app/bin/../lib"}),
				"/opt/app/lib/libq.so":  synthOpts{Needed: []string{"libr.so"}, RunPath: "$ORIGIN"},
				"/opt/app/lib/libr.so":  synthLib(),
				"/opt/app/bin":          synthDir{}, // the kernel walks /opt/app/bin/..
				dirL + "/liba.so.1":     synthLink("/opt/real/liba.so.1"),
				"/opt/real/liba.so.1":   synthOpts{Needed: []string{"libb.so"}, RunPath: "$ORIGIN/sub"},
				dirL + "/sub/libb.so":   synthLib(),
				"/opt/real/sub/libb.so": synthLib(),
			},
			want: []objView{
				{"/opt/app/bin/../lib/libq.so", HowRPATH, synthProg},
				{dirL + "/liba.so.1", HowDefault, ""},
				{"/opt/app/bin/../lib/libr.so", HowRUNPATH, "/opt/app/bin/../lib/libq.so"},
				{dirL + "/sub/libb.so", HowRUNPATH, dirL + "/liba.so.1"},
				rtldView,
			},
		},
		{
			name: "$LIB, $PLATFORM, ${ORIGIN}, unknown $FOO and $ORIGINX",
			root: synthRoot{
				synthProg: synthExe(synthOpts{
					Needed: []string{"liblib.so", "libplat.so", "libbrace.so", "libfoo.so", "liborx.so", "libblib.so"},
					RPath:  "/opt/$LIB:/opt/p/$PLATFORM:${ORIGIN}/b:/opt/$FOO:/opt/$ORIGINX:/opt/b/${LIB}",
				}),
				"/opt/lib/x86_64-linux-gnu/liblib.so":    synthLib(),
				"/opt/p/haswell/libplat.so":              synthLib(),
				"/bin/b/libbrace.so":                     synthLib(),
				"/opt/$FOO/libfoo.so":                    synthLib(),
				"/opt/$ORIGINX/liborx.so":                synthLib(),
				"/opt/b/lib/x86_64-linux-gnu/libblib.so": synthLib(),
				dirL + "/libfoo.so":                      synthLib(),
				dirL + "/liborx.so":                      synthLib(),
			},
			want: []objView{
				{"/opt/lib/x86_64-linux-gnu/liblib.so", HowRPATH, synthProg},
				{"/opt/p/haswell/libplat.so", HowRPATH, synthProg},
				{"/bin/b/libbrace.so", HowRPATH, synthProg},
				{"/opt/$FOO/libfoo.so", HowRPATH, synthProg},
				{"/opt/$ORIGINX/liborx.so", HowRPATH, synthProg},
				{"/opt/b/lib/x86_64-linux-gnu/libblib.so", HowRPATH, synthProg},
				rtldView,
			},
		},
		{
			name:  "$ORIGIN in a needed name holding '/'",
			input: "/opt/app/prog",
			root: synthRoot{
				"/opt/app/prog":         synthProgram("$ORIGIN/plug/libo.so"),
				"/opt/app/plug/libo.so": synthLib(),
			},
			want: []objView{{"/opt/app/plug/libo.so", HowPath, ""}, rtldView},
		},
		{
			name:  "needed names holding '/' are relative to the working directory, without subdirectories",
			input: "app/prog",
			opts:  []Option{WithWorkDir("/srv")},
			root: synthRoot{
				"/srv/app/prog":                           synthProgram("sub/libr.so"),
				"/srv/sub/libr.so":                        synthLib(),
				"/srv/app/sub/libr.so":                    synthLib(), // relative to $ORIGIN: not used
				"/srv/sub/glibc-hwcaps/x86-64-v3/libr.so": synthLib(),
			},
			want: []objView{{"/srv/sub/libr.so", HowPath, ""}, rtldView},
			check: func(t *testing.T, res *Result) {
				if res.Input.Path != "/srv/app/prog" {
					t.Errorf("Input.Path = %q, want /srv/app/prog", res.Input.Path)
				}
			},
		},
	}
}

func TestResolveGlibcSubdirs(t *testing.T) { runResolveCases(t, glibcSubdirsCases()) }

func glibcSubdirsCases() []resolveCase {
	v := func(sub string) string { return dirL + "/" + sub }
	return []resolveCase{
		{
			name: "glibc-hwcaps preferred in order, then legacy tls/platform/hwcap, then the directory",
			root: synthRoot{
				synthProg: synthProgram("libh1.so", "libh2.so", "libh3.so", "libh4.so", "libh5.so", "libh6.so", "libh7.so"),
				// best usable glibc-hwcaps wins; x86-64-v4 is not usable on this CPU
				v("glibc-hwcaps/x86-64-v4/libh1.so"): synthLib(),
				v("glibc-hwcaps/x86-64-v3/libh1.so"): synthLib(),
				v("glibc-hwcaps/x86-64-v2/libh1.so"): synthLib(),
				v("tls/libh1.so"):                    synthLib(),
				v("libh1.so"):                        synthLib(),
				// next level down
				v("glibc-hwcaps/x86-64-v4/libh2.so"): synthLib(),
				v("glibc-hwcaps/x86-64-v2/libh2.so"): synthLib(),
				v("haswell/libh2.so"):                synthLib(),
				v("libh2.so"):                        synthLib(),
				// legacy: tls first
				v("glibc-hwcaps/x86-64-v4/libh3.so"): synthLib(),
				v("tls/libh3.so"):                    synthLib(),
				v("haswell/libh3.so"):                synthLib(),
				v("x86_64/libh3.so"):                 synthLib(),
				v("libh3.so"):                        synthLib(),
				// longest combination first
				v("haswell/libh4.so"):        synthLib(),
				v("haswell/x86_64/libh4.so"): synthLib(),
				v("x86_64/libh4.so"):         synthLib(),
				v("libh4.so"):                synthLib(),
				// the hwcap name alone
				v("x86_64/libh5.so"): synthLib(),
				v("libh5.so"):        synthLib(),
				// glibc-hwcaps before every legacy directory
				v("tls/haswell/x86_64/libh6.so"):     synthLib(),
				v("glibc-hwcaps/x86-64-v2/libh6.so"): synthLib(),
				// an unusable level only: the directory itself
				v("glibc-hwcaps/x86-64-v4/libh7.so"): synthLib(),
				"/usr/lib/libh7.so":                  synthLib(),
			},
			want: []objView{
				{v("glibc-hwcaps/x86-64-v3/libh1.so"), HowDefault, ""},
				{v("glibc-hwcaps/x86-64-v2/libh2.so"), HowDefault, ""},
				{v("tls/libh3.so"), HowDefault, ""},
				{v("haswell/x86_64/libh4.so"), HowDefault, ""},
				{v("x86_64/libh5.so"), HowDefault, ""},
				{v("glibc-hwcaps/x86-64-v2/libh6.so"), HowDefault, ""},
				{"/usr/lib/libh7.so", HowDefault, ""},
				rtldView,
			},
			check: func(t *testing.T, res *Result) {
				if d := res.Objects[0].Dir; d != dirL {
					t.Errorf("Dir of a glibc-hwcaps hit = %q, want the search directory %q", d, dirL)
				}
			},
		},
		{
			name: "subdirectories of RPATH directories too",
			root: synthRoot{
				synthProg:                               synthExe(synthOpts{Needed: []string{"liba.so"}, RPath: "/opt/a"}),
				"/opt/a/glibc-hwcaps/x86-64-v2/liba.so": synthLib(),
				"/opt/a/liba.so":                        synthLib(),
			},
			want: []objView{{"/opt/a/glibc-hwcaps/x86-64-v2/liba.so", HowRPATH, synthProg}, rtldView},
		},
	}
}

func TestResolveGlibcCandidates(t *testing.T) { runResolveCases(t, glibcCandidatesCases()) }

func glibcCandidatesCases() []resolveCase {
	return []resolveCase{
		{
			name: "wrong class and wrong machine skipped silently",
			root: synthRoot{
				synthProg:                      synthProgram("libw.so", "libonlywrong.so"),
				dirL + "/libw.so":              synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386},
				dirUL + "/libw.so":             synthOpts{Machine: elf.EM_AARCH64},
				dirLib + "/libw.so":            synthLib(),
				dirL + "/libonlywrong.so":      synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386},
				dirUsrLib + "/libonlywrong.so": synthOpts{Machine: elf.EM_AARCH64},
			},
			want: []objView{{dirLib + "/libw.so", HowDefault, ""}, rtldView},
			wantProblems: []problemView{{Kind: "not found", Name: "libonlywrong.so", NeededBy: synthProg,
				Searched: defaultSearched, WrongClass: []string{dirL + "/libonlywrong.so", dirUsrLib + "/libonlywrong.so"}}},
		},
		{
			name: "a linker script in the search path is fatal",
			root: synthRoot{
				synthProg:            synthProgram("libc.so.6"),
				dirL + "/libc.so.6":  synthText("/* GNU ld script */\nGROUP ( /lib/x86_64-linux-gnu/libc.so.6 )\n"),
				dirUL + "/libc.so.6": synthLib(),
			},
			want:         []objView{rtldView},
			wantProblems: []problemView{wantLoadErr("libc.so.6", synthProg, dirL+"/libc.so.6")},
		},
		{
			name: "a truncated ELF file in the search path is fatal",
			root: synthRoot{
				synthProg:          synthProgram("libt.so"),
				dirL + "/libt.so":  synthText("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00"),
				dirUL + "/libt.so": synthLib(),
			},
			want:         []objView{rtldView},
			wantProblems: []problemView{wantLoadErr("libt.so", synthProg, dirL+"/libt.so")},
		},
		{
			name: "a relocatable object is fatal",
			root: synthRoot{
				synthProg:            synthProgram("librel.so"),
				dirL + "/librel.so":  synthOpts{Type: elf.ET_REL},
				dirUL + "/librel.so": synthLib(),
			},
			want:         []objView{rtldView},
			wantProblems: []problemView{wantLoadErr("librel.so", synthProg, dirL+"/librel.so")},
		},
		{
			name: "a directory in place of a library is fatal",
			root: synthRoot{
				synthProg:            synthProgram("libdir.so"),
				dirL + "/libdir.so":  synthDir{},
				dirUL + "/libdir.so": synthLib(),
			},
			want:         []objView{rtldView},
			wantProblems: []problemView{wantLoadErr("libdir.so", synthProg, dirL+"/libdir.so")},
		},
		{
			// The program's link map is named "" (l_name and l_libname): an empty name is already loaded.
			name: "an empty needed name is the program itself",
			root: synthRoot{
				synthProg:         synthProgram("", "liba.so"),
				dirL + "/liba.so": synthLib(),
			},
			want: []objView{{dirL + "/liba.so", HowDefault, ""}, rtldView},
			check: func(t *testing.T, res *Result) {
				if len(res.Input.Deps) != 2 || res.Input.Deps[0] != res.Input {
					t.Errorf("Input.Deps = %v, want the program itself first", viewObjects(res.Input.Deps))
				}
			},
		},
		{
			name: "fatal problems with a name holding '/'",
			root: synthRoot{
				synthProg:           synthProgram("/opt/libscript.so", "/opt/lib32.so", "/opt/missing.so"),
				"/opt/libscript.so": synthText("INPUT(-lfoo)\n"),
				"/opt/lib32.so":     synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386},
			},
			want: []objView{rtldView},
			wantProblems: []problemView{
				wantLoadErr("/opt/libscript.so", synthProg, "/opt/libscript.so"),
				{Kind: "not found", Name: "/opt/lib32.so", NeededBy: synthProg, Searched: []string{"/opt/lib32.so"}, WrongClass: []string{"/opt/lib32.so"}},
				wantNotFound("/opt/missing.so", synthProg, "/opt/missing.so"),
			},
		},
	}
}

// synthLDCache builds /etc/ld.so.cache for root with the system's ldconfig, run inside it (-r), as a root's
// own ldconfig would build it from the root's /etc/ld.so.conf.
func synthLDCache(t testing.TB, root synthRoot) ([]byte, error) {
	t.Helper()
	ldconfig, err := exec.LookPath("ldconfig")
	if err != nil {
		for _, p := range []string{"/usr/sbin/ldconfig", "/sbin/ldconfig"} {
			if _, err2 := os.Stat(p); err2 == nil {
				ldconfig, err = p, nil
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("no ldconfig: %w", err)
	}
	dir := t.TempDir()
	root.writeDir(t, dir)
	out, err := exec.Command(ldconfig, "-r", dir, "-C", "/etc/ld.so.cache", "-f", "/etc/ld.so.conf", "-X").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("ldconfig -r (needs root for chroot(2)): %v: %s", err, out)
	}
	return os.ReadFile(filepath.Join(dir, "etc/ld.so.cache"))
}

// glibcCacheCases need an ld.so.cache; they are nil when ldconfig cannot build one here.
func glibcCacheCases(t testing.TB) ([]resolveCase, error) {
	root := synthRoot{
		"/etc/ld.so.conf":              synthText("# cached directories\n/opt/cache\n"),
		"/opt/cache":                   synthLink("/srv/cachedir"),
		"/srv/cachedir/libcached.so.1": synthOpts{Soname: "libcached.so.1"},
		"/srv/cachedir/libboth.so.1":   synthOpts{Soname: "libboth.so.1"},
		"/usr/lib/libboth.so.1":        synthOpts{Soname: "libboth.so.1"}, // a default directory ldconfig does not scan
		"/srv/cachedir/librun.so.1":    synthOpts{Soname: "librun.so.1"},
		"/opt/r/librun.so.1":           synthOpts{Soname: "librun.so.1"},
		dirL + "/libsys.so.1":          synthOpts{Soname: "libsys.so.1"}, // a trusted directory: cached
		synthProg:                      synthExe(synthOpts{Needed: []string{"libcached.so.1", "libboth.so.1", "librun.so.1", "libsys.so.1"}, RunPath: "/opt/r"}),
		"/bin/nodeflib":                synthExe(synthOpts{Needed: []string{"libcached.so.1", "libsys.so.1"}, Flags1: uint64(elf.DF_1_NODEFLIB)}),
	}
	cache, err := synthLDCache(t, root)
	if err != nil {
		return nil, err
	}
	root["/etc/ld.so.cache"] = cache
	return []resolveCase{
		{
			name: "ld.so.cache after DT_RUNPATH, before the default directories, its path verbatim",
			root: root,
			want: []objView{
				{"/opt/cache/libcached.so.1", HowCache, ""},
				{"/opt/cache/libboth.so.1", HowCache, ""},
				{"/opt/r/librun.so.1", HowRUNPATH, synthProg},
				{dirL + "/libsys.so.1", HowCache, ""},
				rtldView,
			},
			check: func(t *testing.T, res *Result) {
				if o := res.Objects[0]; o.RealPath != "/srv/cachedir/libcached.so.1" || o.Dir != "/opt/cache" {
					t.Errorf("RealPath %q Dir %q, want /srv/cachedir/libcached.so.1 and /opt/cache", o.RealPath, o.Dir)
				}
				// Only what the cache alone reaches needs it: not a RUNPATH hit, nor a cached default directory.
				for i, want := range []bool{true, true, false, false, false} {
					if o := res.Objects[i]; o.NeedsConfig != want {
						t.Errorf("%s: NeedsConfig = %v, want %v", o.Path, o.NeedsConfig, want)
					}
				}
			},
		},
		{
			name:  "DF_1_NODEFLIB rejects cache entries under the system directories",
			input: "/bin/nodeflib",
			root:  root,
			want: []objView{
				{"/opt/cache/libcached.so.1", HowCache, ""},
				rtldView,
			},
			wantProblems: []problemView{wantNotFound("libsys.so.1", "/bin/nodeflib", "/etc/ld.so.cache")},
		},
	}, nil
}

func TestResolveGlibcCache(t *testing.T) {
	cases, err := glibcCacheCases(t)
	if err != nil {
		t.Skip(err)
	}
	runResolveCases(t, cases)
}

// Offsets in an ELF64 header.
const (
	offClass      = 4
	offData       = 5
	offIdentVer   = 6
	offOSABI      = 7
	offABIVersion = 8
	offPad        = 15
	offMachine    = 18 // low byte, little-endian
	offVersion    = 20 // e_version, low byte
	offPhentsize  = 54 // low byte
)

// TestResolveGlibcOpenVerify pins which candidate files glibc 2.36's open_verify skips (the search goes on)
// and which it refuses fatally, in the order it checks them: magic, class, e_version, machine, then the rest
// of e_ident, e_type and e_phentsize (checked against Debian 12's loader).
func TestResolveGlibcOpenVerify(t *testing.T) { runResolveCases(t, glibcOpenVerifyCases()) }

func glibcOpenVerifyCases() []resolveCase {
	const (
		skipped = "skipped"
		fatal   = "fatal"
		loaded  = "loaded"
	)
	aarch64 := byte(elf.EM_AARCH64)
	tests := []struct {
		name    string
		lib     synthOpts
		outcome string
	}{
		{"bad magic", synthOpts{Patch: map[int]byte{0: 0x7e}}, fatal},
		{"bad magic and other machine", synthOpts{Patch: map[int]byte{0: 0x7e, offMachine: aarch64}}, fatal},
		{"ELFCLASS32", synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386}, skipped},
		{"ELFCLASS32 and big-endian", synthOpts{Patch: map[int]byte{offClass: 1, offData: 2}}, skipped},
		{"other machine", synthOpts{Machine: elf.EM_AARCH64}, skipped},
		{"big-endian s390x", synthOpts{Data: elf.ELFDATA2MSB, Machine: elf.EM_S390}, skipped},
		{"big-endian x86-64 (e_machine read little-endian is not x86-64)", synthOpts{Data: elf.ELFDATA2MSB}, skipped},
		{"EI_DATA big-endian, fields little-endian", synthOpts{Patch: map[int]byte{offData: 2}}, fatal},
		{"EI_DATA big-endian, other machine", synthOpts{Patch: map[int]byte{offData: 2, offMachine: aarch64}}, skipped},
		{"EI_VERSION 2", synthOpts{Patch: map[int]byte{offIdentVer: 2}}, fatal},
		{"EI_VERSION 2, other machine", synthOpts{Patch: map[int]byte{offIdentVer: 2, offMachine: aarch64}}, skipped},
		{"OSABI FreeBSD", synthOpts{Patch: map[int]byte{offOSABI: byte(elf.ELFOSABI_FREEBSD)}}, fatal},
		{"OSABI FreeBSD, other machine", synthOpts{Patch: map[int]byte{offOSABI: byte(elf.ELFOSABI_FREEBSD), offMachine: aarch64}}, skipped},
		{"OSABI GNU", synthOpts{Patch: map[int]byte{offOSABI: byte(elf.ELFOSABI_LINUX)}}, loaded},
		{"OSABI SYSV, ABI version 1", synthOpts{Patch: map[int]byte{offABIVersion: 1}}, fatal},
		{"OSABI GNU, ABI version 3", synthOpts{Patch: map[int]byte{offOSABI: byte(elf.ELFOSABI_LINUX), offABIVersion: 3}}, loaded},
		{"OSABI GNU, ABI version 4", synthOpts{Patch: map[int]byte{offOSABI: byte(elf.ELFOSABI_LINUX), offABIVersion: 4}}, fatal},
		{"nonzero e_ident padding", synthOpts{Patch: map[int]byte{offPad: 1}}, fatal},
		{"nonzero e_ident padding, other machine", synthOpts{Patch: map[int]byte{offPad: 1, offMachine: aarch64}}, skipped},
		{"e_version 2", synthOpts{Patch: map[int]byte{offVersion: 2}}, fatal},
		{"e_version 2, other machine", synthOpts{Patch: map[int]byte{offVersion: 2, offMachine: aarch64}}, fatal},
		{"e_version 2, ELFCLASS32", synthOpts{Patch: map[int]byte{offVersion: 2, offClass: 1}}, skipped},
		{"ET_REL", synthOpts{Type: elf.ET_REL}, fatal},
		{"ET_REL, other machine", synthOpts{Type: elf.ET_REL, Machine: elf.EM_AARCH64}, skipped},
		{"ET_EXEC", synthOpts{Type: elf.ET_EXEC}, fatal},
		{"ET_EXEC, other machine", synthOpts{Type: elf.ET_EXEC, Machine: elf.EM_AARCH64}, skipped},
		{"PIE (DF_1_PIE)", synthOpts{Flags1: uint64(elf.DF_1_PIE)}, fatal},
		{"e_phentsize 48", synthOpts{Patch: map[int]byte{offPhentsize: 48}}, fatal},
		{"e_phentsize 48, other machine", synthOpts{Patch: map[int]byte{offPhentsize: 48, offMachine: aarch64}}, skipped},
		{"file too short", synthOpts{Patch: map[int]byte{}}, fatal}, // replaced by 40 bytes below
		{"ET_DYN without PT_DYNAMIC", synthOpts{Static: true}, fatal},
	}
	var cases []resolveCase
	for _, tc := range tests {
		var lib any = tc.lib
		if tc.name == "file too short" {
			lib = synthText("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00\x01\x00\x00\x00")
		}
		c := resolveCase{
			name: tc.name + " is " + tc.outcome,
			root: synthRoot{
				synthProg:          synthProgram("libv.so"),
				dirL + "/libv.so":  lib,
				dirUL + "/libv.so": synthOpts{},
			},
		}
		switch tc.outcome {
		case skipped:
			c.want = []objView{{dirUL + "/libv.so", HowDefault, ""}, rtldView}
		case loaded:
			c.want = []objView{{dirL + "/libv.so", HowDefault, ""}, rtldView}
		case fatal:
			c.want = []objView{rtldView}
			c.wantProblems = []problemView{wantLoadErr("libv.so", synthProg, dirL+"/libv.so")}
		}
		cases = append(cases, c)
	}
	return cases
}

func TestResolveSymlinks(t *testing.T) { runResolveCases(t, symlinksCases()) }

func symlinksCases() []resolveCase {
	return []resolveCase{
		{
			name: "symlink chains recorded in Links",
			root: synthRoot{
				synthProg:                 synthProgram("libz.so.1"),
				"/lib":                    synthLink("usr/lib"),
				dirUL + "/libz.so.1":      synthLink("libz.so.1.2.13"),
				dirUL + "/libz.so.1.2.13": synthLink("/opt/z/libz-real.so"),
				"/opt/z/libz-real.so":     synthLib(),
			},
			want: []objView{{dirL + "/libz.so.1", HowDefault, ""}, rtldView},
			check: func(t *testing.T, res *Result) {
				o := res.Objects[0]
				if o.RealPath != "/opt/z/libz-real.so" {
					t.Errorf("RealPath = %q, want /opt/z/libz-real.so", o.RealPath)
				}
				want := []Link{
					{Path: "/lib", Target: "usr/lib"},
					{Path: dirUL + "/libz.so.1", Target: "libz.so.1.2.13"},
					{Path: dirUL + "/libz.so.1.2.13", Target: "/opt/z/libz-real.so"},
				}
				if diff := cmp.Diff(want, o.Links); diff != "" {
					t.Errorf("Links (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "absolute and ../.. symlinks never leave the root",
			root: synthRoot{
				synthProg:            synthProgram("libesc.so", "libabs.so", "/lib/x86_64-linux-gnu/x/libetc.so"),
				dirL + "/libesc.so":  synthLink("../../../../../../opt/esc/libesc.so"),
				dirL + "/libabs.so":  synthLink("/../../../opt/esc/libabs.so"),
				dirL + "/x":          synthLink("/../../../../etc"),
				"/opt/esc/libesc.so": synthLib(),
				"/opt/esc/libabs.so": synthLib(),
				"/etc/libetc.so":     synthLib(),
			},
			want: []objView{
				{dirL + "/libesc.so", HowDefault, ""},
				{dirL + "/libabs.so", HowDefault, ""},
				{dirL + "/x/libetc.so", HowPath, ""},
				rtldView,
			},
			check: func(t *testing.T, res *Result) {
				var got []string
				for _, o := range res.Objects {
					got = append(got, o.RealPath)
				}
				want := []string{"/opt/esc/libesc.so", "/opt/esc/libabs.so", "/etc/libetc.so", synthRTLDPath}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("RealPaths (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "a symlink loop fails the name and ends its search list",
			root: synthRoot{
				synthProg:             synthProgram("libloop.so", "libok.so"),
				dirL + "/libloop.so":  synthLink("libloop2.so"),
				dirL + "/libloop2.so": synthLink("libloop.so"),
				dirUL + "/libloop.so": synthLib(), // glibc's open_path gives up the list on ELOOP
				dirL + "/libok.so":    synthLib(),
			},
			want:         []objView{{dirL + "/libok.so", HowDefault, ""}, rtldView},
			wantProblems: []problemView{wantNotFound("libloop.so", synthProg, dirL+" (default)")},
		},
		{
			name: "a symlink loop ends only its own search list",
			root: synthRoot{
				synthProg:         synthExe(synthOpts{Needed: []string{"libl.so"}, RPath: "/opt/a:/opt/b"}),
				"/opt/a/libl.so":  synthLink("libl.so"),
				"/opt/b/libl.so":  synthLib(),
				dirL + "/libl.so": synthLib(),
			},
			want: []objView{{dirL + "/libl.so", HowDefault, ""}, rtldView},
		},
		{
			name: "a symlink loop in a glibc-hwcaps subdirectory does not hide the directory's own file",
			root: synthRoot{
				synthProg: synthProgram("libhl.so"),
				dirL + "/glibc-hwcaps/x86-64-v3/libhl.so": synthLink("libhl.so"),
				dirL + "/libhl.so":                        synthLib(),
			},
			want: []objView{{dirL + "/libhl.so", HowDefault, ""}, rtldView},
		},
		{
			name: "a search directory that is a regular file is skipped",
			root: synthRoot{
				synthProg:          synthExe(synthOpts{Needed: []string{"libf.so"}, RPath: "/opt/file:/opt/lib"}),
				"/opt/file":        synthText("not a directory\n"),
				"/opt/lib/libf.so": synthLib(),
				dirL + "/libf.so":  synthLib(),
			},
			want: []objView{{"/opt/lib/libf.so", HowRPATH, synthProg}, rtldView},
		},
	}
}

// TestResolveNewDirConfined resolves inside an on-disk root whose symbolic links point at host paths: every
// one must be read inside the root.
func TestResolveNewDirConfined(t *testing.T) {
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Skip("no /etc/passwd on this host to escape to")
	}
	dir := t.TempDir()
	synthRoot{
		synthRTLDPath:       synthRTLD(),
		synthProg:           synthProgram("libpw.so", "librel.so", "/lib/x86_64-linux-gnu/etc/passwd"),
		"/bin/hostlink":     synthLink("/bin/true"),
		dirL + "/libpw.so":  synthLink("/etc/passwd"),
		dirL + "/librel.so": synthLink("../../../../../../../../../etc/passwd"),
		dirL + "/etc":       synthLink("/../../../../etc"),
	}.writeDir(t, dir)
	r, err := NewDir(dir, WithCPU(synthCPU))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("absent inside the root", func(t *testing.T) {
		res := resolveWithin(t, r, synthProg)
		if res == nil {
			return
		}
		if diff := cmp.Diff([]objView{rtldView}, viewObjects(res.Objects)); diff != "" {
			t.Errorf("Objects (-want +got):\n%s", diff)
		}
		want := []problemView{
			wantNotFound("libpw.so", synthProg, defaultSearched...),
			wantNotFound("librel.so", synthProg, defaultSearched...),
			wantNotFound("/lib/x86_64-linux-gnu/etc/passwd", synthProg, "/lib/x86_64-linux-gnu/etc/passwd"),
		}
		if diff := cmp.Diff(want, viewProblems(t, res.Problems)); diff != "" {
			t.Errorf("Problems (-want +got) (a LoadError means the host's /etc/passwd was read):\n%s", diff)
		}
	})

	t.Run("input symlink to a host path", func(t *testing.T) {
		_, err := r.Resolve("/bin/hostlink")
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Resolve(/bin/hostlink) = %v, want fs.ErrNotExist (the root has no /bin/true)", err)
		}
	})

	t.Run("present inside the root", func(t *testing.T) {
		if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), synthELF(t, synthLib()), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := NewDir(dir, WithCPU(synthCPU)) // a fresh resolver: directory listings are cached
		if err != nil {
			t.Fatal(err)
		}
		res := resolveWithin(t, r, synthProg)
		if res == nil {
			return
		}
		// libpw.so, and /lib/x86_64-linux-gnu/etc/passwd, are both the root's /etc/passwd: one object.
		want := []objView{{dirL + "/libpw.so", HowDefault, ""}, rtldView}
		if diff := cmp.Diff(want, viewObjects(res.Objects)); diff != "" {
			t.Errorf("Objects (-want +got):\n%s", diff)
		}
		if pw := res.Objects[0]; pw.RealPath != "/etc/passwd" || len(res.Input.Deps) != 3 || res.Input.Deps[2] != pw {
			t.Errorf("libpw.so RealPath = %q, Input.Deps = %v; want /etc/passwd, reached by libpw.so and by path", pw.RealPath, viewObjects(res.Input.Deps))
		}
		if len(res.Problems) != 0 {
			t.Errorf("Problems: %v", res.Problems)
		}
	})
}

func TestResolveMusl(t *testing.T) { runResolveCases(t, muslCases()) }

func muslCases() []resolveCase {
	mprog := func(o synthOpts) synthOpts { return synthMuslExe(o) }
	ldso := objView{synthMuslPath, HowInterp, ""}
	muslRoot := func(r synthRoot) synthRoot {
		r[synthMuslPath] = synthOpts{Soname: "libc.so"}
		return r
	}
	return []resolveCase{
		{
			name: "libc names resolve to the interpreter, where first needed",
			root: muslRoot(synthRoot{
				synthProg:            mprog(synthOpts{Needed: []string{"libfoo.so", "libc.so", "libpthread.so.0", "libm.so.6", synthMuslPath}}),
				"/usr/lib/libfoo.so": synthLib("libc.musl-x86_64.so.1", "libbar.so"),
				"/usr/lib/libbar.so": synthLib(),
				"/usr/lib/libc.so":   synthText("/* linker script */"), // never opened
			}),
			wantFlavor: FlavorMusl,
			want: []objView{
				{"/usr/lib/libfoo.so", HowMuslPath, ""},
				ldso,
				{"/usr/lib/libbar.so", HowMuslPath, ""},
			},
			check: func(t *testing.T, res *Result) {
				for i, d := range res.Input.Deps[1:] {
					if d != res.Interp {
						t.Errorf("Input.Deps[%d] = %v, want the interpreter", i+1, d)
					}
				}
			},
		},
		{
			name: "default path /lib:/usr/local/lib:/usr/lib without ld-musl-x86_64.path",
			root: muslRoot(synthRoot{
				synthProg:                mprog(synthOpts{Needed: []string{"liba.so", "libb.so", "libd.so"}}),
				"/lib/liba.so":           synthLib(),
				"/usr/local/lib/liba.so": synthLib(),
				"/usr/local/lib/libb.so": synthLib(),
				"/usr/lib/libb.so":       synthLib(),
				"/usr/lib/libd.so":       synthLib(),
				dirL + "/libd.so":        synthLib(),
			}),
			wantFlavor: FlavorMusl,
			want: []objView{
				{"/lib/liba.so", HowMuslPath, ""},
				{"/usr/local/lib/libb.so", HowMuslPath, ""},
				{"/usr/lib/libd.so", HowMuslPath, ""},
				ldso,
			},
		},
		{
			name: "system path from /etc/ld-musl-x86_64.path",
			root: muslRoot(synthRoot{
				synthProg:                  mprog(synthOpts{Needed: []string{"liba.so", "libonlylib.so"}}),
				"/etc/ld-musl-x86_64.path": synthText("/opt/sys1\n/opt/sys2:/usr/lib\n"),
				"/opt/sys2/liba.so":        synthLib(),
				"/lib/liba.so":             synthLib(),
				"/lib/libonlylib.so":       synthLib(),
			}),
			wantFlavor: FlavorMusl,
			want:       []objView{{"/opt/sys2/liba.so", HowMuslPath, ""}, ldso},
			wantProblems: []problemView{wantNotFound("libonlylib.so", synthProg,
				"/opt/sys1 (musl path)", "/opt/sys2 (musl path)", "/usr/lib (musl path)")},
		},
		{
			name: "LD_LIBRARY_PATH first",
			opts: []Option{WithLibraryPath("/opt/llp")},
			root: muslRoot(synthRoot{
				synthProg:          mprog(synthOpts{Needed: []string{"liba.so"}, RPath: "/opt/rp"}),
				"/opt/rp/liba.so":  synthLib(),
				"/opt/llp/liba.so": synthLib(),
			}),
			wantFlavor: FlavorMusl,
			want:       []objView{{"/opt/llp/liba.so", HowLibraryPath, ""}, ldso},
		},
		{
			name: "DT_RUNPATH inherited",
			root: muslRoot(synthRoot{
				synthProg:        mprog(synthOpts{Needed: []string{"liba.so"}, RunPath: "/opt/r"}),
				"/opt/r/liba.so": synthLib("libb.so"),
				"/opt/r/libb.so": synthLib(),
				"/lib/libb.so":   synthLib(),
			}),
			wantFlavor: FlavorMusl,
			want: []objView{
				{"/opt/r/liba.so", HowRUNPATH, synthProg},
				{"/opt/r/libb.so", HowRUNPATH, synthProg},
				ldso,
			},
		},
		{
			name:  "$ORIGIN of the program is its real directory; a library's is the path it was opened by",
			input: "/usr/bin/prog",
			root: muslRoot(synthRoot{
				"/usr/bin/prog":            synthLink("/opt/app/bin/prog"),
				"/opt/app/bin/prog":        mprog(synthOpts{Needed: []string{"liba.so"}, RPath: "$ORIGIN/../lib"}),
				"/opt/app/lib/liba.so":     synthOpts{Needed: []string{"libb.so"}, RunPath: "${ORIGIN}/sub"},
				"/opt/app/lib/sub/libb.so": synthLib(),
			}),
			wantFlavor: FlavorMusl,
			want: []objView{
				{"/opt/app/bin/../lib/liba.so", HowRPATH, "/usr/bin/prog"},
				{"/opt/app/bin/../lib/sub/libb.so", HowRUNPATH, "/opt/app/bin/../lib/liba.so"},
				ldso,
			},
		},
		{
			name: "a DST other than $ORIGIN disables the whole rpath",
			root: muslRoot(synthRoot{
				synthProg:        mprog(synthOpts{Needed: []string{"liba.so"}, RPath: "/opt/r:/opt/$LIB"}),
				"/opt/r/liba.so": synthLib(),
				"/lib/liba.so":   synthLib(),
			}),
			wantFlavor: FlavorMusl,
			want:       []objView{{"/lib/liba.so", HowMuslPath, ""}, ldso},
		},
		{
			name: "a library loaded by path is found again by a search for the same file",
			opts: []Option{WithLibraryPath("/opt/x")},
			root: muslRoot(synthRoot{
				synthProg:          mprog(synthOpts{Needed: []string{"/opt/x/libq.so", "libr.so"}}),
				"/opt/x/libq.so":   synthLib(),
				"/opt/x/libr.so":   synthLib("libq.so"),
				"/usr/lib/libq.so": synthLib(),
			}),
			wantFlavor: FlavorMusl,
			want: []objView{
				{"/opt/x/libq.so", HowPath, ""},
				{"/opt/x/libr.so", HowLibraryPath, ""},
				ldso,
			},
		},
		{
			name: "no class or machine skipping",
			root: muslRoot(synthRoot{
				synthProg:          mprog(synthOpts{Needed: []string{"libw.so"}}),
				"/lib/libw.so":     synthOpts{Class: elf.ELFCLASS32, Machine: elf.EM_386},
				"/usr/lib/libw.so": synthLib(),
			}),
			wantFlavor:   FlavorMusl,
			want:         []objView{ldso},
			wantProblems: []problemView{wantLoadErr("libw.so", synthProg, "/lib/libw.so")},
		},
		{
			name: "a symlink loop stops the whole search",
			root: muslRoot(synthRoot{
				synthProg:          mprog(synthOpts{Needed: []string{"libl.so"}}),
				"/lib/libl.so":     synthLink("libl.so"),
				"/usr/lib/libl.so": synthLib(),
			}),
			wantFlavor:   FlavorMusl,
			want:         []objView{ldso},
			wantProblems: []problemView{wantNotFound("libl.so", synthProg, "/lib (musl path)")},
		},
	}
}

// TestResolveInputErrors: an input that cannot be used is an error naming it, never a panic or a hang.
func TestResolveInputErrors(t *testing.T) {
	full := synthELF(t, synthProgram("liba.so"))
	root := synthRoot{
		synthRTLDPath: synthRTLD(),
		"/bin/dir":    synthDir{},
		"/bin/text":   synthText("#!/bin/sh\necho hi\n"),
		"/bin/empty":  []byte{},
		"/bin/trunc":  full[:40],
		"/bin/phdrs":  full[:100], // header fine, program headers cut
		"/bin/loop":   synthLink("loop"),
		"/bin/dangle": synthLink("/nowhere/prog"),
		"/bin/notdir": synthText("x"),
	}
	r, err := New(root.mapFS(t), WithCPU(synthCPU))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		input string
		is    error // nil: any error
	}{
		{"/bin/dir", nil},
		{"/bin/text", ErrNotELF},
		{"/bin/empty", nil},
		{"/bin/trunc", ErrBadELF},
		{"/bin/phdrs", ErrBadELF},
		{"/bin/loop", syscall.ELOOP},
		{"/bin/dangle", fs.ErrNotExist},
		{"/bin/missing", fs.ErrNotExist},
		{"/bin/notdir/prog", syscall.ENOTDIR},
	}
	for _, tc := range tests {
		t.Run(tc.input, func(t *testing.T) {
			var res *Result
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("Resolve(%q) panicked: %v", tc.input, p)
					}
				}()
				res, err = r.Resolve(tc.input)
			}()
			if err == nil {
				t.Fatalf("Resolve(%q) = %+v, want an error", tc.input, res)
			}
			if !strings.Contains(err.Error(), tc.input) {
				t.Errorf("error %q does not name %s", err, tc.input)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
		})
	}
}

// TestResolveNotELFKind: a fatal candidate keeps its kind for callers that branch on it.
func TestResolveNotELFKind(t *testing.T) {
	root := synthRoot{
		synthRTLDPath:       synthRTLD(),
		synthProg:           synthProgram("libc.so.6", "libt.so"),
		dirL + "/libc.so.6": synthText("/* GNU ld script */\n"),
		dirL + "/libt.so":   []byte("\x7fELF\x02\x01\x01"),
	}
	r, err := New(root.mapFS(t), WithCPU(synthCPU))
	if err != nil {
		t.Fatal(err)
	}
	res := resolveWithin(t, r, synthProg)
	if res == nil {
		return
	}
	if len(res.Problems) != 2 {
		t.Fatalf("Problems = %v, want two", res.Problems)
	}
	for i, want := range []error{ErrNotELF, ErrBadELF} {
		if !errors.Is(res.Problems[i], want) {
			t.Errorf("Problems[%d] = %v, want errors.Is(_, %v)", i, res.Problems[i], want)
		}
	}
}

// TestResolveSynthMatchesLoader checks the synthetic glibc cases against the real loader: each case's tree is
// written to disk with the host's ld.so in place of the fake one, and the loader runs inside it as ldd runs it
// (chroot, the case's working directory, LD_TRACE_LOADED_OBJECTS=1, `ld.so [--library-path LLP] PROGRAM`).
// The program is named by its real path, so that its $ORIGIN is what the kernel would give it without /proc.
// The resolver runs on the same tree with the host's CPU. The cases that fail here are the resolver's bugs.
func TestResolveSynthMatchesLoader(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for chroot(2)")
	}
	rtld, err := os.ReadFile(synthRTLDPath)
	if err != nil {
		t.Skipf("no glibc loader on this host: %v", err)
	}
	var cases []resolveCase
	for _, f := range []func() []resolveCase{glibcOrderCases, glibcRPathCases, glibcDSTCases, glibcSubdirsCases,
		glibcCandidatesCases, glibcOpenVerifyCases, symlinksCases} {
		cases = append(cases, f()...)
	}
	if cc, err := glibcCacheCases(t); err == nil {
		cases = append(cases, cc...)
	} else {
		t.Logf("leaving the ld.so.cache cases out: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var o options
			for _, opt := range append([]Option{WithWorkDir("/")}, tc.opts...) {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			input := tc.input
			if input == "" {
				input = synthProg
			}
			root := synthRoot{synthRTLDPath: synthRTLD()}
			for p, v := range tc.root {
				root[p] = v
			}
			if v, ok := root[synthRTLDPath]; !ok || v == nil {
				t.Skip("case without an interpreter")
			}
			var rtlds []string // the fake ld.so, wherever the case puts it, becomes the real one
			for p, v := range root {
				if o, ok := v.(synthOpts); ok && o.Soname == "ld-linux-x86-64.so.2" && string(o.Extra) == synthSystemDirs {
					root[p] = rtld
					rtlds = append(rtlds, p)
				}
			}
			dir := t.TempDir()
			root.writeDir(t, dir)
			for _, p := range rtlds {
				if err := os.Chmod(filepath.Join(dir, p), 0o755); err != nil {
					t.Fatal(err)
				}
			}

			r, err := NewDir(dir, append([]Option{WithCPU(HostCPU)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			res := resolveWithin(t, r, input)
			if res == nil {
				return
			}
			if res.Input.File.Interp != synthRTLDPath {
				t.Skip("the input is no program run through ld.so")
			}

			var args []string
			if o.hasLibraryPath {
				args = append(args, "--library-path", o.libraryPath)
			}
			cmd := exec.Command(synthRTLDPath, append(args, res.Input.RealPath)...)
			cmd.Dir = o.workDir
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
			cmd.Env = []string{"LD_TRACE_LOADED_OBJECTS=1"} // as ldd: missing libraries are listed, not fatal
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			runErr := cmd.Run()

			// The loader's view: found paths in load order, names not found.
			var loaderPaths, loaderMissing []string
			for _, line := range strings.Split(stdout.String(), "\n") {
				line = strings.TrimSpace(line)
				if line == "" || strings.HasPrefix(line, "linux-vdso") {
					continue
				}
				name, rest, arrow := strings.Cut(line, " => ")
				if !arrow {
					rest = name
				}
				if rest == "not found" {
					loaderMissing = append(loaderMissing, name)
					continue
				}
				p, _, _ := strings.Cut(rest, " (0x")
				if !strings.HasPrefix(p, "/") {
					p = strings.TrimSuffix(o.workDir, "/") + "/" + p
				}
				loaderPaths = append(loaderPaths, p)
			}

			// The resolver's: ld.so lists itself only when something needs it.
			needed := false
			for _, obj := range res.Objects {
				for _, d := range obj.Deps {
					needed = needed || d == res.Interp
				}
			}
			var ourPaths, ourMissing []string
			for _, obj := range res.Objects {
				if obj != res.Interp || needed {
					ourPaths = append(ourPaths, obj.Path)
				}
			}
			var fatal []*LoadError
			for _, p := range res.Problems {
				var nf *NotFoundError
				var le *LoadError
				if errors.As(p, &nf) {
					ourMissing = append(ourMissing, nf.Name)
				} else if errors.As(p, &le) {
					fatal = append(fatal, le)
				}
			}

			if runErr != nil {
				msg := stderr.String()
				if len(fatal) == 0 || !strings.Contains(msg, fatal[0].Name+": ") && !strings.Contains(msg, path.Base(fatal[0].Path)+": ") {
					t.Errorf("the loader fails (%v): %s\nthe resolver's fatal problems: %v", runErr, msg, fatal)
				}
				return
			}
			if len(fatal) > 0 {
				t.Errorf("the resolver reports %v, the loader loads:\n%s", fatal, stdout.String())
			}
			if diff := cmp.Diff(loaderPaths, ourPaths); diff != "" {
				t.Errorf("paths (-loader +resolver):\n%s\nloader output:\n%s", diff, stdout.String())
			}
			if diff := cmp.Diff(loaderMissing, ourMissing); diff != "" {
				t.Errorf("not found (-loader +resolver):\n%s", diff)
			}
		})
	}
}

// TestResolveSynthMuslMatchesLoader does for the musl cases what TestResolveSynthMatchesLoader does for glibc,
// with the host's musl loader in ldd mode (--list).
func TestResolveSynthMuslMatchesLoader(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root for chroot(2)")
	}
	ldso, err := os.ReadFile(synthMuslPath)
	if err != nil {
		t.Skipf("no musl loader on this host: %v", err)
	}
	for _, tc := range muslCases() {
		t.Run(tc.name, func(t *testing.T) {
			var o options
			for _, opt := range append([]Option{WithWorkDir("/")}, tc.opts...) {
				if err := opt(&o); err != nil {
					t.Fatal(err)
				}
			}
			input := tc.input
			if input == "" {
				input = synthProg
			}
			root := synthRoot{}
			for p, v := range tc.root {
				root[p] = v
			}
			root[synthMuslPath] = ldso
			dir := t.TempDir()
			root.writeDir(t, dir)
			if err := os.Chmod(filepath.Join(dir, synthMuslPath), 0o755); err != nil {
				t.Fatal(err)
			}
			r, err := NewDir(dir, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			res := resolveWithin(t, r, input)
			if res == nil {
				return
			}

			args := []string{"--list"}
			if o.hasLibraryPath {
				args = append(args, "--library-path="+o.libraryPath)
			}
			cmd := exec.Command(synthMuslPath, append(args, res.Input.RealPath)...)
			cmd.Dir = o.workDir
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
			cmd.Env = []string{}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			_ = cmd.Run() // exits 127 when a library fails; stderr says which, and the output is compared below

			// musl prints itself first, then each library as it loads it, libc names once each.
			var loaderPaths, loaderFailed []string
			for _, line := range strings.Split(stdout.String(), "\n") {
				line = strings.TrimSpace(line)
				_, rest, arrow := strings.Cut(line, " => ")
				if !arrow {
					continue
				}
				if p, _, _ := strings.Cut(rest, " (0x"); p != synthMuslPath {
					loaderPaths = append(loaderPaths, p)
				}
			}
			for _, line := range strings.Split(stderr.String(), "\n") {
				if name, ok := strings.CutPrefix(line, "Error loading shared library "); ok {
					name, _, _ = strings.Cut(name, ": ")
					loaderFailed = append(loaderFailed, name)
				}
			}
			var ourPaths, ourFailed []string
			for _, obj := range res.Objects {
				if obj != res.Interp {
					ourPaths = append(ourPaths, obj.Path)
				}
			}
			for _, p := range res.Problems {
				var nf *NotFoundError
				var le *LoadError
				switch {
				case errors.As(p, &nf):
					ourFailed = append(ourFailed, nf.Name)
				case errors.As(p, &le):
					ourFailed = append(ourFailed, le.Name)
				}
			}
			if diff := cmp.Diff(loaderPaths, ourPaths); diff != "" {
				t.Errorf("paths (-loader +resolver):\n%s\nloader output:\n%s%s", diff, stdout.String(), stderr.String())
			}
			if diff := cmp.Diff(loaderFailed, ourFailed); diff != "" {
				t.Errorf("failed names (-loader +resolver):\n%s\nloader output:\n%s%s", diff, stdout.String(), stderr.String())
			}
		})
	}
}

// TestResolveViaOrigin: an object found through a directory that $ORIGIN of Via expanded to says so (it
// moves with Via), under glibc and musl; one found through a literal RUNPATH directory does not.
func TestResolveViaOrigin(t *testing.T) {
	check := func(t *testing.T, res *Result) {
		got := map[string]bool{}
		for _, o := range res.Objects {
			if o.How == HowRUNPATH {
				got[o.Path] = o.ViaOrigin
			}
		}
		want := map[string]bool{"/app/bin/../lib/liba.so.1": true, "/opt/lib/libb.so.1": false, "/app/bin/../lib/../lib2/libd.so.1": true}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("ViaOrigin by path (-want +got):\n%s", diff)
		}
	}
	root := func(prog synthOpts) synthRoot {
		return synthRoot{
			"/app/bin/prog":       prog,
			"/app/lib/liba.so.1":  synthOpts{Soname: "liba.so.1", Needed: []string{"libd.so.1"}, RunPath: "${ORIGIN}/../lib2"},
			"/app/lib2/libd.so.1": synthOpts{Soname: "libd.so.1"},
			"/opt/lib/libb.so.1":  synthOpts{Soname: "libb.so.1"},
			synthMuslPath:         synthOpts{Soname: "libc.so"},
		}
	}
	needed := []string{"liba.so.1", "libb.so.1"}
	ldsoMusl := objView{synthMuslPath, HowInterp, ""}
	runResolveCases(t, []resolveCase{
		{name: "glibc", root: root(synthExe(synthOpts{Needed: needed, RunPath: "$ORIGIN/../lib:/opt/lib"})), input: "/app/bin/prog", check: check, ownProblems: true,
			want: []objView{{"/app/bin/../lib/liba.so.1", HowRUNPATH, "/app/bin/prog"}, {"/opt/lib/libb.so.1", HowRUNPATH, "/app/bin/prog"}, {"/app/bin/../lib/../lib2/libd.so.1", HowRUNPATH, "/app/bin/../lib/liba.so.1"}, rtldView}},
		{name: "musl", root: root(synthMuslExe(synthOpts{Needed: needed, RunPath: "$ORIGIN/../lib:/opt/lib"})), input: "/app/bin/prog", check: check, ownProblems: true, wantFlavor: FlavorMusl,
			want: []objView{{"/app/bin/../lib/liba.so.1", HowRUNPATH, "/app/bin/prog"}, {"/opt/lib/libb.so.1", HowRUNPATH, "/app/bin/prog"}, {"/app/bin/../lib/../lib2/libd.so.1", HowRUNPATH, "/app/bin/../lib/liba.so.1"}, ldsoMusl}},
	})
}
