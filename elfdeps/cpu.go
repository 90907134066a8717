package elfdeps

import (
	"bufio"
	"bytes"
	"debug/elf"
	"os"
	"strings"
)

// CPU describes the processor-dependent choices glibc's loader makes: the glibc-hwcaps subdirectories it
// searches (best first), the legacy hwcap subdirectory names, and AT_PLATFORM as glibc reports it ($PLATFORM).
type CPU struct {
	// HWCaps are the usable glibc-hwcaps subdirectory names, best first ("x86-64-v4", "x86-64-v3", ...).
	HWCaps []string
	// Platform is $PLATFORM and the platform component of legacy hwcap subdirectories.
	Platform string
	// LegacyHWCaps are the usable legacy hwcap names after the platform, in glibc's order ("avx512_1", "x86_64").
	LegacyHWCaps []string
	// NoLegacy turns off legacy hwcap subdirectories (glibc 2.37 removed them).
	NoLegacy bool
}

// x86ISALevels are glibc's x86-64 ISA levels (sysdeps/x86/get-isa-level.h) as /proc/cpuinfo names the
// features: each level needs its own features and those of every level below it.
var x86ISALevels = []struct {
	name  string
	flags []string
}{
	{"x86-64-v2", []string{"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}},
	{"x86-64-v3", []string{"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe"}},
	{"x86-64-v4", []string{"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}},
}

// glibcHWCapsNames lists every glibc-hwcaps subdirectory a glibc 2.36 loader of that machine knows, best first.
// AllVariants uses it to collect every variant a library ships.
func glibcHWCapsNames(m elf.Machine) []string {
	switch m {
	case elf.EM_X86_64:
		return []string{"x86-64-v4", "x86-64-v3", "x86-64-v2"}
	case elf.EM_PPC64:
		return []string{"power10", "power9"}
	case elf.EM_S390:
		return []string{"z16", "z15", "z14", "z13"}
	}
	return nil
}

// defaultPlatform is AT_PLATFORM as the kernel sets it for a machine, when glibc does not override it.
func defaultPlatform(m elf.Machine, c elf.Class) string {
	switch m {
	case elf.EM_X86_64:
		return "x86_64" // x32 runs on the x86-64 kernel too
	case elf.EM_386:
		return "i686"
	case elf.EM_AARCH64:
		return "aarch64"
	case elf.EM_ARM:
		return "v7l"
	case elf.EM_PPC64:
		return "power9"
	case elf.EM_S390:
		return "z13"
	case elf.EM_RISCV:
		return "riscv64"
	}
	return strings.ToLower(strings.TrimPrefix(m.String(), "EM_"))
}

// BaselineCPU is what a loader for machine m chooses on a CPU with no optional feature: no glibc-hwcaps
// subdirectory, the kernel's AT_PLATFORM (i686 for Debian's i386), the legacy hwcaps every CPU of that
// Debian architecture has (x86_64 on x86-64; vfp on 32-bit ARM, which armhf requires).
func BaselineCPU(m elf.Machine, c elf.Class) CPU {
	cpu := CPU{Platform: defaultPlatform(m, c)}
	switch m {
	case elf.EM_X86_64:
		cpu.LegacyHWCaps = []string{"x86_64"} // glibc sets HWCAP_X86_64 on every x86-64 CPU
	case elf.EM_ARM:
		cpu.LegacyHWCaps = []string{"vfp"}
	}
	return cpu
}

// AllVariantsCPU enables every glibc-hwcaps subdirectory and every legacy hwcap the machine knows: for
// asking which variant is best (deps --cpu all), not for predicting one run. CPUVariants lists the CPUs
// whose union is every file some CPU's loader maps.
func AllVariantsCPU(m elf.Machine, c elf.Class) CPU {
	cpu := BaselineCPU(m, c)
	cpu.HWCaps = glibcHWCapsNames(m)
	vs := legacyVariants(m, c)
	if len(vs) > 0 {
		best := vs[len(vs)-1]
		cpu.Platform, cpu.LegacyHWCaps = best.Platform, best.LegacyHWCaps
	}
	return cpu
}

// CPUVariants are the CPUs whose choices together cover every file a loader for machine m could map on
// any CPU: the baseline, each glibc-hwcaps level alone, then each combination of platform and legacy hwcaps
// glibc 2.36 can meet on that machine (sysdeps/x86/cpu-features.c; the kernel's AT_HWCAP elsewhere).
func CPUVariants(m elf.Machine, c elf.Class) []CPU {
	base := BaselineCPU(m, c)
	out := []CPU{base}
	for _, h := range glibcHWCapsNames(m) {
		v := base
		v.HWCaps = []string{h}
		out = append(out, v)
	}
	return append(out, legacyVariants(m, c)...)
}

// legacyVariants are the platform and legacy hwcap choices other than the baseline's, least capable first.
func legacyVariants(m elf.Machine, c elf.Class) []CPU {
	switch m {
	case elf.EM_X86_64: // Intel only; a CPU with AVX512ER is a Xeon Phi and gets no avx512_1
		return []CPU{
			{Platform: "xeon_phi", LegacyHWCaps: []string{"x86_64"}},
			{Platform: "haswell", LegacyHWCaps: []string{"x86_64"}},
			{Platform: "haswell", LegacyHWCaps: []string{"avx512_1", "x86_64"}},
		}
	case elf.EM_386:
		return []CPU{{Platform: "i586"}, {Platform: "i686", LegacyHWCaps: []string{"sse2"}}}
	case elf.EM_ARM: // armel CPUs may lack VFP; an ARMv8 kernel says v8l to 32-bit programs
		return []CPU{{Platform: "v7l"}, {Platform: "v8l", LegacyHWCaps: []string{"neon", "vfp"}}, {Platform: "v7l", LegacyHWCaps: []string{"neon", "vfp"}}}
	case elf.EM_AARCH64:
		return []CPU{{Platform: "aarch64", LegacyHWCaps: []string{"atomics"}}}
	}
	return nil
}

// legacyInfo is what glibc 2.36 knows of one machine's legacy hwcaps (its dl-procinfo.h, dl-procinfo.c and
// x86's dl-hwcap.h), in the loader or in ldconfig: the AT_HWCAP bit names, the bits that select
// subdirectories and cache entries (HWCAP_IMPORTANT), and the platform names a cache entry can carry.
type legacyInfo struct {
	names      []string // _dl_hwcap_string(i) is names[i]
	firstName  int      // _dl_string_hwcap looks names up from here (x86-64's loader skips "sse2")
	important  uint64
	platforms  []string // _DL_PLATFORMS_COUNT names; _dl_string_platform looks them up from firstPlat
	firstPlat  int
	platformAt int // _DL_FIRST_PLATFORM: platform i is cache bit platformAt+i
}

var (
	x86HWCapNames = []string{"sse2", "x86_64", "avx512_1"}
	x86Platforms  = []string{"i586", "i686", "haswell", "xeon_phi"}
	armHWCapNames = []string{"swp", "half", "thumb", "26bit", "fastmult", "fpa", "vfp", "edsp",
		"java", "iwmmxt", "crunch", "thumbee", "neon", "vfpv3", "vfpv3d16",
		"tls", "vfpv4", "idiva", "idivt", "vfpd32", "lpae", "evtstrm",
		"aes", "pmull", "sha1", "sha2", "crc32"}
	aarch64HWCapNames = []string{"fp", "asimd", "evtstrm", "aes", "pmull", "sha1", "sha2", "crc32",
		"atomics", "fphp", "asimdhp", "cpuid", "asimdrdm", "jscvt", "fcma",
		"lrcpc", "dcpop", "sha3", "sm3", "sm4", "asimddp", "sha512", "sve",
		"asimdfhm", "dit", "uscat", "ilrcpc", "flagm", "ssbs", "sb", "paca",
		"pacg"}
)

// legacyOf returns machine m's legacy hwcap knowledge, as its loader has it or, with ldconfig, as its
// ldconfig has it (x86's ldconfig covers i386 and x86-64 alike). Machines not modelled (PowerPC, s390,
// MIPS, RISC-V...) have none: no legacy cache entry beyond tls/ is taken for them.
func legacyOf(m elf.Machine, c elf.Class, ldconfig bool) legacyInfo {
	switch {
	case (m == elf.EM_X86_64 || m == elf.EM_386) && ldconfig:
		return legacyInfo{names: x86HWCapNames, important: 0b111, platforms: x86Platforms, platformAt: 48}
	case m == elf.EM_X86_64:
		return legacyInfo{names: x86HWCapNames, firstName: 1, important: 0b110, platforms: x86Platforms, firstPlat: 2, platformAt: 48}
	case m == elf.EM_386:
		return legacyInfo{names: x86HWCapNames[:1], important: 0b1, platforms: x86Platforms[:2], platformAt: 48}
	case m == elf.EM_ARM:
		return legacyInfo{names: armHWCapNames, important: 1<<6 | 1<<12}
	case m == elf.EM_AARCH64:
		return legacyInfo{names: aarch64HWCapNames, important: 1 << 8}
	}
	return legacyInfo{}
}

// hwcapBit is _dl_string_hwcap: the bit of a hwcap name, or -1.
func (l legacyInfo) hwcapBit(name string) int {
	for i := l.firstName; i < len(l.names); i++ {
		if l.names[i] == name {
			return i
		}
	}
	return -1
}

// platformBit is _dl_string_platform: the cache bit of a platform name, or -1.
func (l legacyInfo) platformBit(name string) int {
	for i := l.firstPlat; i < len(l.platforms); i++ {
		if l.platforms[i] == name {
			return l.platformAt + i
		}
	}
	return -1
}

// platformMask is _DL_HWCAP_PLATFORM.
func (l legacyInfo) platformMask() uint64 {
	return (uint64(1)<<len(l.platforms) - 1) << l.platformAt
}

// legacyCacheOK returns glibc 2.36 search_cache's test of a legacy entry's hwcap mask on this CPU for
// machine m: every bit must be an important hwcap the CPU has, a platform bit or tls (bit 63), and a
// platform bit must be the CPU's platform (an unknown platform, such as an AMD CPU's x86_64, takes none).
func (c CPU) legacyCacheOK(m elf.Machine, class elf.Class) func(hwcap uint64) bool {
	l := legacyOf(m, class, false)
	var have uint64
	for _, n := range c.LegacyHWCaps {
		if b := l.hwcapBit(n); b >= 0 {
			have |= 1 << b
		}
	}
	have &= l.important
	mask := l.platformMask()
	platform := ^uint64(0)
	if b := l.platformBit(c.Platform); b >= 0 {
		platform = 1 << b
	}
	exclude := ^(have | mask | ldcacheHWCapTLS)
	return func(h uint64) bool {
		if c.NoLegacy {
			return h&^ldcacheHWCapTLS == 0
		}
		return h&exclude == 0 && (len(l.platforms) == 0 || h&mask == 0 || h&mask == platform)
	}
}

// HostCPU reads this machine's processor from /proc/cpuinfo and returns the choices glibc 2.36's loader makes
// on it for machine m (sysdeps/x86/cpu-features.c: HWCAP_X86_64 always, AVX512_1 and the "haswell" or
// "xeon_phi" platform only on Intel). For a machine other than the host's it returns BaselineCPU.
func HostCPU(m elf.Machine, c elf.Class) CPU {
	if m != elf.EM_X86_64 && m != elf.EM_386 {
		return BaselineCPU(m, c)
	}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return BaselineCPU(m, c)
	}
	if m == elf.EM_386 {
		return i386CPUFromCPUInfo(data)
	}
	return x86CPUFromCPUInfo(data)
}

// i386CPUFromCPUInfo is what an i386 loader chooses on this x86 CPU (sysdeps/x86/cpu-features.c, 32-bit):
// platform i686 with CMOV (else i586 with CMPXCHG8B), hwcap sse2 with SSE2; no glibc-hwcaps subdirectory.
func i386CPUFromCPUInfo(cpuinfo []byte) CPU {
	_, flags := cpuFlags(cpuinfo)
	cpu := CPU{Platform: "i686"}
	switch {
	case flags["cmov"]:
	case flags["cx8"]:
		cpu.Platform = "i586"
	}
	if flags["sse2"] {
		cpu.LegacyHWCaps = []string{"sse2"}
	}
	return cpu
}

// cpuFlags reads the first processor's vendor and flags from /proc/cpuinfo.
func cpuFlags(cpuinfo []byte) (intel bool, flags map[string]bool) {
	flags = map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(cpuinfo))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "vendor_id":
			intel = strings.TrimSpace(v) == "GenuineIntel"
		case "flags":
			for _, f := range strings.Fields(v) {
				flags[f] = true
			}
		}
		if len(flags) > 0 {
			break // the first processor is enough: vendor_id comes before flags
		}
	}
	return intel, flags
}

func x86CPUFromCPUInfo(cpuinfo []byte) CPU {
	intel, flags := cpuFlags(cpuinfo)
	has := func(fs ...string) bool {
		for _, f := range fs {
			if !flags[f] {
				return false
			}
		}
		return true
	}
	cpu := CPU{Platform: "x86_64"}
	for _, lvl := range x86ISALevels {
		if !has(lvl.flags...) {
			break
		}
		cpu.HWCaps = append([]string{lvl.name}, cpu.HWCaps...)
	}
	if intel {
		platform := ""
		if has("avx512cd") {
			if has("avx512er") {
				if has("avx512pf") {
					platform = "xeon_phi"
				}
			} else if has("avx512bw", "avx512dq", "avx512vl") {
				cpu.LegacyHWCaps = append(cpu.LegacyHWCaps, "avx512_1")
			}
		}
		if platform == "" && has("avx2", "fma", "bmi1", "bmi2", "abm", "movbe", "popcnt") {
			platform = "haswell"
		}
		if platform != "" {
			cpu.Platform = platform
		}
	}
	cpu.LegacyHWCaps = append(cpu.LegacyHWCaps, "x86_64")
	return cpu
}

// subdirs returns the subdirectories glibc 2.36 tries inside every search directory, in order and ending with ""
// (the directory itself): glibc-hwcaps/NAME best first, then every combination of the legacy names
// ("tls", the platform, the hwcap names) from the longest down, exactly as _dl_important_hwcaps builds them
// (duplicates included: they cost a failed lookup, nothing more).
func (c CPU) subdirs() []string {
	var out []string
	for _, h := range c.HWCaps {
		out = append(out, "glibc-hwcaps/"+h+"/")
	}
	if !c.NoLegacy {
		names := []string{"tls"}
		if c.Platform != "" {
			names = append(names, c.Platform)
		}
		names = append(names, c.LegacyHWCaps...)
		n := len(names)
		for mask := (1 << n) - 1; mask > 0; mask-- {
			var b strings.Builder
			for i := 0; i < n; i++ {
				if mask&(1<<(n-1-i)) != 0 {
					b.WriteString(names[i])
					b.WriteByte('/')
				}
			}
			out = append(out, b.String())
		}
	}
	return append(out, "")
}

// hwcapsPriority returns 1 for the best usable glibc-hwcaps subdirectory, 2 for the next, ... and 0 for an unusable one.
func (c CPU) hwcapsPriority(name string) int {
	for i, h := range c.HWCaps {
		if h == name {
			return i + 1
		}
	}
	return 0
}
