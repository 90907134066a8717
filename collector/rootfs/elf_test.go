package rootfs

import (
	"debug/elf"
	"encoding/binary"
)

// synthELF writes a minimal x86-64 ELF object, program headers only: PT_INTERP (when interp is not ""), one
// PT_LOAD covering the file, PT_DYNAMIC with DT_NEEDED and DT_SONAME entries, a dynamic string table and
// a one-symbol hash table; extra is appended (a fake ld.so carries its system directories there).
func synthELF(interp string, needed []string, soname string, extra string) []byte {
	const ehsize, phentsize = 64, 56
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
	for _, n := range needed {
		dyns = append(dyns, dyn{elf.DT_NEEDED, addStr(n)})
	}
	if soname != "" {
		dyns = append(dyns, dyn{elf.DT_SONAME, addStr(soname)})
	}
	nph := 2
	if interp != "" {
		nph++
	}
	align8 := func(n int) int { return (n + 7) &^ 7 }
	interpOff := ehsize + nph*phentsize
	interpLen := 0
	if interp != "" {
		interpLen = len(interp) + 1
	}
	strOff := interpOff + interpLen
	symOff := align8(strOff + len(strtab))
	hashOff := symOff + 24
	dynOff := align8(hashOff + 16)
	dyns = append(dyns,
		dyn{elf.DT_HASH, uint64(hashOff)}, dyn{elf.DT_SYMTAB, uint64(symOff)}, dyn{elf.DT_SYMENT, 24},
		dyn{elf.DT_STRTAB, uint64(strOff)}, dyn{elf.DT_STRSZ, uint64(len(strtab))}, dyn{elf.DT_NULL, 0})
	extraOff := dynOff + len(dyns)*16
	out := make([]byte, extraOff+len(extra))
	le := binary.LittleEndian

	copy(out, elf.ELFMAG)
	out[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	out[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	out[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	le.PutUint16(out[16:], uint16(elf.ET_DYN))
	le.PutUint16(out[18:], uint16(elf.EM_X86_64))
	le.PutUint32(out[20:], uint32(elf.EV_CURRENT))
	le.PutUint64(out[24:], uint64(extraOff)) // e_entry
	le.PutUint64(out[32:], ehsize)           // e_phoff
	le.PutUint16(out[52:], ehsize)
	le.PutUint16(out[54:], phentsize)
	le.PutUint16(out[56:], uint16(nph))

	ph := ehsize
	phdr := func(typ elf.ProgType, flags elf.ProgFlag, off, size, align int) {
		le.PutUint32(out[ph:], uint32(typ))
		le.PutUint32(out[ph+4:], uint32(flags))
		le.PutUint64(out[ph+8:], uint64(off))
		le.PutUint64(out[ph+16:], uint64(off))
		le.PutUint64(out[ph+24:], uint64(off))
		le.PutUint64(out[ph+32:], uint64(size))
		le.PutUint64(out[ph+40:], uint64(size))
		le.PutUint64(out[ph+48:], uint64(align))
		ph += phentsize
	}
	if interp != "" {
		phdr(elf.PT_INTERP, elf.PF_R, interpOff, interpLen, 1)
	}
	phdr(elf.PT_LOAD, elf.PF_R|elf.PF_W, 0, len(out), 0x1000)
	phdr(elf.PT_DYNAMIC, elf.PF_R|elf.PF_W, dynOff, len(dyns)*16, 8)
	copy(out[interpOff:], interp)
	copy(out[strOff:], strtab)
	le.PutUint32(out[hashOff:], 1)   // nbucket
	le.PutUint32(out[hashOff+4:], 1) // nchain
	for i, d := range dyns {
		le.PutUint64(out[dynOff+16*i:], uint64(d.tag))
		le.PutUint64(out[dynOff+16*i+8:], d.val)
	}
	copy(out[extraOff:], extra)
	return out
}
