// Package elftest writes synthetic ELF objects for tests: just enough of an ELF file (headers, PT_INTERP,
// PT_DYNAMIC) for a dynamic loader, or elfdeps, to decide whether and where to load it.
package elftest

import (
	"debug/elf"
	"encoding/binary"
)

// Opts describes a synthetic ELF object: just enough of an ELF file for a dynamic loader to decide
// whether and where to load it (ELF header, program headers, PT_INTERP, PT_DYNAMIC, a dynamic string table).
// The zero value is a 64-bit little-endian x86-64 ET_DYN with an empty dynamic section.
type Opts struct {
	Class   elf.Class   // default ELFCLASS64
	Data    elf.Data    // default ELFDATA2LSB
	Machine elf.Machine // default EM_X86_64
	Type    elf.Type    // default ET_DYN
	EFlags  uint32      // e_flags

	Interp  string   // PT_INTERP, none if ""
	Static  bool     // no PT_DYNAMIC at all
	Needed  []string // DT_NEEDED, in order
	Soname  string   // DT_SONAME, none if ""
	RPath   string   // DT_RPATH, none if ""
	RunPath string   // DT_RUNPATH, none if ""
	Flags1  uint64   // DT_FLAGS_1, none if 0

	// Extra is appended to the file, outside every segment but the PT_LOAD covering everything (the fake
	// ld.so carries its system directories there).
	Extra []byte
	// LoadFlags are the flags of the PT_LOAD covering the file (default PF_R|PF_W); PF_R makes Extra look
	// like read-only data.
	LoadFlags elf.ProgFlag
	// Patch overwrites single bytes of the finished file (offset -> byte), for malformed headers.
	Patch map[int]byte
}

// ELF writes a minimal but valid ELF object with program headers only (no section headers): PT_INTERP
// (if any) first as the gABI wants, one PT_LOAD covering the whole file, then PT_DYNAMIC.
func ELF(o Opts) []byte {
	if o.Class == elf.ELFCLASSNONE {
		o.Class = elf.ELFCLASS64
	}
	if o.Data == elf.ELFDATANONE {
		o.Data = elf.ELFDATA2LSB
	}
	if o.Machine == elf.EM_NONE {
		o.Machine = elf.EM_X86_64
	}
	if o.Type == elf.ET_NONE {
		o.Type = elf.ET_DYN
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if o.Data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	is64 := o.Class == elf.ELFCLASS64
	ehsize, phentsize, word := 52, 32, 4
	if is64 {
		ehsize, phentsize, word = 64, 56, 8
	}
	base := uint64(0)
	if o.Type == elf.ET_EXEC {
		base = 0x400000
	}

	// Dynamic string table: offset 0 is the empty string.
	strtab := []byte{0}
	addStr := func(s string) uint64 {
		off := uint64(len(strtab))
		strtab = append(strtab, s...)
		strtab = append(strtab, 0)
		return off
	}
	type dyn struct {
		tag elf.DynTag
		val uint64
	}
	var dyns []dyn
	if !o.Static {
		for _, n := range o.Needed {
			dyns = append(dyns, dyn{elf.DT_NEEDED, addStr(n)})
		}
		if o.Soname != "" {
			dyns = append(dyns, dyn{elf.DT_SONAME, addStr(o.Soname)})
		}
		if o.RPath != "" {
			dyns = append(dyns, dyn{elf.DT_RPATH, addStr(o.RPath)})
		}
		if o.RunPath != "" {
			dyns = append(dyns, dyn{elf.DT_RUNPATH, addStr(o.RunPath)})
		}
		if o.Flags1 != 0 {
			dyns = append(dyns, dyn{elf.DT_FLAGS_1, o.Flags1})
		}
	}

	nph := 1 // PT_LOAD
	if o.Interp != "" {
		nph++
	}
	if !o.Static {
		nph++
	}
	align := func(n, a int) int { return (n + a - 1) &^ (a - 1) }
	phoff := ehsize
	interpOff := phoff + nph*phentsize
	interpLen := 0
	if o.Interp != "" {
		interpLen = len(o.Interp) + 1
	}
	strOff := interpOff + interpLen
	// A symbol table holding only the null symbol, and a SysV hash table over it (nbucket = nchain = 1):
	// loaders that look symbols up (musl even in ldd mode) need both.
	symOff := align(strOff+len(strtab), 8)
	symLen := 16
	if is64 {
		symLen = 24
	}
	hashOff := symOff + symLen
	dynOff := align(hashOff+16, 8)
	if !o.Static {
		dyns = append(dyns,
			dyn{elf.DT_HASH, base + uint64(hashOff)},
			dyn{elf.DT_SYMTAB, base + uint64(symOff)},
			dyn{elf.DT_SYMENT, uint64(symLen)},
			dyn{elf.DT_STRTAB, base + uint64(strOff)},
			dyn{elf.DT_STRSZ, uint64(len(strtab))},
			dyn{elf.DT_NULL, 0})
	}
	dynLen := len(dyns) * 2 * word
	extraOff := dynOff + dynLen
	size := extraOff + len(o.Extra)

	out := make([]byte, size)
	put := func(off, width int, v uint64) {
		switch width {
		case 2:
			bo.PutUint16(out[off:], uint16(v))
		case 4:
			bo.PutUint32(out[off:], uint32(v))
		case 8:
			bo.PutUint64(out[off:], v)
		}
	}
	// e_ident
	copy(out, elf.ELFMAG)
	out[elf.EI_CLASS] = byte(o.Class)
	out[elf.EI_DATA] = byte(o.Data)
	out[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	out[elf.EI_OSABI] = byte(elf.ELFOSABI_NONE)
	// The rest of the ELF header; fields after e_entry differ in width by class.
	put(16, 2, uint64(o.Type))
	put(18, 2, uint64(o.Machine))
	put(20, 4, uint64(elf.EV_CURRENT))
	off := 24
	put(off, word, base+uint64(extraOff)) // e_entry: anywhere inside the load segment
	off += word
	put(off, word, uint64(phoff)) // e_phoff
	off += word
	put(off, word, 0) // e_shoff
	off += word
	put(off, 4, uint64(o.EFlags))
	off += 4
	put(off, 2, uint64(ehsize))
	put(off+2, 2, uint64(phentsize))
	put(off+4, 2, uint64(nph))
	put(off+6, 2, 0) // e_shentsize
	put(off+8, 2, 0) // e_shnum
	put(off+10, 2, 0)

	ph := phoff
	writePhdr := func(typ elf.ProgType, flags elf.ProgFlag, offset, filesz, alignment int) {
		v := base + uint64(offset)
		if is64 {
			put(ph, 4, uint64(typ))
			put(ph+4, 4, uint64(flags))
			put(ph+8, 8, uint64(offset))
			put(ph+16, 8, v)
			put(ph+24, 8, v)
			put(ph+32, 8, uint64(filesz))
			put(ph+40, 8, uint64(filesz))
			put(ph+48, 8, uint64(alignment))
		} else {
			put(ph, 4, uint64(typ))
			put(ph+4, 4, uint64(offset))
			put(ph+8, 4, v)
			put(ph+12, 4, v)
			put(ph+16, 4, uint64(filesz))
			put(ph+20, 4, uint64(filesz))
			put(ph+24, 4, uint64(flags))
			put(ph+28, 4, uint64(alignment))
		}
		ph += phentsize
	}
	if o.Interp != "" {
		writePhdr(elf.PT_INTERP, elf.PF_R, interpOff, interpLen, 1)
	}
	loadFlags := o.LoadFlags
	if loadFlags == 0 {
		loadFlags = elf.PF_R | elf.PF_W
	}
	writePhdr(elf.PT_LOAD, loadFlags, 0, size, 0x1000)
	if !o.Static {
		writePhdr(elf.PT_DYNAMIC, elf.PF_R|elf.PF_W, dynOff, dynLen, word)
	}

	copy(out[interpOff:], o.Interp)
	copy(out[strOff:], strtab)
	if !o.Static {
		put(hashOff, 4, 1)   // nbucket
		put(hashOff+4, 4, 1) // nchain
	}
	d := dynOff
	for _, e := range dyns {
		put(d, word, uint64(e.tag))
		put(d+word, word, e.val)
		d += 2 * word
	}
	copy(out[extraOff:], o.Extra)
	for off, b := range o.Patch {
		out[off] = b
	}
	return out
}
