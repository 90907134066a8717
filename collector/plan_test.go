package collector

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scratchpack/scratchpack/elfdeps"
)

var fixturesOnce sync.Once

// fixtureBuild builds the C fixtures (make -C fixtures) and returns their build directory.
func fixtureBuild(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("gcc is not installed: the fixtures cannot be built")
	}
	dir, err := filepath.Abs("../fixtures")
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	fixturesOnce.Do(func() { out, err = exec.Command("make", "-s", "-C", dir).CombinedOutput() })
	if err != nil {
		t.Fatalf("make -C fixtures: %v\n%s", err, out)
	}
	return filepath.Join(dir, "build")
}

func TestPlanKeepsEveryLinkOnTheWay(t *testing.T) {
	p, err := NewPlanner(hostRoot(t), WithCPUs(elfdeps.HostCPU))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddProgram("/bin/ls"); err != nil {
		t.Fatal(err)
	}
	if len(p.Problems) > 0 {
		t.Fatal(p.Problems)
	}
	tr := p.Tree()
	// Every path the loader opens must resolve inside the tree, link by link, exactly as on the host.
	r, err := elfdeps.NewDir("/", elfdeps.WithCPU(elfdeps.HostCPU))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Resolve("/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range append([]*elfdeps.Object{res.Input}, res.Objects...) {
		got, err := resolveInTree(tr, o.Path)
		if err != nil {
			t.Errorf("%s: %v", o.Path, err)
			continue
		}
		if got.Kind != KindFile || got.Path != o.RealPath {
			t.Errorf("%s resolves in the tree to %s %s, want the file %s", o.Path, got.Kind, got.Path, o.RealPath)
		}
		host, _ := filepath.EvalSymlinks(o.Path)
		if src, ok := got.Source.(*rootFile); !ok || "/"+src.name != host {
			t.Errorf("%s copies %v, want %s", o.Path, got.Source, host)
		}
	}
	for _, link := range []string{"/bin", "/lib", "/lib64"} {
		want, err := os.Readlink(link)
		if err != nil {
			continue // not a merged-/usr host
		}
		if e := tr.Get(link); e == nil || e.Kind != KindSymlink || e.Target != want {
			t.Errorf("%s: %+v, want a symlink to %s as on the host", link, e, want)
		}
	}
}

// resolveInTree follows the tree's symbolic links like the kernel inside the built root.
func resolveInTree(tr *Tree, p string) (*Entry, error) {
	if e := tr.Resolve(p); e != nil {
		return e, nil
	}
	return nil, os.ErrNotExist
}

func TestPlanAllCPUVariants(t *testing.T) {
	build := fixtureBuild(t)
	prog := filepath.Join(build, "hwcaps", "prog-hwcaps")
	paths := func(opts ...PlanOption) []string {
		p, err := NewPlanner(hostRoot(t), opts...)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AddProgram(prog); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range p.Tree().Entries() {
			if e.Kind == KindFile && strings.HasPrefix(e.Path, build) {
				out = append(out, strings.TrimPrefix(e.Path, build+"/"))
			}
		}
		return out
	}
	all := paths()
	base := paths(WithCPUs(elfdeps.BaselineCPU))
	for _, want := range []string{"hwcaps/hw/libhw.so.1", "hwcaps/hw/glibc-hwcaps/x86-64-v2/libhw.so.1"} {
		if !slices.Contains(all, want) {
			t.Errorf("all CPU variants: %s missing from %v", want, all)
		}
	}
	if slices.Contains(base, "hwcaps/hw/glibc-hwcaps/x86-64-v2/libhw.so.1") || !slices.Contains(base, "hwcaps/hw/libhw.so.1") {
		t.Errorf("baseline CPU: %v, want only the plain copy", base)
	}
}

func TestPlanMissingLibraryIsAProblem(t *testing.T) {
	build := fixtureBuild(t)
	p, err := NewPlanner(hostRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AddProgram(filepath.Join(build, "missing", "prog")); err != nil {
		t.Fatal(err)
	}
	if len(p.Problems) == 0 || !strings.Contains(p.Problems[0].Error(), "libgone.so.1") {
		t.Errorf("Problems = %v, want libgone.so.1 not found", p.Problems)
	}
}

func TestBaseFiles(t *testing.T) {
	curl := "/usr/bin/curl"
	if _, err := os.Stat(curl); err != nil {
		t.Skip("no curl on this machine to stand for a TLS program")
	}
	for _, tc := range []struct {
		name      string
		opts      BaseFiles
		wantCerts bool
		wantUser  string
	}{
		{"auto with a TLS library", BaseFiles{Certs: "auto", User: "app"}, true, "app:x:65532:65532::/home/app:/sbin/nologin"},
		{"never", BaseFiles{Certs: "never", User: "root"}, false, ""},
		{"numeric user", BaseFiles{Certs: "auto", User: "1234:1234"}, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlanner(hostRoot(t), WithCPUs(elfdeps.HostCPU))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AddProgram(curl); err != nil {
				t.Fatal(err)
			}
			notes, err := p.ApplyRules(RuleOptions{Base: tc.opts})
			if err != nil {
				t.Fatal(err)
			}
			tr := p.Tree()
			bundle := tr.Get(caBundle)
			if (bundle != nil) != tc.wantCerts {
				t.Errorf("CA bundle present = %v, want %v (notes %q)", bundle != nil, tc.wantCerts, notes)
			}
			if tc.wantCerts && !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, "certs: ") && strings.Contains(n, "because lib") }) {
				t.Errorf("notes %q do not say which library brought the certificates", notes)
			}
			if tc.wantCerts {
				for link := range caLinks {
					e, err := resolveInTree(tr, link)
					if err != nil || e.Path != caBundle {
						t.Errorf("%s does not lead to the bundle: %v %v", link, e, err)
					}
				}
			}
			passwd := string(tr.Get("/etc/passwd").Data)
			for _, want := range []string{"root:x:0:0:", "nobody:x:65534:65534:", tc.wantUser} {
				if !strings.Contains(passwd, want) {
					t.Errorf("/etc/passwd lacks %q:\n%s", want, passwd)
				}
			}
			if e := tr.Get("/tmp"); e == nil || e.Mode.Perm() != 0o777 || e.Mode&os.ModeSticky == 0 {
				t.Errorf("/tmp = %+v, want mode 1777", e)
			}
			for _, f := range []string{"/etc/group", "/etc/nsswitch.conf", "/etc/hosts"} {
				if tr.Get(f) == nil {
					t.Errorf("%s missing", f)
				}
			}
		})
	}
	p, _ := NewPlanner(hostRoot(t))
	if _, err := p.ApplyRules(RuleOptions{Base: BaseFiles{Certs: "sometimes"}}); err == nil {
		t.Error("--certs sometimes accepted")
	}
}
