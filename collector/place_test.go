package collector

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/scratchpack/scratchpack/elfdeps"
)

// TestPlacement: a program placed at DEST is there only, what it finds through $ORIGIN moves with it (kept
// where the loader will open it from the new $ORIGIN, through the image's own directory links), the rest of
// the closure stays at its paths, and a placed #! script keeps its interpreter where it is.
func TestPlacement(t *testing.T) {
	build := fixtureBuild(t)
	origin := filepath.Join(build, "origin")
	dir := t.TempDir()
	script := filepath.Join(dir, "run.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	usrLib := "/lib"
	if l, err := os.Readlink("/lib"); err == nil && l == "usr/lib" {
		usrLib = "/usr/lib" // merged /usr: the image's /lib is the root's link
	}
	for _, tc := range []struct {
		name, file, dest string
		want             []string // files the tree must hold
		notUnder         []string // prefixes no entry may have
		entrypointFile   string   // the file the first program's image path leads to
	}{
		{
			name: "beside its libraries", file: filepath.Join(origin, "real/bin/prog"), dest: "/app/bin/prog",
			want:     []string{"/app/bin/prog", "/app/lib/libo.so.1", "/app/lib2/libo2.so.1", "/lib/x86_64-linux-gnu/libc.so.6"},
			notUnder: []string{build},
		},
		{
			name: "through a symlink to it", file: filepath.Join(origin, "link/prog"), dest: "/opt/p/bin/prog",
			want:     []string{"/opt/p/bin/prog", "/opt/p/lib/libo.so.1", "/opt/p/lib2/libo2.so.1"},
			notUnder: []string{build},
		},
		{
			name: "at the top: $ORIGIN/.. is /, and /lib is the image's link", file: filepath.Join(origin, "real/bin/prog"), dest: "/prog",
			want:     []string{"/prog", usrLib + "/libo.so.1", filepath.Dir(usrLib) + "/lib2/libo2.so.1"},
			notUnder: []string{build},
		},
		{
			name: "own path", file: filepath.Join(origin, "real/bin/prog"), dest: "",
			want: []string{filepath.Join(origin, "real/bin/prog"), filepath.Join(origin, "real/lib/libo.so.1")},
		},
		{
			name: "a script", file: script, dest: "/usr/local/bin/run",
			want:     []string{"/usr/local/bin/run", "/bin/sh"},
			notUnder: []string{dir},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlanner(hostRoot(t), WithCPUs(elfdeps.HostCPU))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AddProgramAt(tc.file, tc.dest); err != nil {
				t.Fatal(err)
			}
			if len(p.Problems) > 0 {
				t.Fatal(p.Problems)
			}
			tr := p.Tree()
			for _, w := range tc.want {
				if e := tr.Resolve(w); e == nil || e.Kind != KindFile {
					t.Errorf("%s: %+v, want a file", w, e)
				}
			}
			for _, e := range tr.Entries() {
				for _, pre := range tc.notUnder {
					if e.Path == pre || strings.HasPrefix(e.Path, pre+"/") {
						t.Errorf("%s is in the image: a placed program must not bring its root path", e.Path)
					}
				}
			}
			want := tc.dest
			if want == "" {
				want = tc.file
			}
			if diff := cmp.Diff([]string{want}, p.programImages); diff != "" {
				t.Errorf("program image paths (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPlacedAddOfAnELF: --add SRC:DEST of an ELF file puts it at DEST once, with its closure.
func TestPlacedAddOfAnELF(t *testing.T) {
	build := fixtureBuild(t)
	p, err := NewPlanner(hostRoot(t), WithCPUs(elfdeps.HostCPU))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(build, "origin/real/bin/prog")
	if err := p.AddHostPath(src, "/svc", Origin{Kind: OriginAdded, Reason: "--add"}); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range p.Tree().Entries() {
		if e.Kind == KindFile && (e.Path == "/svc" || strings.HasPrefix(e.Path, build)) {
			files = append(files, e.Path)
		}
	}
	if diff := cmp.Diff([]string{"/svc"}, files); diff != "" {
		t.Errorf("copies of the program (-want +got):\n%s", diff)
	}
	if e := p.Tree().Resolve("/lib/libo.so.1"); e == nil || e.Kind != KindFile {
		t.Errorf("libo.so.1, found through $ORIGIN/../lib, did not move with /svc: %+v", e)
	}
}

// TestPlacementWarnings: a program that finds its data relative to its own location (python3 computes its
// prefix from its path) is named in a warning when placed elsewhere; one that does not, or one left at its
// path, is not.
func TestPlacementWarnings(t *testing.T) {
	build := fixtureBuild(t)
	python, err := filepath.EvalSymlinks("/usr/bin/python3")
	if err != nil {
		t.Skip("no python3 on this machine")
	}
	for _, tc := range []struct {
		file, dest string
		warn       bool
	}{
		{python, "/py/bin/python3", true},
		{python, "", false},
		{filepath.Join(build, "origin/real/bin/prog"), "/app/prog", false},
	} {
		p, err := NewPlanner(hostRoot(t), WithCPUs(elfdeps.HostCPU))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AddProgramAt(tc.file, tc.dest); err != nil {
			t.Fatal(err)
		}
		if got := len(p.Warnings) > 0; got != tc.warn {
			t.Errorf("%s at %q: warnings %q, want a warning %v", tc.file, tc.dest, p.Warnings, tc.warn)
		}
		if tc.warn && !strings.Contains(strings.Join(p.Warnings, " "), "PYTHONHOME") {
			t.Errorf("the warning does not say why: %q", p.Warnings)
		}
	}
}
