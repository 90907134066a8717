package elfdeps

import (
	"debug/elf"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// benchCorpusDirs and benchInterp define the benchmark corpus, the same one bench/deps.sh times: every
// regular ELF file (symbolic links are skipped) under these trees whose PT_INTERP is the x86-64 glibc loader
// or that has DT_NEEDED entries.
var benchCorpusDirs = []string{"/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu"}

const benchInterp = "/lib64/ld-linux-x86-64.so.2"

var benchCorpusOnce = sync.OnceValue(func() []string {
	var out []string
	for _, dir := range benchCorpusDirs {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return nil
			}
			fh, err := os.Open(p)
			if err != nil {
				return nil
			}
			defer fh.Close()
			var magic [4]byte
			if n, _ := fh.ReadAt(magic[:], 0); n != 4 || string(magic[:]) != "\x7fELF" {
				return nil
			}
			st, err := fh.Stat()
			if err != nil {
				return nil
			}
			f, err := ParseELF(fh, st.Size())
			if err != nil {
				return nil
			}
			if f.Interp == benchInterp || len(f.Needed) > 0 {
				out = append(out, p)
			}
			return nil
		})
	}
	return out
})

// benchCorpus returns the corpus, skipping the benchmark where the host has none.
func benchCorpus(b *testing.B) []string {
	b.Helper()
	if st, err := os.Stat("/usr/lib/x86_64-linux-gnu"); err != nil || !st.IsDir() {
		b.Skip("no /usr/lib/x86_64-linux-gnu: not an x86-64 Debian-style host")
	}
	files := benchCorpusOnce()
	if len(files) == 0 {
		b.Skip("empty corpus")
	}
	return files
}

// benchResolveAll resolves the corpus with r and fails the benchmark when nothing resolves.
func benchResolveAll(b *testing.B, r *Resolver, files []string) {
	res, errs := r.ResolveAll(files)
	failed := 0
	for i := range files {
		if errs[i] != nil || res[i] == nil {
			failed++
		}
	}
	if failed == len(files) {
		b.Fatalf("none of the %d corpus files resolved (first error: %v)", len(files), errs[0])
	}
}

// BenchmarkResolveSystem resolves the whole system corpus with a fresh Resolver per iteration: every ELF file
// is parsed again and ld.so.cache is read again (cold Resolver caches; the OS page cache is warm).
func BenchmarkResolveSystem(b *testing.B) {
	files := benchCorpus(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := NewDir("/")
		if err != nil {
			b.Fatal(err)
		}
		benchResolveAll(b, r, files)
	}
	b.ReportMetric(float64(len(files)), "files/op")
}

// BenchmarkResolveWarm resolves the corpus again and again with one Resolver, whose caches are warmed before
// the timer starts: what is left is the search logic itself.
func BenchmarkResolveWarm(b *testing.B) {
	files := benchCorpus(b)
	r, err := NewDir("/")
	if err != nil {
		b.Fatal(err)
	}
	benchResolveAll(b, r, files)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		benchResolveAll(b, r, files)
	}
	b.ReportMetric(float64(len(files)), "files/op")
}

// BenchmarkResolveSystemMemoCPU is BenchmarkResolveSystem with HostCPU answered once per Resolver instead of
// once per input (HostCPU reads and parses /proc/cpuinfo on every call): the difference is what memoizing the
// CPU choice would save.
func BenchmarkResolveSystemMemoCPU(b *testing.B) {
	files := benchCorpus(b)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var mu sync.Mutex
		memo := map[[2]int]CPU{}
		choose := func(m elf.Machine, c elf.Class) CPU {
			mu.Lock()
			defer mu.Unlock()
			k := [2]int{int(m), int(c)}
			cpu, ok := memo[k]
			if !ok {
				cpu = HostCPU(m, c)
				memo[k] = cpu
			}
			return cpu
		}
		r, err := NewDir("/", WithCPU(choose))
		if err != nil {
			b.Fatal(err)
		}
		benchResolveAll(b, r, files)
	}
	b.ReportMetric(float64(len(files)), "files/op")
}
