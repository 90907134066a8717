package elfdeps

import (
	"debug/elf"
	"slices"
	"testing"
)

// TestLegacyCacheOK checks glibc 2.36 search_cache's legacy hwcap test (hwcap_exclude and the platform bits)
// for each machine modelled, with the masks ldconfig writes (path_hwcap).
func TestLegacyCacheOK(t *testing.T) {
	const tls = uint64(1) << 63
	for _, c := range []struct {
		name  string
		m     elf.Machine
		class elf.Class
		cpu   CPU
		ok    []uint64
		notOK []uint64
	}{
		{"armhf with NEON", elf.EM_ARM, elf.ELFCLASS32, CPU{Platform: "v7l", LegacyHWCaps: []string{"neon", "vfp"}},
			[]uint64{0x1040, 0x40, 0x1000, tls}, []uint64{1 << 15, 1 << 13, 0x1040 | 1<<15}}, // arm's "tls" is hwcap bit 15: never taken
		{"armhf baseline", elf.EM_ARM, elf.ELFCLASS32, BaselineCPU(elf.EM_ARM, elf.ELFCLASS32),
			[]uint64{0x40, tls}, []uint64{0x1040, 0x1000}},
		{"arm64 with LSE atomics", elf.EM_AARCH64, elf.ELFCLASS64, CPU{Platform: "aarch64", LegacyHWCaps: []string{"atomics"}},
			[]uint64{1 << 8, tls}, []uint64{1 << 1, 1 << 22}},
		{"arm64 baseline", elf.EM_AARCH64, elf.ELFCLASS64, BaselineCPU(elf.EM_AARCH64, elf.ELFCLASS64),
			[]uint64{tls}, []uint64{1 << 8}},
		{"i386 with SSE2", elf.EM_386, elf.ELFCLASS32, CPU{Platform: "i686", LegacyHWCaps: []string{"sse2"}},
			[]uint64{1 << 0, 1 << 49, 1<<49 | 1, tls | 1<<49}, []uint64{1 << 48, 1 << 1, 1 << 50}},
		{"i386 without SSE2", elf.EM_386, elf.ELFCLASS32, BaselineCPU(elf.EM_386, elf.ELFCLASS32),
			[]uint64{1 << 49}, []uint64{1 << 0, 1<<49 | 1}},
		{"x86-64 on Intel (haswell)", elf.EM_X86_64, elf.ELFCLASS64, CPU{Platform: "haswell", LegacyHWCaps: []string{"x86_64"}},
			[]uint64{1 << 1, 1 << 50, 1<<50 | 1<<1, tls}, []uint64{1 << 51, 1 << 49, 1 << 2, 1 << 0}},
		{"x86-64 on AMD", elf.EM_X86_64, elf.ELFCLASS64, BaselineCPU(elf.EM_X86_64, elf.ELFCLASS64),
			[]uint64{1 << 1, tls}, []uint64{1 << 50, 1 << 48, 1 << 2}}, // its platform x86_64 is none of glibc's: no platform entry
		{"not modelled", elf.EM_PPC64, elf.ELFCLASS64, BaselineCPU(elf.EM_PPC64, elf.ELFCLASS64),
			[]uint64{tls}, []uint64{1 << 1}},
	} {
		ok := c.cpu.legacyCacheOK(c.m, c.class)
		for _, h := range c.ok {
			if !ok(h) {
				t.Errorf("%s: a cache entry with hwcap %#x is refused", c.name, h)
			}
		}
		for _, h := range c.notOK {
			if ok(h) {
				t.Errorf("%s: a cache entry with hwcap %#x is taken", c.name, h)
			}
		}
	}
}

// TestLegacySubdirs checks the legacy subdirectories the loader searches, in glibc's order, against what each
// loader's --help printed under qemu-user and on this machine (see elfdeps/foreign_test.go for the trees).
func TestLegacySubdirs(t *testing.T) {
	for _, c := range []struct {
		name string
		cpu  CPU
		want []string
	}{
		{"i386 on an SSE2 CPU", CPU{Platform: "i686", LegacyHWCaps: []string{"sse2"}},
			[]string{"tls/i686/sse2/", "tls/i686/", "tls/sse2/", "tls/", "i686/sse2/", "i686/", "sse2/", ""}},
		{"armhf with NEON", CPU{Platform: "v8l", LegacyHWCaps: []string{"neon", "vfp"}},
			[]string{"tls/v8l/neon/vfp/", "tls/v8l/neon/", "tls/v8l/vfp/", "tls/v8l/", "tls/neon/vfp/", "tls/neon/", "tls/vfp/", "tls/",
				"v8l/neon/vfp/", "v8l/neon/", "v8l/vfp/", "v8l/", "neon/vfp/", "neon/", "vfp/", ""}},
		{"arm64 with atomics", CPU{Platform: "aarch64", LegacyHWCaps: []string{"atomics"}},
			[]string{"tls/aarch64/atomics/", "tls/aarch64/", "tls/atomics/", "tls/", "aarch64/atomics/", "aarch64/", "atomics/", ""}},
	} {
		if got := c.cpu.subdirs(); !slices.Equal(got, c.want) {
			t.Errorf("%s: subdirs %q, want %q", c.name, got, c.want)
		}
	}
}

func TestCPUVariants(t *testing.T) {
	for _, c := range []struct {
		m     elf.Machine
		class elf.Class
		want  int
	}{
		{elf.EM_X86_64, elf.ELFCLASS64, maxVariantsWant}, {elf.EM_386, elf.ELFCLASS32, 3}, {elf.EM_ARM, elf.ELFCLASS32, 4},
		{elf.EM_AARCH64, elf.ELFCLASS64, 2}, {elf.EM_PPC64, elf.ELFCLASS64, 3}, {elf.EM_RISCV, elf.ELFCLASS64, 1},
	} {
		vs := CPUVariants(c.m, c.class)
		if len(vs) != c.want {
			t.Errorf("%v: %d variants, want %d: %+v", c.m, len(vs), c.want, vs)
		}
		for i := range vs {
			for j := range i {
				if slices.Equal(vs[i].HWCaps, vs[j].HWCaps) && vs[i].Platform == vs[j].Platform && slices.Equal(vs[i].LegacyHWCaps, vs[j].LegacyHWCaps) {
					t.Errorf("%v: variants %d and %d are the same: %+v", c.m, j, i, vs[i])
				}
			}
		}
	}
}

// maxVariantsWant is x86-64's: the baseline, three glibc-hwcaps levels, three legacy platforms.
const maxVariantsWant = 7

func TestI386HostCPU(t *testing.T) {
	cpu := i386CPUFromCPUInfo([]byte("vendor_id\t: AuthenticAMD\nflags\t\t: fpu cx8 cmov sse sse2 avx2\n"))
	if cpu.Platform != "i686" || !slices.Equal(cpu.LegacyHWCaps, []string{"sse2"}) || len(cpu.HWCaps) != 0 {
		t.Errorf("an SSE2 CPU: %+v", cpu)
	}
	cpu = i386CPUFromCPUInfo([]byte("flags\t\t: fpu cx8\n"))
	if cpu.Platform != "i586" || len(cpu.LegacyHWCaps) != 0 {
		t.Errorf("a Pentium: %+v", cpu)
	}
}
