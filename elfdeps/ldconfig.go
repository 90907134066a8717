package elfdeps

import (
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"slices"
	"strings"
)

// LDConfig says what glibc 2.36's ldconfig scans when it builds a cache for a root (`ldconfig -r ROOT`): the
// directories of ROOT/etc/ld.so.conf in order, then its built-in ones. Build does the scan over any fs.FS
// and Marshal writes the file, so that a root scratchpack builds gets the cache ldconfig would give it.
//
// What is emulated (elf/ldconfig.c search_dir, elf/readlib.c, elf/readelflib.c, the architecture's
// readelflib.c, elf/cache.c): each directory once (two paths to one directory are one: the first wins),
// its glibc-hwcaps/NAME subdirectories after it and its legacy hwcap subdirectories (tls/, and the
// machine's platform and important hwcap names: i686/, sse2/, x86_64/, haswell/, vfp/, neon/, atomics/...)
// last, each entry of those carrying path_hwcap's mask of its directory; files and links named like
// libraries (lib*.so*, ld-*.so*, ld.so.*, ld64.so.*) that are ET_DYN ELF files with a dynamic segment and a
// string table; one entry per soname and directory (a file wins over a link, else the newer name by
// libcmp); a link keeps its own name as key only when that name is its soname or a ".so" prefix of it
// (libfoo.so -> libfoo.so.1); the value is DIR/SONAME (DIR/FILE in glibc-hwcaps subdirectories); the flags
// of the root's architecture; x86 ISA levels of glibc-hwcaps entries; the entry order, the tail-merged
// string table and the extension sections byte for byte.
//
// Not emulated: a.out libraries; the
// "=TYPE" suffix of a configured directory (Dirs are plain directories); the auxiliary cache, which only
// makes ldconfig faster. Where ldconfig's outcome depends on the order readdir returns names in (two names
// of one glibc-hwcaps directory: the first met is kept), Build takes names in byte order.
type LDConfig struct {
	// Dirs are the directories in the order ldconfig adds them: the configured ones, then the built-in
	// ones (Debian's ldconfig: its interpreter's system directories, e.g. /lib/x86_64-linux-gnu,
	// /usr/lib/x86_64-linux-gnu, /lib, /usr/lib). A directory that does not exist is skipped.
	Dirs []string
	// Machine is the architecture of the ldconfig that would run: it decides which files are libraries
	// and their flags (an x86 ldconfig takes x86-64, x32 and i386 files, and no others).
	Machine elf.Machine
	// Generator is the text of the cache's generator section ("ldconfig (Debian GLIBC 2.36-9+deb12u14)
	// stable release version 2.36").
	Generator string
}

// maxCacheEntries bounds the cache Build makes (a root with more libraries than this is not a real root).
const maxCacheEntries = 1 << 20

// ErrNotCacheable is wrapped by Build's error for a machine it cannot decide library flags for.
var ErrNotCacheable = errors.New("no ldconfig flags known for this machine")

// ldDir is one directory of ldconfig's list (struct dir_entry).
type ldDir struct {
	path   string // as ldconfig names it (the configured path, not resolved)
	real   string // resolved inside the root: two paths to one directory are one (ldconfig compares dev/ino)
	hwcaps string // glibc-hwcaps subdirectory name, "" for a plain directory
}

// ldLib is one library of a directory (struct dlib_entry).
type ldLib struct {
	name, soname string
	flags        int32
	isLink       bool
	isaLevel     uint32
}

// ldEntry is one cache entry before the file is laid out (struct cache_entry).
type ldEntry struct {
	CacheEntry
	hwcaps   string // glibc-hwcaps subdirectory name, "" for others
	isaLevel uint32
	bits     int // set bits of the legacy hwcap mask
}

// Build scans fsys as `ldconfig -X -r ROOT` would with l.Dirs and returns the cache it would write. Symbolic
// links are followed inside fsys (absolute targets start again at its top) when fsys implements
// fs.ReadLinkFS. Files that cannot be read are skipped, as ldconfig skips them with a warning.
func (l LDConfig) Build(fsys fs.FS) (*LDCache, error) {
	if _, ok := l.flagsFor(&File{Class: elf.ELFCLASS64, Machine: l.Machine}); !ok && !isX86(l.Machine) {
		if _, ok32 := l.flagsFor(&File{Class: elf.ELFCLASS32, Machine: l.Machine}); !ok32 {
			return nil, fmt.Errorf("building ld.so.cache for %v: %w", l.Machine, ErrNotCacheable)
		}
	}
	r := newRoot(fsys)
	var dirs []ldDir
	seen := map[string]bool{}
	var hwcapNames []string // every glibc-hwcaps subdirectory name met: ldconfig interns each in the string table
	addDir := func(d ldDir) bool {
		if seen[d.real] {
			return false
		}
		seen[d.real] = true
		dirs = append(dirs, d)
		return true
	}
	for _, p := range l.Dirs {
		p = strings.TrimRight(strings.TrimRightFunc(p, isCSpace), "/") // add_dir_1's canonification
		if p == "" || !strings.HasPrefix(p, "/") {
			continue
		}
		rp, err := r.resolve(p)
		if err != nil || !rp.mode.IsDir() {
			continue
		}
		if !addDir(ldDir{path: p, real: rp.real}) {
			continue
		}
		// add_glibc_hwcaps_subdirectories: every entry of DIR/glibc-hwcaps that is (or links to) a directory,
		// except hidden ones and names holding ':'.
		hp := rp.real + "/glibc-hwcaps"
		if rp.real == "/" {
			hp = "/glibc-hwcaps"
		}
		ents, err := r.list(hp)
		if err != nil {
			continue
		}
		for _, name := range sortedNames(ents) {
			if strings.HasPrefix(name, ".") || ents[name].IsRegular() || strings.Contains(name, ":") {
				continue
			}
			sub, err := r.resolve(hp + "/" + name)
			if err != nil || !sub.mode.IsDir() {
				continue
			}
			if !slices.Contains(hwcapNames, name) {
				hwcapNames = append(hwcapNames, name)
			}
			addDir(ldDir{path: p + "/glibc-hwcaps/" + name, real: sub.real, hwcaps: name})
		}
	}

	var entries []ldEntry
	for i := 0; i < len(dirs); i++ { // search_dir may append tls/ subdirectories to the list
		d := dirs[i]
		libs, subdirs, err := l.searchDir(r, d)
		if err != nil {
			return nil, err
		}
		for _, s := range subdirs {
			addDir(s)
		}
		for _, lib := range libs {
			file := lib.soname // the cached name is the soname, relying on its link ...
			if d.hwcaps != "" {
				file = lib.name // ... but the file itself in glibc-hwcaps subdirectories
			}
			e := ldEntry{CacheEntry: CacheEntry{Flags: lib.flags, Key: lib.soname, Value: d.path + "/" + file},
				hwcaps: d.hwcaps, isaLevel: lib.isaLevel}
			if d.hwcaps == "" {
				e.HWCap = l.pathHWCap(d.path)
				e.bits = bits.OnesCount64(e.HWCap)
			}
			entries = append(entries, e)
			if len(entries) > maxCacheEntries {
				return nil, fmt.Errorf("building ld.so.cache: %w: more than %d libraries", ErrTooLarge, maxCacheEntries)
			}
		}
	}
	// add_to_cache keeps the list sorted by compare, a new entry going after those it ties with.
	slices.SortStableFunc(entries, compareCacheEntries)

	c := &LDCache{Generator: l.Generator, hasGenerator: true, interned: hwcapNames}
	used := map[string]bool{}
	for _, e := range entries {
		if e.hwcaps != "" {
			used[e.hwcaps] = true
		}
	}
	for name := range used {
		c.HWCaps = append(c.HWCaps, name)
	}
	slices.Sort(c.HWCaps) // assign_glibc_hwcaps_indices: strcmp order
	for _, e := range entries {
		if e.hwcaps != "" {
			if e.isaLevel > ldcacheISALevelMask {
				return nil, fmt.Errorf("building ld.so.cache: %s: ISA level %d is too high", e.Value, e.isaLevel)
			}
			e.HWCap = ldcacheHWCapExtension | uint64(e.isaLevel)<<32 | uint64(slices.Index(c.HWCaps, e.hwcaps))
		}
		c.Entries = append(c.Entries, e.CacheEntry)
	}
	return c, nil
}

// compareCacheEntries is elf/cache.c compare: sonames descending by libcmp, then flags descending,
// glibc-hwcaps entries first (by subdirectory name), then the most specific legacy hwcap first.
func compareCacheEntries(a, b ldEntry) int {
	if r := libcmp(b.Key, a.Key); r != 0 {
		return r
	}
	switch {
	case a.Flags != b.Flags:
		return -cmp.Compare(a.Flags, b.Flags)
	case a.hwcaps != "" && b.hwcaps == "":
		return -1
	case a.hwcaps == "" && b.hwcaps != "":
		return 1
	case a.hwcaps != b.hwcaps:
		return strings.Compare(a.hwcaps, b.hwcaps)
	case a.bits != b.bits:
		return -cmp.Compare(a.bits, b.bits)
	}
	return -cmp.Compare(a.HWCap, b.HWCap)
}

// pathHWCap is ldconfig's path_hwcap: from the end of a directory's path, each component that names a hwcap
// of the machine, a platform or "tls" adds its bit (the sum, as ldconfig adds them); the first other
// component ends it.
func (l LDConfig) pathHWCap(p string) uint64 {
	li := legacyOf(l.Machine, elf.ELFCLASS64, true)
	var h uint64
	for {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return h
		}
		c := p[i+1:]
		bit := li.hwcapBit(c)
		if bit < 0 {
			bit = li.platformBit(c)
		}
		if bit < 0 {
			if c != "tls" {
				return h
			}
			bit = 63
		}
		h += 1 << bit
		p = p[:i]
	}
}

// isHWCapPlatform is ldconfig's is_hwcap_platform: a subdirectory name search_dir descends into (an
// important hwcap of the machine, a platform, or "tls").
func (l LDConfig) isHWCapPlatform(name string) bool {
	li := legacyOf(l.Machine, elf.ELFCLASS64, true)
	if b := li.hwcapBit(name); b >= 0 && li.important&(1<<b) != 0 {
		return true
	}
	return li.platformBit(name) >= 0 || name == "tls"
}

// searchDir is ldconfig's search_dir for one directory: the libraries it adds to the cache (in the order
// it adds them) and the legacy hwcap subdirectories it appends to the list.
func (l LDConfig) searchDir(r *root, d ldDir) ([]ldLib, []ldDir, error) {
	ents, err := r.list(d.real)
	if err != nil {
		return nil, nil, nil // opendir failed: nothing from here
	}
	var libs []*ldLib // dlibs, newest first as ldconfig prepends
	var subdirs []ldDir
	for _, name := range sortedNames(ents) {
		typ := ents[name]
		if typ&^(fs.ModeSymlink|fs.ModeDir) != 0 && !typ.IsRegular() {
			continue // only links, regular files and directories
		}
		sub := d.hwcaps == "" && l.isHWCapPlatform(name)
		if !isDSOName(name) && (typ.IsRegular() || !sub) {
			continue
		}
		p := d.real + "/" + name
		isLink := typ&fs.ModeSymlink != 0
		rp, err := r.resolve(p)
		if err != nil {
			continue // a dangling link
		}
		if sub && rp.mode.IsDir() {
			subdirs = append(subdirs, ldDir{path: d.path + "/" + name, real: rp.real})
			continue
		}
		if !rp.mode.IsRegular() {
			continue
		}
		lib, ok := l.readLibrary(r, rp.real, name)
		if !ok {
			continue
		}
		if isLink && name != lib.soname {
			// A link keeps its name as its soname only if it is "libfoo.so" for "libfoo.so.1"; any other
			// link counts as a file holding the library.
			if !strings.HasSuffix(name, ".so") || !strings.HasPrefix(lib.soname, name) {
				isLink = false
			}
		}
		if isLink {
			lib.soname = name
		}
		lib.isLink = isLink
		if i := slices.IndexFunc(libs, func(x *ldLib) bool { return x.soname == lib.soname }); i >= 0 {
			old := libs[i]
			if (!isLink && old.isLink) || (isLink == old.isLink && libcmp(old.name, name) < 0) {
				if old.flags == cacheFlagELF && (lib.flags == 2 || lib.flags == cacheFlagELFLibc6) ||
					(old.flags == 2 || old.flags == cacheFlagELFLibc6) && lib.flags == cacheFlagELF {
					old.flags = lib.flags
				}
				old.name, old.isLink, old.isaLevel = name, isLink, lib.isaLevel
			}
			continue
		}
		libs = slices.Insert(libs, 0, &lib)
	}
	out := make([]ldLib, len(libs))
	for i, lib := range libs {
		out[i] = *lib
	}
	return out, subdirs, nil
}

// isDSOName is glibc's _dl_is_dso: lib*.so*, ld-*.so*, ld.so.*, ld64.so.*.
func isDSOName(name string) bool {
	return (strings.HasPrefix(name, "lib") || strings.HasPrefix(name, "ld-")) && strings.Contains(name, ".so") ||
		strings.HasPrefix(name, "ld.so.") || strings.HasPrefix(name, "ld64.so.")
}

// isCSpace is C's isspace in the C locale.
func isCSpace(c rune) bool { return c == ' ' || c >= '\t' && c <= '\r' }

// readLibrary is process_file and process_elf_file: the soname (the file's name when it has no DT_SONAME),
// the flags and the ISA level of a library, or false for a file ldconfig does not cache.
func (l LDConfig) readLibrary(r *root, real, name string) (ldLib, bool) {
	fh, size, ra, err := r.open(real)
	if err != nil {
		return ldLib{}, false
	}
	defer fh.Close()
	f, err := ParseELF(ra, size)
	if err != nil || f.Type != elf.ET_DYN || !f.Dynamic || f.strtabAddr == 0 {
		return ldLib{}, false
	}
	flags, ok := l.flagsFor(f)
	if !ok {
		return ldLib{}, false
	}
	lib := ldLib{name: name, soname: f.Soname, flags: flags}
	if lib.soname == "" {
		lib.soname = name
	}
	if f.Machine == elf.EM_X86_64 || f.Machine == elf.EM_386 {
		lib.isaLevel = x86ISANeeded(ra, size)
	}
	return lib, true
}

func isX86(m elf.Machine) bool { return m == elf.EM_X86_64 || m == elf.EM_386 }

// flagsFor returns the cache flags the ldconfig of l.Machine gives f, or false if it skips f. The generic
// part (elf/readelflib.c) says FLAG_ELF_LIBC6 for an object whose interpreter or DT_NEEDED is glibc's, else
// FLAG_ELF; each architecture's readelflib.c then overrides it.
func (l LDConfig) flagsFor(f *File) (int32, bool) {
	generic := int32(cacheFlagELF)
	if knownInterpreters[f.Interp] || slices.ContainsFunc(f.Needed, func(n string) bool { return n == "libc.so.6" || n == "libm.so.6" }) {
		generic = cacheFlagELFLibc6
	}
	is64 := f.Class == elf.ELFCLASS64
	switch l.Machine {
	case elf.EM_X86_64, elf.EM_386: // sysdeps/unix/sysv/linux/x86/readelflib.c
		switch {
		case f.Machine == elf.EM_X86_64 && is64:
			return 0x0303, true // FLAG_X8664_LIB64|FLAG_ELF_LIBC6
		case f.Machine == elf.EM_X86_64:
			return 0x0803, true // FLAG_X8664_LIBX32|FLAG_ELF_LIBC6
		case f.Machine == elf.EM_386 && !is64:
			return generic, true
		}
		return 0, false // "is for unknown machine"
	case elf.EM_AARCH64, elf.EM_ARM: // sysdeps/unix/sysv/linux/arm/readelflib.c (aarch64 includes it)
		if is64 {
			return 0x0a03, true // FLAG_AARCH64_LIB64|FLAG_ELF_LIBC6
		}
		if f.Flags>>24 == 5 { // EF_ARM_EABI_VER5
			switch {
			case f.Flags&0x400 != 0: // EF_ARM_ABI_FLOAT_HARD
				return 0x0903, true
			case f.Flags&0x200 != 0: // EF_ARM_ABI_FLOAT_SOFT
				return 0x0b03, true
			}
			return cacheFlagELFLibc6, true
		}
		return generic, true
	case elf.EM_PPC64, elf.EM_PPC:
		if is64 {
			return 0x0503, true
		}
		return generic, true
	case elf.EM_S390:
		if is64 {
			return 0x0403, true
		}
		return generic, true
	case elf.EM_RISCV:
		switch f.Flags & 0x6 { // EF_RISCV_FLOAT_ABI
		case 0:
			return 0x0f03, true
		case 0x4:
			return 0x1003, true
		}
		return 0, false
	}
	return 0, false
}

// knownInterpreters are the PT_INTERP values readlib.c's interpreters table knows (the generic /lib/LD_SO
// of each port and x86's own), which make an object FLAG_ELF_LIBC6.
var knownInterpreters = map[string]bool{
	"/lib/ld-linux.so.2": true, "/libx32/ld-linux-x32.so.2": true, "/lib64/ld-linux-x86-64.so.2": true,
	"/lib/ld-linux-aarch64.so.1": true, "/lib/ld-linux-armhf.so.3": true, "/lib/ld-linux.so.3": true,
	"/lib/ld64.so.1": true, "/lib/ld.so.1": true, "/lib64/ld64.so.2": true,
}

// x86ISANeeded is what x86's read_gnu_property takes from a PT_GNU_PROPERTY note: the index of the highest
// bit of GNU_PROPERTY_X86_ISA_1_NEEDED (0 baseline, 1 v2, 2 v3, 3 v4), 0 when there is none.
func x86ISANeeded(ra io.ReaderAt, size int64) (level uint32) {
	defer func() {
		if recover() != nil { // debug/elf is not hardened against hostile input
			level = 0
		}
	}()
	ef, err := elf.NewFile(io.NewSectionReader(ra, 0, size))
	if err != nil {
		return 0
	}
	word := uint64(4)
	if ef.Class == elf.ELFCLASS64 {
		word = 8
	}
	for _, p := range ef.Progs {
		if p.Type != elf.PT_GNU_PROPERTY || p.Align != word || p.Filesz > 1<<16 {
			continue
		}
		data := make([]byte, p.Filesz)
		if _, err := p.ReadAt(data, 0); err != nil {
			return 0
		}
		return isaFromNotes(data, ef.ByteOrder, word)
	}
	return 0
}

// isaFromNotes walks the notes of a PT_GNU_PROPERTY segment as elf/readelflib.c does.
func isaFromNotes(data []byte, bo binary.ByteOrder, align uint64) uint32 {
	const ntGNUPropertyType0, isa1Needed = 5, 0xc0008002
	for off := uint64(0); off+12 <= uint64(len(data)); {
		namesz, descsz, typ := uint64(bo.Uint32(data[off:])), uint64(bo.Uint32(data[off+4:])), bo.Uint32(data[off+8:])
		desc := off + 12 + 4
		if namesz == 4 && typ == ntGNUPropertyType0 && desc <= uint64(len(data)) && string(data[off+12:desc]) == "GNU\x00" {
			if descsz < 8 || descsz%align != 0 || desc+descsz > uint64(len(data)) {
				return 0
			}
			props := data[desc : desc+descsz]
			last := uint32(0)
			for p := uint64(0); len(props)-int(p) >= 8; {
				ptype, datasz := bo.Uint32(props[p:]), uint64(bo.Uint32(props[p+4:]))
				if ptype < last {
					return 0
				}
				p += 8
				if p+datasz > uint64(len(props)) {
					return 0
				}
				last = ptype
				if ptype > isa1Needed {
					return 0
				}
				if ptype == isa1Needed {
					if datasz == 4 {
						if v := bo.Uint32(props[p:]); v != 0 {
							return uint32(31 - bits.LeadingZeros32(v))
						}
					}
					return 0
				}
				p += (datasz + align - 1) &^ (align - 1)
			}
			return 0
		}
		next := off + ((12+namesz+align-1)&^(align-1)+descsz+align-1)&^(align-1) // ELF_NOTE_NEXT_OFFSET
		if next <= off {
			return 0
		}
		off = next
	}
	return 0
}

// sortedNames returns a directory listing's names in byte order, the order Build scans them in.
func sortedNames(ents map[string]fs.FileMode) []string {
	names := make([]string, 0, len(ents))
	for n := range ents {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
