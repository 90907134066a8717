package elfdeps

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
)

// ErrBadCache is wrapped by every error ParseLDCache returns.
var ErrBadCache = errors.New("malformed ld.so.cache")

// LDCache is a parsed glibc ld.so.cache (old "ld.so-1.7.0" header tolerated, new "glibc-ld.so.cache1.1" format
// required). The layout is glibc's elf/dl-cache.h (sysdeps/generic); ldconfig writes it in the byte order of the
// machine it runs on, and ParseLDCache reads either order (a big-endian root's cache, e.g. s390x, parses too).
type LDCache struct {
	Entries   []CacheEntry // in file order (sorted descending by libcmp, as ldconfig writes them)
	HWCaps    []string     // glibc-hwcaps subdirectory names from the extension (e.g. "x86-64-v3"), index = entry's hwcap low 32 bits
	Generator string       // extension tag 0 text, e.g. "ldconfig (Debian GLIBC 2.36-9+deb12u14) stable release version 2.36", "" if absent

	hasGenerator bool // the generator section is present (possibly empty): `ldconfig -p` then prints it
	// interned are strings the string table holds besides the entries' and HWCaps' (ldconfig interns the
	// name of every glibc-hwcaps subdirectory it meets, used or not).
	interned []string
}

// CacheEntry is one library of the cache (struct file_entry_new).
type CacheEntry struct {
	Flags     int32  // low byte type (1 ELF, 3 ELF_LIBC6), next byte arch (0x0300 x86-64 ...)
	Key       string // soname
	Value     string // path, used verbatim by ld.so
	OSVersion uint32 // unused by glibc 2.36's ldconfig, which writes 0
	// HWCap: when bit 62 is the only bit set above the ISA level bits 32..41, the entry comes from a
	// glibc-hwcaps subdirectory, its low 32 bits index HWCaps and bits 32..41 hold the x86 ISA level the library
	// needs (0 baseline, 1 v2, 2 v3, 3 v4). Otherwise it is a legacy hwcap mask (bit 63 "tls", platform and
	// AT_HWCAP bits of a legacy subdirectory such as x86_64/ or haswell/), 0 for a plain entry.
	HWCap uint64
}

// Cache format constants (glibc elf/dl-cache.h, sysdeps/generic/ldconfig.h).
const (
	ldcacheOldMagic      = "ld.so-1.7.0"
	ldcacheNewMagic      = "glibc-ld.so.cache1.1" // CACHEMAGIC_NEW CACHE_VERSION
	ldcacheOldHeaderSize = 16                     // struct cache_file
	ldcacheOldEntrySize  = 12                     // struct file_entry
	ldcacheNewHeaderSize = 48                     // struct cache_file_new
	ldcacheNewEntrySize  = 24                     // struct file_entry_new
	ldcacheExtMagic      = 0xeaa42174             // cache_extension_magic, (uint32_t) -358342284
	ldcacheExtHeaderSize = 8                      // struct cache_extension
	ldcacheExtEntrySize  = 16                     // struct cache_extension_section
	ldcacheTagGenerator  = 0
	ldcacheTagHWCaps     = 1
	ldcacheTagCount      = 2

	ldcacheHWCapExtension = uint64(1) << 62 // DL_CACHE_HWCAP_EXTENSION
	ldcacheHWCapTLS       = uint64(1) << 63 // _DL_HWCAP_TLS_MASK
	ldcacheISALevelMask   = 1<<10 - 1       // DL_CACHE_HWCAP_ISA_LEVEL_MASK

	cacheFlagTypeMask     = 0x00ff // FLAG_TYPE_MASK
	cacheFlagELF          = 0x0001 // FLAG_ELF
	cacheFlagELFLibc6     = 0x0003 // FLAG_ELF_LIBC6
	cacheFlagRequiredMask = 0xff00 // FLAG_REQUIRED_MASK
)

// cacheArchNames is how elf/cache.c print_entry (glibc 2.36) names each FLAG_REQUIRED_MASK value. Debian's
// 2.36 ldconfig has no names for the LoongArch values (0x1100, 0x1200): it prints them as numbers.
var cacheArchNames = map[int32]string{
	0x0100: ",64bit",         // FLAG_SPARC_LIB64
	0x0200: ",IA-64",         // FLAG_IA64_LIB64
	0x0300: ",x86-64",        // FLAG_X8664_LIB64
	0x0400: ",64bit",         // FLAG_S390_LIB64
	0x0500: ",64bit",         // FLAG_POWERPC_LIB64
	0x0600: ",N32",           // FLAG_MIPS64_LIBN32
	0x0700: ",64bit",         // FLAG_MIPS64_LIBN64
	0x0800: ",x32",           // FLAG_X8664_LIBX32
	0x0900: ",hard-float",    // FLAG_ARM_LIBHF
	0x0a00: ",AArch64",       // FLAG_AARCH64_LIB64
	0x0b00: ",soft-float",    // FLAG_ARM_LIBSF
	0x0c00: ",nan2008",       // FLAG_MIPS_LIB32_NAN2008
	0x0d00: ",N32,nan2008",   // FLAG_MIPS64_LIBN32_NAN2008
	0x0e00: ",64bit,nan2008", // FLAG_MIPS64_LIBN64_NAN2008
	0x0f00: ",soft-float",    // FLAG_RISCV_FLOAT_ABI_SOFT
	0x1000: ",double-float",  // FLAG_RISCV_FLOAT_ABI_DOUBLE
}

// cacheTypeNames is print_entry's flag_descr, indexed by FLAG_TYPE_MASK.
var cacheTypeNames = []string{"libc4", "ELF", "libc5", "libc6"}

// ParseLDCache parses an ld.so.cache. Every offset is bounds-checked: a string that does not end with a NUL
// inside the file, a table or extension section past the end, a wrong magic or byte-order flag is an error
// wrapping ErrBadCache. A cache with only the old format (ldconfig -c old) is rejected too.
func ParseLDCache(data []byte) (c *LDCache, err error) {
	defer func() {
		if r := recover(); r != nil { // not expected: parseLDCache checks every index; this is the safety net
			c, err = nil, fmt.Errorf("%w: %v", ErrBadCache, r)
		}
	}()
	c, err = parseLDCache(data, binary.LittleEndian)
	if err != nil {
		if cb, errBE := parseLDCache(data, binary.BigEndian); errBE == nil {
			return cb, nil
		}
		return nil, err
	}
	return c, nil
}

func badCache(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrBadCache}, args...)...)
}

// parseLDCache parses data written in byte order bo, checking what glibc 2.36's loader and `ldconfig -p` check
// (magic, sizes, byte-order flag, cache_extension_load) plus that every string it uses is in the file.
func parseLDCache(data []byte, bo binary.ByteOrder) (*LDCache, error) {
	size := uint64(len(data))
	base := uint64(0) // start of the new-format header; entry strings are relative to it
	if bytes.HasPrefix(data, []byte(ldcacheOldMagic)) {
		if size < ldcacheOldHeaderSize {
			return nil, badCache("truncated old-format header (%d bytes)", size)
		}
		n := uint64(bo.Uint32(data[12:16]))
		if n > (size-ldcacheOldHeaderSize)/ldcacheOldEntrySize {
			return nil, badCache("old-format table of %d entries does not fit in %d bytes", n, size)
		}
		base = (ldcacheOldHeaderSize + n*ldcacheOldEntrySize + 7) &^ 7 // ALIGN_CACHE, 8 on 64-bit hosts
		if base+ldcacheNewHeaderSize > size || string(data[base:base+uint64(len(ldcacheNewMagic))]) != ldcacheNewMagic {
			return nil, badCache("old-format cache without the new format at offset %#x (only %q is supported)", base, ldcacheNewMagic)
		}
	} else if size < ldcacheNewHeaderSize || !bytes.HasPrefix(data, []byte(ldcacheNewMagic)) {
		return nil, badCache("no %q or %q magic", ldcacheNewMagic, ldcacheOldMagic)
	}
	hdr := data[base : base+ldcacheNewHeaderSize]
	nlibs := uint64(bo.Uint32(hdr[20:24]))
	flags := hdr[28]
	extOffset := uint64(bo.Uint32(hdr[32:36]))
	// cache_file_new_matches_endian: 0 means unknown (old ldconfig), else bits 0-1 give the order (2 LE, 3 BE).
	want := byte(2)
	if bo == binary.BigEndian {
		want = 3
	}
	if flags != 0 && flags&3 != want {
		return nil, badCache("byte-order flags %#x do not match %s", flags, bo)
	}
	if nlibs > (size-base-ldcacheNewHeaderSize)/ldcacheNewEntrySize {
		return nil, badCache("%d entries do not fit in %d bytes", nlibs, size)
	}

	text := string(data) // one copy: every string below is a substring of it
	nuls := newNULIndex(data)
	str := func(off uint64) (string, bool) {
		if off >= size {
			return "", false
		}
		end := nuls.next(off)
		if end < 0 {
			return "", false
		}
		return text[off:end], true
	}

	c := &LDCache{Entries: make([]CacheEntry, nlibs)}
	for i := range c.Entries {
		e := data[base+ldcacheNewHeaderSize+uint64(i)*ldcacheNewEntrySize:][:ldcacheNewEntrySize]
		key, value := uint64(bo.Uint32(e[4:8])), uint64(bo.Uint32(e[8:12]))
		var ok bool
		ce := &c.Entries[i]
		ce.Flags = int32(bo.Uint32(e[0:4]))
		ce.OSVersion = bo.Uint32(e[12:16])
		ce.HWCap = bo.Uint64(e[16:24])
		if ce.Key, ok = str(base + key); !ok {
			return nil, badCache("entry %d: soname offset %#x is not a NUL-terminated string in the file", i, key)
		}
		if ce.Value, ok = str(base + value); !ok {
			return nil, badCache("entry %d (%q): path offset %#x is not a NUL-terminated string in the file", i, ce.Key, value)
		}
	}
	if err := c.parseExtensions(data, bo, extOffset, str); err != nil {
		return nil, err
	}
	return c, nil
}

// parseExtensions does what cache_extension_load and cache_extension_verify do. Offsets are relative to the
// start of the file (not of the new header), and so are the hwcaps name offsets, as glibc reads them.
func (c *LDCache) parseExtensions(data []byte, bo binary.ByteOrder, off uint64, str func(uint64) (string, bool)) error {
	if off == 0 {
		return nil // no extensions: not an error
	}
	size := uint64(len(data))
	if off%4 != 0 {
		return badCache("misaligned extension offset %#x", off)
	}
	if off+ldcacheExtHeaderSize > size {
		return badCache("extension directory at %#x beyond end of file (%d bytes)", off, size)
	}
	if m := bo.Uint32(data[off:]); m != ldcacheExtMagic {
		return badCache("extension magic %#x, want %#x", m, ldcacheExtMagic)
	}
	count := uint64(bo.Uint32(data[off+4:]))
	if count > (size-off-ldcacheExtHeaderSize)/ldcacheExtEntrySize {
		return badCache("%d extension sections do not fit in %d bytes", count, size)
	}
	var secs [ldcacheTagCount]struct {
		present      bool
		offset, size uint64
	}
	for i := uint64(0); i < count; i++ {
		s := data[off+ldcacheExtHeaderSize+i*ldcacheExtEntrySize:][:ldcacheExtEntrySize]
		tag := bo.Uint32(s[0:4])
		soff, ssize := uint64(bo.Uint32(s[8:12])), uint64(bo.Uint32(s[12:16]))
		if soff+ssize > size {
			return badCache("extension section %d (tag %d) at %#x+%d beyond end of file", i, tag, soff, ssize)
		}
		if tag >= ldcacheTagCount {
			continue // unknown tags are skipped
		}
		secs[tag].present, secs[tag].offset, secs[tag].size = true, soff, ssize // a later section wins
	}
	if g := secs[ldcacheTagGenerator]; g.present {
		c.hasGenerator = true
		c.Generator = string(data[g.offset : g.offset+g.size])
	}
	// The hwcaps section is ignored (not an error) when empty or misaligned.
	if h := secs[ldcacheTagHWCaps]; h.present && h.size != 0 && h.offset%4 == 0 && h.size%4 == 0 {
		c.HWCaps = make([]string, h.size/4)
		for i := range c.HWCaps {
			so := uint64(bo.Uint32(data[h.offset+uint64(i)*4:]))
			name, ok := str(so)
			if !ok {
				return badCache("glibc-hwcaps name %d: offset %#x is not a NUL-terminated string in the file", i, so)
			}
			c.HWCaps[i] = name
		}
	}
	return nil
}

// nulIndex finds the next NUL byte in linear total time, however many strings overlap (hostile caches).
type nulIndex []uint64

func newNULIndex(data []byte) nulIndex {
	var x nulIndex
	for i, b := range data {
		if b == 0 {
			x = append(x, uint64(i))
		}
	}
	return x
}

// next returns the index of the first NUL at or after from, or -1.
func (x nulIndex) next(from uint64) int64 {
	i := sort.Search(len(x), func(i int) bool { return x[i] >= from })
	if i == len(x) {
		return -1
	}
	return int64(x[i])
}

// isHWCapsExtension is dl_cache_hwcap_extension: bit 62 is the only bit set above the ISA level bits.
func (e CacheEntry) isHWCapsExtension() bool {
	return (e.HWCap>>32)&^ldcacheISALevelMask == ldcacheHWCapExtension>>32
}

// HWCapsSubdir returns the name of the glibc-hwcaps subdirectory an extension entry comes from. It returns
// false for plain and legacy entries, and for an index outside c.HWCaps (glibc then never uses the entry).
func (e CacheEntry) HWCapsSubdir(c *LDCache) (string, bool) {
	if c == nil || !e.isHWCapsExtension() {
		return "", false
	}
	i := uint32(e.HWCap)
	if uint64(i) >= uint64(len(c.HWCaps)) {
		return "", false
	}
	return c.HWCaps[i], true
}

// Lookup does what glibc 2.36 elf/dl-cache.c search_cache does: binary search with libcmp, then scan the run of
// equal keys. accept(flags) says whether an entry's flags fit the loader (see CacheFlagsAccepted; nil accepts
// all). hwcapsPriority(subdir) returns 0 if that glibc-hwcaps subdir is not usable and otherwise a priority
// where 1 is best (nil: none is usable). A legacy entry (the hwcap mask of a tls/, platform or hwcap
// subdirectory such as vfp/neon/ or i686/sse2/) is taken only if it is exactly bit 63, "tls"; LookupFor asks
// the CPU instead.
func (c *LDCache) Lookup(name string, accept func(flags int32) bool, hwcapsPriority func(subdir string) int) (path string, ok bool) {
	return c.LookupFor(name, accept, hwcapsPriority, nil)
}

// LookupFor is Lookup with legacyOK(mask) saying whether a legacy entry's hwcap mask fits the CPU (glibc's
// hwcap_exclude and platform tests; nil: only "tls").
//
// Usable glibc-hwcaps entries take precedence over plain ones, the best priority winning (the first one on a
// tie); otherwise the first acceptable plain or legacy entry wins. Where glibc asks the CPU, LookupFor decides as follows:
//   - an extension entry whose x86 ISA level is k > 0 (glibc: dl_cache_hwcap_isa_level_compatible) is used only
//     if hwcapsPriority("x86-64-v<k+1>") > 0, i.e. the CPU runs that level (ldconfig records ISA levels only on
//     x86, where glibc derives those subdirectories' usability from the same CPU levels);
//   - a legacy entry is used if legacyOK accepts its mask (CPU.legacyCacheOK models glibc 2.36 per machine);
//   - OSVersion is ignored (glibc compares it with the running kernel; glibc 2.36's ldconfig writes 0).
func (c *LDCache) LookupFor(name string, accept func(flags int32) bool, hwcapsPriority func(subdir string) int, legacyOK func(hwcap uint64) bool) (path string, ok bool) {
	if legacyOK == nil {
		legacyOK = func(h uint64) bool { return h == ldcacheHWCapTLS }
	}
	if accept == nil {
		accept = func(int32) bool { return true }
	}
	prio := func(subdir string) int {
		if hwcapsPriority == nil {
			return 0
		}
		return hwcapsPriority(subdir)
	}
	left, right := 0, len(c.Entries)-1
	for left <= right {
		middle := (left + right) / 2
		cmp := libcmp(name, c.Entries[middle].Key)
		if cmp < 0 {
			left = middle + 1
			continue
		} else if cmp > 0 {
			right = middle - 1
			continue
		}
		// Found: go back to the first entry of the run of equal keys, then scan it.
		left = middle
		for middle > 0 && libcmp(name, c.Entries[middle-1].Key) == 0 {
			middle--
		}
		best, found, bestPriority := "", false, 0
		for ; middle <= right; middle++ {
			e := &c.Entries[middle]
			if middle > left && libcmp(name, e.Key) != 0 {
				break
			}
			if !accept(e.Flags) {
				continue
			}
			named := e.isHWCapsExtension()
			if named {
				level := (e.HWCap >> 32) & ldcacheISALevelMask
				if level > 0 && (level > 3 || prio(fmt.Sprintf("x86-64-v%d", level+1)) <= 0) {
					continue
				}
			} else if found {
				break // the extension entries come first; a plain entry ends the search once one is found
			}
			if !named && e.HWCap != 0 && !legacyOK(e.HWCap) {
				continue
			}
			if named {
				subdir, ok := e.HWCapsSubdir(c)
				if !ok {
					continue
				}
				p := prio(subdir)
				if p <= 0 || (found && p >= bestPriority) {
					continue
				}
				bestPriority = p
			}
			best, found = e.Value, true
		}
		return best, found
	}
	return "", false
}

// libcmp is glibc's _dl_cache_libcmp: runs of digits compare numerically (as a C int, wrapping like the
// x86-64 build does), a digit sorts above a non-digit, other bytes compare as (x86, signed) chars, and a NUL
// ends a string. ldconfig sorts entries so that libcmp(prev.Key, next.Key) >= 0.
func libcmp(a, b string) int {
	at := func(s string, i int) byte {
		if i < len(s) {
			return s[i]
		}
		return 0
	}
	isDigit := func(c byte) bool { return c >= '0' && c <= '9' }
	i, j := 0, 0
	for at(a, i) != 0 {
		c1, c2 := at(a, i), at(b, j)
		switch {
		case isDigit(c1) && isDigit(c2):
			var v1, v2 int32
			for ; isDigit(at(a, i)); i++ {
				v1 = v1*10 + int32(at(a, i)-'0')
			}
			for ; isDigit(at(b, j)); j++ {
				v2 = v2*10 + int32(at(b, j)-'0')
			}
			if v1 != v2 {
				return int(v1 - v2)
			}
		case isDigit(c1):
			return 1
		case isDigit(c2):
			return -1
		case c1 != c2:
			return int(int8(c1)) - int(int8(c2))
		default:
			i++
			j++
		}
	}
	return -int(int8(at(b, j)))
}

// CacheFlagsAccepted returns the predicate the glibc loader of that ELF class and machine uses on an entry's
// flags (sysdeps/unix/sysv/linux/*/dl-cache.h _dl_cache_check_flags; the FLAG_* values of
// sysdeps/generic/ldconfig.h). eflags picks the ARM float ABI (EF_ARM_ABI_FLOAT_HARD), the RISC-V and LoongArch
// float ABIs and MIPS NaN2008 / n32, as the loader of such a binary was built for. A RISC-V or LoongArch float
// ABI without a glibc port (single, quad) accepts nothing. Unknown machines accept type 1 or 3 with any arch
// byte.
func CacheFlagsAccepted(class elf.Class, machine elf.Machine, eflags uint32) func(flags int32) bool {
	exactly := func(id int32) func(int32) bool { return func(f int32) bool { return f == id } }
	generic := func(f int32) bool { return f == cacheFlagELF || f == cacheFlagELFLibc6 } // sysdeps/generic
	none := func(int32) bool { return false }
	is64 := class == elf.ELFCLASS64
	switch machine {
	case elf.EM_X86_64:
		if is64 {
			return exactly(0x0303) // FLAG_X8664_LIB64
		}
		return exactly(0x0803) // x32: FLAG_X8664_LIBX32
	case elf.EM_386:
		return generic
	case elf.EM_AARCH64:
		if is64 {
			return exactly(0x0a03) // FLAG_AARCH64_LIB64
		}
	case elf.EM_ARM:
		arch := int32(0x0b00)  // FLAG_ARM_LIBSF
		if eflags&0x400 != 0 { // EF_ARM_ABI_FLOAT_HARD: the armhf loader
			arch = 0x0900 // FLAG_ARM_LIBHF
		}
		// Unmarked libraries (plain FLAG_ELF_LIBC6) fit either float ABI.
		return func(f int32) bool { return f == arch|cacheFlagELFLibc6 || f == cacheFlagELFLibc6 }
	case elf.EM_PPC64:
		return exactly(0x0503) // FLAG_POWERPC_LIB64, big and little endian
	case elf.EM_PPC:
		return generic
	case elf.EM_S390:
		if is64 {
			return exactly(0x0403) // FLAG_S390_LIB64
		}
		return generic
	case elf.EM_SPARCV9:
		if is64 {
			return exactly(0x0103) // FLAG_SPARC_LIB64
		}
		return generic
	case elf.EM_SPARC, elf.EM_SPARC32PLUS:
		return generic
	case elf.EM_IA_64:
		return exactly(0x0203) // FLAG_IA64_LIB64
	case elf.EM_RISCV:
		switch eflags & 0x6 { // EF_RISCV_FLOAT_ABI
		case 0x0: // soft
			return exactly(0x0f03) // FLAG_RISCV_FLOAT_ABI_SOFT
		case 0x4: // double
			return exactly(0x1003) // FLAG_RISCV_FLOAT_ABI_DOUBLE
		}
		return none
	case elf.EM_LOONGARCH:
		switch eflags & 0x7 { // EF_LARCH_ABI_MODIFIER_MASK
		case 0x1: // EF_LARCH_ABI_SOFT_FLOAT
			return exactly(0x1103) // FLAG_LARCH_FLOAT_ABI_SOFT
		case 0x3: // EF_LARCH_ABI_DOUBLE_FLOAT
			return exactly(0x1203) // FLAG_LARCH_FLOAT_ABI_DOUBLE
		}
		return none
	case elf.EM_MIPS, elf.EM_MIPS_RS3_LE:
		nan2008 := eflags&0x400 != 0 // EF_MIPS_NAN2008
		switch {
		case is64 && nan2008:
			return exactly(0x0e03) // FLAG_MIPS64_LIBN64_NAN2008
		case is64:
			return exactly(0x0703) // FLAG_MIPS64_LIBN64
		case eflags&0x20 != 0 && nan2008: // EF_MIPS_ABI2: n32
			return exactly(0x0d03) // FLAG_MIPS64_LIBN32_NAN2008
		case eflags&0x20 != 0:
			return exactly(0x0603) // FLAG_MIPS64_LIBN32
		case nan2008:
			return exactly(0x0c03) // FLAG_MIPS_LIB32_NAN2008
		}
		return generic // o32 keeps the generic check
	}
	return func(f int32) bool {
		t := f & cacheFlagTypeMask
		return f&^(cacheFlagTypeMask|cacheFlagRequiredMask) == 0 && (t == cacheFlagELF || t == cacheFlagELFLibc6)
	}
}

// WriteLDConfigP writes the cache like glibc 2.36's `ldconfig -p` prints it (elf/cache.c print_cache and
// print_entry): a header line "N libs found in cache `PATH'", one line per entry
// "\tKEY (libc6,x86-64[, hwcap: \"x86-64-v3\"]) => VALUE" and, when the cache has one, "Cache generated by: ...".
func (c *LDCache) WriteLDConfigP(w io.Writer, cachePath string) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "%d libs found in cache `%s'\n", len(c.Entries), cachePath)
	for _, e := range c.Entries {
		fmt.Fprintf(bw, "\t%s (", e.Key)
		if t := e.Flags & cacheFlagTypeMask; int(t) < len(cacheTypeNames) {
			bw.WriteString(cacheTypeNames[t])
		} else {
			bw.WriteString("unknown")
		}
		if arch := e.Flags & cacheFlagRequiredMask; arch != 0 {
			if s, ok := cacheArchNames[arch]; ok {
				bw.WriteString(s)
			} else {
				fmt.Fprintf(bw, ",%d", arch)
			}
		}
		if subdir, ok := e.HWCapsSubdir(c); ok {
			fmt.Fprintf(bw, ", hwcap: \"%s\"", subdir)
		} else if e.HWCap != 0 {
			fmt.Fprintf(bw, ", hwcap: 0x%016x", e.HWCap) // C's %#.16lx
		}
		fmt.Fprintf(bw, ") => %s\n", e.Value)
	}
	if c.hasGenerator || c.Generator != "" {
		fmt.Fprintf(bw, "Cache generated by: %s\n", c.Generator)
	}
	return bw.Flush()
}
