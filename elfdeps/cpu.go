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
		if c == elf.ELFCLASS32 {
			return "x86_64" // x32 runs on the x86-64 kernel
		}
		return "x86_64"
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
// subdirectory, the kernel's AT_PLATFORM, the machine's always-present legacy hwcap names.
func BaselineCPU(m elf.Machine, c elf.Class) CPU {
	cpu := CPU{Platform: defaultPlatform(m, c)}
	if m == elf.EM_X86_64 && c == elf.ELFCLASS64 {
		cpu.LegacyHWCaps = []string{"x86_64"} // HWCAP_X86_64 is always set on x86-64
	}
	return cpu
}

// AllVariantsCPU enables every glibc-hwcaps subdirectory the machine knows: for collecting every variant a
// root ships (an image must run on any CPU), not for predicting one run.
func AllVariantsCPU(m elf.Machine, c elf.Class) CPU {
	cpu := BaselineCPU(m, c)
	cpu.HWCaps = glibcHWCapsNames(m)
	return cpu
}

// HostCPU reads this machine's processor from /proc/cpuinfo and returns the choices glibc 2.36's loader makes
// on it for machine m (sysdeps/x86/cpu-features.c: HWCAP_X86_64 always, AVX512_1 and the "haswell" or
// "xeon_phi" platform only on Intel). For a machine other than the host's it returns BaselineCPU.
func HostCPU(m elf.Machine, c elf.Class) CPU {
	if m != elf.EM_X86_64 || c != elf.ELFCLASS64 {
		return BaselineCPU(m, c)
	}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return BaselineCPU(m, c)
	}
	return x86CPUFromCPUInfo(data)
}

func x86CPUFromCPUInfo(cpuinfo []byte) CPU {
	flags := map[string]bool{}
	intel := false
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
