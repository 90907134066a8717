package elfdeps

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrNotELF is returned (wrapped) for a file that does not start with the ELF magic.
var ErrNotELF = errors.New("not an ELF file")

// ErrBadELF is returned (wrapped) for an ELF file the loader would reject: truncated, inconsistent or hostile.
var ErrBadELF = errors.New("malformed ELF file")

// maxSegment bounds how much of one segment we are willing to read: a hostile header must not make us allocate
// gigabytes. Real PT_INTERP, PT_DYNAMIC and dynamic string tables are far below this.
const maxSegment = 64 << 20

// File is what the loader reads of an ELF object: the ELF header, the program headers, PT_INTERP and the
// dynamic section reached through PT_DYNAMIC. Section headers are never consulted (they may be stripped).
type File struct {
	Class   elf.Class
	Data    elf.Data
	OSABI   elf.OSABI
	Type    elf.Type
	Machine elf.Machine
	Flags   uint32 // e_flags

	Interp  string   // PT_INTERP, "" if none
	Dynamic bool     // has PT_DYNAMIC
	Needed  []string // DT_NEEDED in order
	Soname  string   // DT_SONAME
	RPath   string   // DT_RPATH ("" if none, or if DT_RUNPATH is present: glibc then ignores it)
	RunPath string   // DT_RUNPATH
	HasRPath,
	HasRunPath bool
	Flags1 uint64 // DT_FLAGS_1

	// VersionNeeds are the symbol versions the object requires of other objects (DT_VERNEED), and
	// VersionDefs the versions it defines (DT_VERDEF; nil when it has none), as glibc checks them at start.
	VersionNeeds []VersionNeed
	VersionDefs  []VersionDef

	// rawRPath is DT_RPATH even when DT_RUNPATH is present; musl uses DT_RUNPATH if present, else DT_RPATH.
	rawRPath string

	// What reading the dynamic symbol table later needs (see Imports): the PT_LOAD segments and the
	// addresses of DT_STRTAB, DT_SYMTAB, DT_HASH and DT_GNU_HASH (0 when absent).
	loads                                 []phdr
	strtabAddr, symtabAddr, hash, gnuHash uint64
	strtabSize                            uint64

	// osABITag is the OS of an NT_GNU_ABI_TAG note (0 = Linux), -1 if the object has none.
	osABITag int
	// hdr is the raw ELF header (as much of it as the file has, up to 64 bytes): glibc's open_verify reads its
	// fields in the loader's own byte order, not the file's, so the checks need the bytes.
	hdr []byte
}

// HasNodeflib reports whether the object carries DF_1_NODEFLIB.
func (f *File) HasNodeflib() bool { return f.Flags1&uint64(elf.DF_1_NODEFLIB) != 0 }

type phdr struct {
	typ    elf.ProgType
	off    uint64
	vaddr  uint64
	filesz uint64
	align  uint64
}

// ParseELF reads an ELF object from r (size bytes long). It never panics: debug/elf's constants are used,
// its parser is not, and every offset is bounds-checked against size.
func ParseELF(r io.ReaderAt, size int64) (*File, error) {
	f, err := parseELFPartial(r, size)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// parseELFPartial is ParseELF that also returns what it read before an error: the ELF header, when it was
// readable, so that a loader's header checks (which come first) can still be applied to a damaged file.
func parseELFPartial(r io.ReaderAt, size int64) (f *File, err error) {
	defer func() {
		if p := recover(); p != nil {
			f, err = nil, fmt.Errorf("%w: %v", ErrBadELF, p)
		}
	}()
	return parseELF(r, size)
}

func parseELF(ra io.ReaderAt, size int64) (*File, error) {
	r := newHeadReader(ra, size)
	defer func() { putBuf(r.head) }() // nothing parsed keeps a view of it
	var ident [elf.EI_NIDENT]byte
	if size < elf.EI_NIDENT {
		if size >= 4 {
			if _, err := r.ReadAt(ident[:4], 0); err == nil && string(ident[:4]) != elf.ELFMAG {
				return nil, ErrNotELF
			}
		}
		return nil, fmt.Errorf("%w: file too short", ErrBadELF)
	}
	if _, err := r.ReadAt(ident[:], 0); err != nil {
		return nil, fmt.Errorf("reading ELF header: %w", err)
	}
	if string(ident[:4]) != elf.ELFMAG {
		return nil, ErrNotELF
	}
	f := &File{
		Class:    elf.Class(ident[elf.EI_CLASS]),
		Data:     elf.Data(ident[elf.EI_DATA]),
		OSABI:    elf.OSABI(ident[elf.EI_OSABI]),
		osABITag: -1,
	}
	f.hdr = make([]byte, min(size, 64))
	if _, err := r.ReadAt(f.hdr, 0); err != nil {
		return nil, fmt.Errorf("reading ELF header: %w", err)
	}
	var bo binary.ByteOrder
	switch f.Data {
	case elf.ELFDATA2LSB:
		bo = binary.LittleEndian
	case elf.ELFDATA2MSB:
		bo = binary.BigEndian
	default:
		return f, fmt.Errorf("%w: unknown data encoding %d", ErrBadELF, ident[elf.EI_DATA])
	}

	var phoff, phentsize, phnum uint64
	var wantPhent uint64
	switch f.Class {
	case elf.ELFCLASS64:
		if size < 64 || len(f.hdr) < 64 { // elf.Header64
			return f, fmt.Errorf("%w: file too short", ErrBadELF)
		}
		h := f.hdr
		f.Type, f.Machine, f.Flags = elf.Type(bo.Uint16(h[16:])), elf.Machine(bo.Uint16(h[18:])), bo.Uint32(h[48:])
		phoff, phentsize, phnum, wantPhent = bo.Uint64(h[32:]), uint64(bo.Uint16(h[54:])), uint64(bo.Uint16(h[56:])), 56
	case elf.ELFCLASS32:
		if size < 52 || len(f.hdr) < 52 { // elf.Header32
			return f, fmt.Errorf("%w: file too short", ErrBadELF)
		}
		h := f.hdr
		f.Type, f.Machine, f.Flags = elf.Type(bo.Uint16(h[16:])), elf.Machine(bo.Uint16(h[18:])), bo.Uint32(h[36:])
		phoff, phentsize, phnum, wantPhent = uint64(bo.Uint32(h[28:])), uint64(bo.Uint16(h[42:])), uint64(bo.Uint16(h[44:])), 32
	default:
		return f, fmt.Errorf("%w: unknown ELF class %d", ErrBadELF, ident[elf.EI_CLASS])
	}
	if phnum == 0 {
		return f, nil
	}
	if phentsize < wantPhent {
		return f, fmt.Errorf("%w: program header entry size %d", ErrBadELF, phentsize)
	}
	if phoff > uint64(size) || phnum*phentsize > uint64(size)-phoff {
		return f, fmt.Errorf("%w: program headers beyond end of file", ErrBadELF)
	}
	// view returns n bytes at off: a view of the first page when they lie there, else a pooled buffer,
	// which done gives back (nothing keeps a view: what is kept is copied out).
	var pooled [][]byte
	defer func() {
		for _, b := range pooled {
			putBuf(b)
		}
	}()
	view := func(off, n uint64, what string) ([]byte, error) {
		if n > maxSegment || off > uint64(size) || n > uint64(size)-off {
			return nil, fmt.Errorf("%w: %s beyond end of file", ErrBadELF, what)
		}
		if off+n <= uint64(len(r.head)) {
			return r.head[off : off+n], nil
		}
		b := getBuf(int(n))
		pooled = append(pooled, b)
		if _, err := r.ReadAt(b, int64(off)); err != nil {
			return nil, fmt.Errorf("%w: reading %s: %v", ErrBadELF, what, err)
		}
		return b, nil
	}
	raw, err := view(phoff, phnum*phentsize, "program headers")
	if err != nil {
		return f, err
	}
	phs := make([]phdr, phnum)
	for i := range phs {
		b := raw[uint64(i)*phentsize:]
		if f.Class == elf.ELFCLASS64 {
			phs[i] = phdr{elf.ProgType(bo.Uint32(b)), bo.Uint64(b[8:]), bo.Uint64(b[16:]), bo.Uint64(b[32:]), bo.Uint64(b[48:])}
		} else {
			phs[i] = phdr{elf.ProgType(bo.Uint32(b)), uint64(bo.Uint32(b[4:])), uint64(bo.Uint32(b[8:])), uint64(bo.Uint32(b[16:])), uint64(bo.Uint32(b[28:]))}
		}
	}
	var dyn *phdr
	for i := range phs {
		p := &phs[i]
		switch p.typ {
		case elf.PT_INTERP:
			b, err := view(p.off, p.filesz, "PT_INTERP")
			if err != nil {
				return f, err
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			f.Interp = string(b)
		case elf.PT_DYNAMIC:
			if dyn == nil {
				dyn = p
			}
		case elf.PT_NOTE:
			if p.filesz >= 32 && p.align >= 4 && f.osABITag < 0 {
				if b, err := view(p.off, p.filesz, "PT_NOTE"); err == nil {
					f.osABITag = abiTagOS(b, bo, p.align)
				}
			}
		}
	}
	if dyn == nil {
		return f, nil
	}
	f.Dynamic = true
	b, err := view(dyn.off, dyn.filesz, "PT_DYNAMIC")
	if err != nil {
		return f, err
	}
	type dynEnt struct{ tag, val uint64 }
	entSize := 16
	if f.Class == elf.ELFCLASS32 {
		entSize = 8
	}
	ents := make([]dynEnt, 0, len(b)/entSize)
	for i := 0; i+entSize <= len(b); i += entSize {
		var e dynEnt
		if entSize == 16 {
			e = dynEnt{bo.Uint64(b[i:]), bo.Uint64(b[i+8:])}
		} else {
			e = dynEnt{uint64(bo.Uint32(b[i:])), uint64(bo.Uint32(b[i+4:]))}
		}
		if elf.DynTag(e.tag) == elf.DT_NULL {
			break
		}
		ents = append(ents, e)
	}
	var strtab, strsz uint64
	var verneed, verneedNum, verdef, verdefNum uint64
	haveStrtab := false
	for _, e := range ents {
		switch elf.DynTag(e.tag) {
		case elf.DT_STRTAB:
			strtab, haveStrtab = e.val, true
		case elf.DT_STRSZ:
			strsz = e.val
		case elf.DT_FLAGS_1:
			f.Flags1 = e.val
		case elf.DT_SYMTAB:
			f.symtabAddr = e.val
		case elf.DT_HASH:
			f.hash = e.val
		case elf.DT_GNU_HASH:
			f.gnuHash = e.val
		case elf.DT_VERNEED:
			verneed = e.val
		case elf.DT_VERNEEDNUM:
			verneedNum = e.val
		case elf.DT_VERDEF:
			verdef = e.val
		case elf.DT_VERDEFNUM:
			verdefNum = e.val
		}
	}
	f.strtabAddr, f.strtabSize = strtab, strsz
	for _, p := range phs {
		if p.typ == elf.PT_LOAD {
			f.loads = append(f.loads, p)
		}
	}
	var strOff, strLen uint64
	if haveStrtab {
		off, ok := vaddrToOffset(phs, strtab)
		if !ok {
			return f, fmt.Errorf("%w: DT_STRTAB 0x%x is in no PT_LOAD segment", ErrBadELF, strtab)
		}
		strOff, strLen = off, uint64(size)-min(off, uint64(size))
		if strsz != 0 && strsz < strLen {
			strLen = strsz
		}
	}
	// str reads one NUL-terminated string of the dynamic string table: only the strings the loader uses are
	// read, never the whole table (libstdc++'s is over 100 kB of symbol names), through a window of the
	// table (sw) that also serves the version names: the names a file needs lie together.
	sw := &window{r: r, size: size}
	defer sw.release()
	str := func(tag elf.DynTag, v uint64) (string, error) {
		if v >= strLen {
			return "", fmt.Errorf("%w: %v string offset %d outside the string table", ErrBadELF, tag, v)
		}
		for n := uint64(256); ; n *= 4 {
			n = min(n, strLen-v)
			b, err := sw.at(int64(strOff+v), int(n))
			if err != nil {
				return "", fmt.Errorf("%w: reading %v string: %v", ErrBadELF, tag, err)
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				return string(b[:i]), nil
			}
			if n >= strLen-v || n > maxSegment {
				return string(b), nil
			}
		}
	}
	for _, e := range ents {
		tag := elf.DynTag(e.tag)
		switch tag {
		case elf.DT_NEEDED, elf.DT_SONAME, elf.DT_RPATH, elf.DT_RUNPATH:
		default:
			continue
		}
		s, err := str(tag, e.val)
		if err != nil {
			return f, err
		}
		switch tag {
		case elf.DT_NEEDED:
			f.Needed = append(f.Needed, s)
		case elf.DT_SONAME:
			f.Soname = s
		case elf.DT_RPATH:
			f.rawRPath, f.HasRPath = s, true
		case elf.DT_RUNPATH:
			f.RunPath, f.HasRunPath = s, true
		}
	}
	if verneed != 0 || verdef != 0 {
		if err := f.readVersions(r, size, bo, verneed, verneedNum, verdef, verdefNum, strOff, strLen, sw); err != nil {
			return f, err
		}
	}
	// elf/get-dynamic-info.h: "If both RUNPATH and RPATH are given, the latter is ignored."
	if f.HasRunPath {
		f.HasRPath = false
	} else {
		f.RPath = f.rawRPath
	}
	return f, nil
}

// vaddrToOffset maps a virtual address to a file offset through the PT_LOAD segments, as the dynamic
// section's addresses are virtual.
func vaddrToOffset(phs []phdr, vaddr uint64) (uint64, bool) {
	for _, p := range phs {
		if p.typ == elf.PT_LOAD && vaddr >= p.vaddr && vaddr-p.vaddr < p.filesz {
			return p.off + (vaddr - p.vaddr), true
		}
	}
	return 0, false
}

// abiTagOS returns the OS word of an NT_GNU_ABI_TAG note in a PT_NOTE segment, or -1.
func abiTagOS(b []byte, bo binary.ByteOrder, align uint64) int {
	al := 4
	if align == 8 {
		al = 8
	}
	round := func(n int) int { return (n + al - 1) &^ (al - 1) }
	for len(b) >= 12 {
		namesz, descsz, typ := int(bo.Uint32(b)), int(bo.Uint32(b[4:])), bo.Uint32(b[8:])
		if namesz < 0 || descsz < 0 || namesz > len(b) || descsz > len(b) {
			return -1
		}
		nameEnd := 12 + round(namesz)
		if nameEnd > len(b) || nameEnd+descsz > len(b) {
			return -1
		}
		if typ == ntGNUABITag && namesz == 4 && string(b[12:15]) == "GNU" && descsz >= 16 {
			return int(bo.Uint32(b[nameEnd:]))
		}
		next := nameEnd + round(descsz)
		if next > len(b) || next <= 0 {
			return -1
		}
		b = b[next:]
	}
	return -1
}

// ntGNUABITag is NT_GNU_ABI_TAG, the note type of .note.ABI-tag.
const ntGNUABITag = 1

// headReader serves reads from the first page of the file, read once: the ELF header, the program headers
// and usually PT_INTERP and the notes live there, so most objects cost two or three reads in all.
type headReader struct {
	r    io.ReaderAt
	head []byte
}

const headSize = 4096

func newHeadReader(r io.ReaderAt, size int64) *headReader {
	h := &headReader{r: r}
	n := min(size, headSize)
	if n > 0 {
		b := getBuf(int(n))
		if m, err := r.ReadAt(b, 0); m == len(b) || err == nil {
			h.head = b[:m]
		}
	}
	return h
}

func (h *headReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= 0 && off+int64(len(p)) <= int64(len(h.head)) {
		return copy(p, h.head[off:]), nil
	}
	return h.r.ReadAt(p, off)
}
