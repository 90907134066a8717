package elfdeps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
)

// maxSymbols bounds the dynamic symbol count a hostile hash table can claim.
const maxSymbols = 1 << 22

// Imports returns the names of the undefined dynamic symbols of the object at p (inside the root): what it
// expects another object to provide. Like the loader, it reads the dynamic symbol table through PT_DYNAMIC
// (DT_SYMTAB, with the count from DT_HASH or DT_GNU_HASH), never through section headers. Names are sorted.
func (r *Resolver) Imports(p string) ([]string, error) {
	rp, err := r.root.resolve(r.abs(p))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, unwrapErrno(err))
	}
	f, err := r.parse(rp.real)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	fh, size, ra, err := r.root.open(rp.real)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	defer fh.Close()
	syms, err := undefinedSymbols(f, ra, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return syms, nil
}

func undefinedSymbols(f *File, r io.ReaderAt, size int64) (names []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			names, err = nil, fmt.Errorf("%w: %v", ErrBadELF, p)
		}
	}()
	if f.symtabAddr == 0 || f.strtabAddr == 0 {
		return nil, nil
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if f.Data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	at := func(vaddr uint64, n int, what string) ([]byte, error) {
		off, ok := vaddrToOffset(f.loads, vaddr)
		if !ok || off > uint64(size) || uint64(n) > uint64(size)-off {
			return nil, fmt.Errorf("%w: %s outside the file", ErrBadELF, what)
		}
		b := make([]byte, n)
		if _, err := r.ReadAt(b, int64(off)); err != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", ErrBadELF, what, err)
		}
		return b, nil
	}
	n, err := symbolCount(f, at, bo)
	if err != nil {
		return nil, err
	}
	entSize := 24
	if f.Class == elf.ELFCLASS32 {
		entSize = 16
	}
	tab, err := at(f.symtabAddr, n*entSize, "dynamic symbol table")
	if err != nil {
		return nil, err
	}
	strOff, ok := vaddrToOffset(f.loads, f.strtabAddr)
	if !ok || strOff >= uint64(size) {
		return nil, fmt.Errorf("%w: dynamic string table outside the file", ErrBadELF)
	}
	strLen := uint64(size) - strOff
	if f.strtabSize != 0 && f.strtabSize < strLen {
		strLen = f.strtabSize
	}
	strs := make([]byte, min(strLen, maxSegment))
	if _, err := r.ReadAt(strs, int64(strOff)); err != nil && err != io.EOF {
		return nil, fmt.Errorf("%w: reading the dynamic string table: %v", ErrBadELF, err)
	}
	for i := 1; i < n; i++ { // entry 0 is the null symbol
		s := tab[i*entSize:]
		var name uint32
		var shndx uint16
		if f.Class == elf.ELFCLASS32 {
			name, shndx = bo.Uint32(s), bo.Uint16(s[14:])
		} else {
			name, shndx = bo.Uint32(s), bo.Uint16(s[6:])
		}
		if shndx != uint16(elf.SHN_UNDEF) || name == 0 || uint64(name) >= uint64(len(strs)) {
			continue
		}
		str := strs[name:]
		if j := bytes.IndexByte(str, 0); j >= 0 {
			str = str[:j]
		}
		names = append(names, string(str))
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// symbolCount is the number of dynamic symbols: DT_HASH's nchain, or for DT_GNU_HASH one past the highest
// symbol index its chains reach.
func symbolCount(f *File, at func(uint64, int, string) ([]byte, error), bo binary.ByteOrder) (int, error) {
	if f.hash != 0 {
		h, err := at(f.hash, 8, "DT_HASH")
		if err != nil {
			return 0, err
		}
		n := int(bo.Uint32(h[4:]))
		if n < 0 || n > maxSymbols {
			return 0, fmt.Errorf("%w: DT_HASH claims %d symbols", ErrBadELF, n)
		}
		return n, nil
	}
	if f.gnuHash == 0 {
		return 0, nil
	}
	h, err := at(f.gnuHash, 16, "DT_GNU_HASH")
	if err != nil {
		return 0, err
	}
	nbuckets, symoffset, bloomSize := bo.Uint32(h), bo.Uint32(h[4:]), bo.Uint32(h[8:])
	word := uint64(8)
	if f.Class == elf.ELFCLASS32 {
		word = 4
	}
	if nbuckets > maxSymbols || bloomSize > maxSymbols {
		return 0, fmt.Errorf("%w: DT_GNU_HASH too large", ErrBadELF)
	}
	bucketsAt := f.gnuHash + 16 + uint64(bloomSize)*word
	b, err := at(bucketsAt, int(nbuckets)*4, "DT_GNU_HASH buckets")
	if err != nil {
		return 0, err
	}
	last := uint32(0)
	for i := range nbuckets {
		last = max(last, bo.Uint32(b[i*4:]))
	}
	if last < symoffset {
		return int(symoffset), nil
	}
	chainsAt := bucketsAt + uint64(nbuckets)*4
	for i := last; ; i++ {
		if i-symoffset > maxSymbols {
			return 0, fmt.Errorf("%w: DT_GNU_HASH chain does not end", ErrBadELF)
		}
		c, err := at(chainsAt+uint64(i-symoffset)*4, 4, "DT_GNU_HASH chain")
		if err != nil {
			return 0, err
		}
		if bo.Uint32(c)&1 != 0 {
			return int(i) + 1, nil
		}
	}
}

// Dlopen resolves name as the program at prog would load it with dlopen(name) from its own code: a name
// without '/' is searched with the program's RPATH/RUNPATH, LD_LIBRARY_PATH (if given), the cache and the
// default directories, and the new object's DT_NEEDED closure follows. The result lists only the objects
// the dlopen adds to what the program already maps (the program's own closure is in Result.Input's Deps).
func (r *Resolver) Dlopen(prog, name string) (*Result, error) {
	res, err := r.Resolve(prog)
	if err != nil {
		return nil, err
	}
	if res.Flavor != FlavorGlibc {
		return nil, fmt.Errorf("%s: dlopen rules are modelled for glibc programs only", prog)
	}
	return r.dlopenGlibc(res, name)
}

// DlopenSet resolves the shared objects at paths (absolute or relative paths, each holding '/') as loaded
// by dlopen calls of the program at prog, in some order: all of them are mapped before their dependencies,
// so that a DT_NEEDED name is satisfied by any of them whose DT_SONAME it is, as glibc does for an object
// already loaded (OpenJDK's libjava.so needing the libjvm.so its launcher loaded from lib/server). The
// result lists the objects these add to the program's own closure.
func (r *Resolver) DlopenSet(prog string, paths []string) (*Result, error) {
	res, err := r.Resolve(prog)
	if err != nil {
		return nil, err
	}
	if res.Flavor != FlavorGlibc {
		return nil, fmt.Errorf("%s: dlopen is modelled for glibc programs only", prog)
	}
	for _, p := range paths {
		if !strings.Contains(p, "/") {
			return nil, fmt.Errorf("DlopenSet: %q is not a path", p)
		}
	}
	return r.dlopenSetGlibc(res, paths), nil
}
