package elfdeps

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostRTLD is the glibc loader of this machine: the judge of every answer in the system test.
const hostRTLD = "/lib64/ld-linux-x86-64.so.2"

// systemCorpusDirs are the trees whose every ELF file the system test resolves.
var systemCorpusDirs = []string{"/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu"}

// corpusFile is one ELF file of the system and how the real loader can be asked about it.
type corpusFile struct {
	path     string
	explicit bool // run as `ld.so FILE` (a library, or a program that is not executable) rather than exec'd
}

// systemCorpus walks the corpus trees (symlinks are not followed: their targets are in the corpus too) and
// returns every regular ELF file the host glibc loader would load: programs whose PT_INTERP is the host
// loader, and shared objects of the host's class and machine with DT_NEEDED entries.
func systemCorpus(t testing.TB) []corpusFile {
	t.Helper()
	var out []corpusFile
	for _, dir := range systemCorpusDirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			fh, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer fh.Close()
			st, err := fh.Stat()
			if err != nil {
				return nil
			}
			f, err := ParseELF(fh, st.Size())
			if err != nil || f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || !f.Dynamic {
				return nil
			}
			switch {
			case f.Interp == hostRTLD:
				// A set-user-ID or set-group-ID program would run for real: under AT_SECURE the loader drops
				// LD_TRACE_LOADED_OBJECTS. Ask ld.so explicitly instead, as ldd does.
				secure := st.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0
				out = append(out, corpusFile{path: p, explicit: secure || st.Mode()&0o111 == 0})
			case f.Interp == "" && len(f.Needed) > 0 && f.Type == elf.ET_DYN:
				out = append(out, corpusFile{path: p, explicit: true})
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walking %s: %v", dir, err)
		}
	}
	return out
}

// loaderTrace asks the real loader, in trace mode (nothing of the program runs), which objects it maps,
// parsed by the oracle's strict parser (linux-vdso dropped).
func loaderTrace(file corpusFile) ([]traceEntry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var cmd *exec.Cmd
	if file.explicit {
		cmd = exec.CommandContext(ctx, hostRTLD, file.path)
	} else {
		cmd = exec.CommandContext(ctx, file.path)
	}
	cmd.Env = []string{"LD_TRACE_LOADED_OBJECTS=1", "PATH=/usr/bin:/bin"}
	cmd.Dir = "/"
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil && stdout.Len() == 0 {
		return nil, fmt.Errorf("%v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return oracleParseGlibc(stdout.String(), "/")
}

// ourTrace renders a Result the way the loader's trace mode lists it. glibc: every object but the input in
// the order it was mapped; a name that was not found as (NAME, "") where the loader met it (its stand-in then
// answers later requests for that name); a needed path as its expanded form; and the interpreter, only if
// something needs it, right after the object that precedes it in the breadth-first search list (rtld.c moves
// it there). musl: the interpreter first, then as mapped, the interpreter again under the first reserved name
// that asked for it (libc.so => /lib/ld-musl-x86_64.so.1).
func ourTrace(res *Result) []traceEntry {
	var out []traceEntry
	seen := map[*Object]bool{res.Input: true}
	missing := map[string]bool{}
	queue := []*Object{res.Input}
	musl := res.Flavor == FlavorMusl
	if musl && res.Interp != nil {
		out = append(out, traceEntry{res.Interp.Path, res.Interp.Path})
	}
	for i := 0; i < len(queue); i++ {
		o := queue[i]
		for j, name := range o.Needed {
			if j >= len(o.Deps) {
				break
			}
			dep := o.Deps[j]
			switch {
			case dep == nil && !missing[name]:
				missing[name] = true
				out = append(out, traceEntry{Name: name})
			case dep != nil && !seen[dep]:
				seen[dep] = true
				queue = append(queue, dep)
				switch {
				case dep == res.Interp && !musl:
					continue // placed below
				case dep.How == HowPath && strings.Contains(name, "$"):
					name = dep.Path
				}
				out = append(out, traceEntry{name, dep.Path})
			}
		}
	}
	if rtld := res.Interp; rtld != nil && !musl && seen[rtld] {
		at := 0 // right after the object before it in load order (the input: first)
		if i := slices.Index(res.Objects, rtld); i > 0 {
			prev := res.Objects[i-1].Path
			at = slices.IndexFunc(out, func(e traceEntry) bool { return e.Path == prev }) + 1
		}
		out = slices.Insert(out, at, traceEntry{rtld.Path, rtld.Path})
	}
	return out
}

// TestSystemCorpusMatchesLoader resolves every ELF file of this machine's /usr/bin, /usr/sbin and
// /usr/lib/x86_64-linux-gnu and compares, object for object and in order, with what the real glibc loader maps
// in trace mode. Every difference is reported.
func TestSystemCorpusMatchesLoader(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the system corpus test runs the real loader on every file")
	}
	if _, err := os.Stat(hostRTLD); err != nil {
		t.Skipf("no glibc x86-64 loader on this machine: %v", err)
	}
	corpus := systemCorpus(t)
	if len(corpus) < 50 {
		t.Fatalf("system corpus has only %d ELF files: the walk is broken", len(corpus))
	}
	r, err := NewDir("/", WithCPU(HostCPU))
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(corpus))
	for i, c := range corpus {
		paths[i] = c.path
	}
	results, errs := r.ResolveAll(paths)

	truths := make([][]traceEntry, len(corpus))
	truthErrs := make([]error, len(corpus))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range corpus {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			truths[i], truthErrs[i] = loaderTrace(corpus[i])
		}()
	}
	wg.Wait()

	var diffs []string
	compared := 0
	for i, c := range corpus {
		d, ok := judgeTrace(c.path, results[i], errs[i], truths[i], truthErrs[i])
		diffs = append(diffs, d...)
		if ok {
			compared++
		}
	}
	t.Logf("compared %d of %d corpus files with the real loader", compared, len(corpus))
	if len(diffs) > 0 {
		t.Errorf("%d files differ from the real loader:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
	if compared < len(corpus)*9/10 {
		t.Errorf("only %d of %d files could be compared", compared, len(corpus))
	}
}

// judgeTrace compares our resolution of file p (res, err) with the real loader's trace of it (want,
// wantErr) and returns every difference; compared is whether the loader started it, so that there was a
// trace to compare with. A loader that refused the file must be matched by a failure of ours; a loader that
// started it must see no missing version reported; the objects must be the loader's, in its order, and
// Result.Objects that same load order (with the interpreter last when nothing needs it).
func judgeTrace(p string, res *Result, err error, want []traceEntry, wantErr error) (diffs []string, compared bool) {
	if wantErr != nil {
		if err == nil && len(res.Problems) == 0 {
			diffs = append(diffs, fmt.Sprintf("%s: loader failed (%v) but we resolved it", p, wantErr))
		}
		return diffs, false
	}
	if err != nil {
		return []string{fmt.Sprintf("%s: we failed: %v", p, err)}, false
	}
	for _, prob := range res.Problems {
		var ve *VersionError
		if errors.As(prob, &ve) {
			diffs = append(diffs, fmt.Sprintf("%s: we report %v, the loader does not", p, prob))
		}
	}
	got := ourTrace(res)
	if !slices.Equal(got, want) {
		diffs = append(diffs, fmt.Sprintf("%s:\n  loader: %v\n  ours:   %v", p, want, got))
	}
	var order []string
	for _, e := range got {
		if e.Path != "" {
			order = append(order, e.Path)
		}
	}
	var objs []string
	for _, o := range res.Objects {
		if o != res.Interp || slices.Contains(order, o.Path) {
			objs = append(objs, o.Path)
		}
	}
	if !slices.Equal(objs, order) {
		diffs = append(diffs, fmt.Sprintf("%s: Result.Objects out of load order:\n  want %v\n  got  %v", p, order, objs))
	}
	return diffs, true
}
