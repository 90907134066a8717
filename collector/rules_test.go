package collector

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/scratchpack/scratchpack/elfdeps"
)

// planned builds a plan for files on this machine and applies the rules with o.
func planned(t *testing.T, o RuleOptions, adds map[string]string, files ...string) (*Planner, []string, error) {
	t.Helper()
	p, err := NewPlanner(hostRoot(t), WithCPUs(elfdeps.HostCPU))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s is not on this machine", f)
		}
		if err := p.AddProgram(f); err != nil {
			t.Fatal(err)
		}
	}
	addHostFiles(t, p, adds)
	notes, err := p.ApplyRules(o)
	return p, notes, err
}

// addHostFiles adds each content as a host file at its image path, as --add does.
func addHostFiles(t *testing.T, p *Planner, adds map[string]string) {
	t.Helper()
	for dest, content := range adds {
		src := filepath.Join(t.TempDir(), filepath.Base(dest))
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := p.AddHostPath(src, dest, Origin{Kind: OriginAdded, Reason: "--add"}); err != nil {
			t.Fatal(err)
		}
	}
}

func hasPrefixEntry(tr *Tree, prefix string) bool {
	return slices.ContainsFunc(tr.Entries(), func(e *Entry) bool { return strings.HasPrefix(e.Path, prefix) })
}

func TestRulesOnCurl(t *testing.T) {
	const gconv = "/usr/lib/x86_64-linux-gnu/gconv/"
	for _, tc := range []struct {
		name         string
		o            RuleOptions
		wantPaths    []string
		notPaths     []string
		wantNotePart []string
	}{
		{
			name:         "defaults",
			o:            RuleOptions{},
			wantPaths:    []string{"/usr/lib/x86_64-linux-gnu/libgcc_s.so.1", gconv + "gconv-modules", gconv + "UTF-16.so", "/usr/lib/x86_64-linux-gnu/ossl-modules/legacy.so", "/etc/ssl/certs/ca-certificates.crt"},
			wantNotePart: []string{"libgcc_s: added", "imports pthread_", "gconv: added", "imports iconv_open", "openssl: added"},
		},
		{
			name:      "gconv list",
			o:         RuleOptions{Gconv: "utf-32"},
			wantPaths: []string{gconv + "UTF-32.so"},
			notPaths:  []string{gconv + "UTF-16.so"},
		},
		{
			name:      "rules off",
			o:         RuleOptions{Disabled: []string{"gconv", "libgcc_s", "openssl", "certs", "literals"}},
			notPaths:  []string{gconv, "/usr/lib/x86_64-linux-gnu/libgcc_s.so.1", "/usr/lib/x86_64-linux-gnu/ossl-modules", "/etc/ssl/certs"},
			wantPaths: []string{"/etc/passwd"},
		},
		{
			name:      "locale",
			o:         RuleOptions{Locales: []string{"C.UTF-8"}},
			wantPaths: []string{"/usr/lib/locale/C.utf8/LC_CTYPE"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, notes, err := planned(t, tc.o, nil, "/usr/bin/curl")
			if err != nil {
				t.Fatal(err)
			}
			tr := p.Tree()
			for _, want := range tc.wantPaths {
				if !hasPrefixEntry(tr, want) {
					t.Errorf("%s is missing", want)
				}
			}
			for _, not := range tc.notPaths {
				if hasPrefixEntry(tr, not) {
					t.Errorf("%s is in but should not be", not)
				}
			}
			joined := strings.Join(notes, "\n")
			for _, part := range tc.wantNotePart {
				if !strings.Contains(joined, part) {
					t.Errorf("notes lack %q:\n%s", part, joined)
				}
			}
		})
	}
	for _, o := range []RuleOptions{{Gconv: "NO-SUCH-CHARSET"}, {Locales: []string{"xx_YY.UTF-8"}}, {Disabled: []string{"no-such-rule"}}} {
		if _, _, err := planned(t, o, nil, "/usr/bin/curl"); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestRuleNSSModules(t *testing.T) {
	if _, err := os.Stat("/lib/x86_64-linux-gnu/libnss_systemd.so.2"); err != nil {
		t.Skip("libnss_systemd.so.2 is not on this machine")
	}
	conf := "passwd: files systemd\ngroup: files [SUCCESS=merge] systemd\nhosts: files mymachines dns\n"
	p, notes, err := planned(t, RuleOptions{}, map[string]string{"/etc/nsswitch.conf": conf}, "/bin/ls")
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Tree()
	e := tr.Resolve("/lib/x86_64-linux-gnu/libnss_systemd.so.2")
	if e == nil || !strings.Contains(strings.Join(e.Why(), " "), `nsswitch.conf line "passwd: files systemd"`) {
		t.Errorf("libnss_systemd.so.2: %+v, want it in with the nsswitch.conf line as the reason", e)
	}
	if tr.Resolve("/lib/x86_64-linux-gnu/libnss_files.so.2") != nil {
		t.Error("libnss_files.so.2 was added, but files is built into glibc 2.34+")
	}
	if !strings.Contains(strings.Join(notes, "\n"), "libnss_mymachines.so.2 (for \"hosts\") is not in the root") {
		t.Errorf("a missing module is not reported: %q", notes)
	}
	if got := string(tr.Get("/etc/nsswitch.conf").Data); got != "" {
		t.Errorf("the given nsswitch.conf was replaced by generated content %q", got)
	}
}

func TestScripts(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envScript := write("hello.py", "#!/usr/bin/env python3\nprint('hi')\n")
	shScript := write("hello.sh", "#! /bin/sh -e\necho hi\n")
	nested := write("nested", "#!"+shScript+"\n")
	missing := write("missing.sh", "#!/usr/bin/env no-such-interpreter-scratchpack\n")
	for _, f := range []string{"/usr/bin/python3", "/usr/bin/env", "/bin/sh"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("%s is not on this machine", f)
		}
	}
	p, err := NewPlanner(hostRoot(t), WithCPUs(elfdeps.HostCPU))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{envScript, nested} {
		if err := p.AddProgram(s); err != nil {
			t.Fatal(err)
		}
	}
	tr := p.Tree()
	for _, want := range []string{envScript, shScript, nested, "/usr/bin/env", "/usr/bin/python3", "/bin/sh", "/lib/x86_64-linux-gnu/libc.so.6"} {
		if tr.Resolve(want) == nil {
			t.Errorf("%s is missing", want)
		}
	}
	py := tr.Resolve("/usr/bin/python3")
	if py == nil || !strings.Contains(strings.Join(py.Why(), " "), "python3 found on PATH for "+envScript) {
		t.Errorf("python3's reason: %+v", py)
	}
	var buf bytes.Buffer
	if err := tr.Explain(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "<- "+envScript+": input") {
		t.Errorf("--explain does not chain python3's closure back to the script:\n%s", buf.String())
	}
	if err := p.AddProgram(missing); err == nil || !strings.Contains(err.Error(), "no-such-interpreter-scratchpack is not on PATH") {
		t.Errorf("missing interpreter: %v", err)
	}
}

// TestMountpoints: empty /dev, /proc and /sys are in every image unless the rule is off.
func TestMountpoints(t *testing.T) {
	for _, off := range []bool{false, true} {
		o := RuleOptions{Base: BaseFiles{Certs: "never"}}
		if off {
			o.Disabled = []string{"mountpoints"}
		}
		p, _, err := planned(t, o, nil, "/bin/true")
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{"/dev", "/proc", "/sys"} {
			e := p.Tree().Get(d)
			if off != (e == nil) || e != nil && (e.Kind != KindDir || e.Mode != 0o755) {
				t.Errorf("rule off %v: %s = %+v", off, d, e)
			}
		}
	}
}
