package elfdeps

import (
	"encoding/binary"
	"slices"
	"strings"
)

// Marshal lays the cache out as glibc 2.36's ldconfig writes it in its default format (new format only)
// in byte order bo: the header, the entries in their order, the string table with shared suffixes
// (elf/stringtable.c), then the extension directory with the generator and, when entries use them, the
// glibc-hwcaps subdirectory names (elf/cache.c save_cache and write_extensions). A cache ldconfig wrote
// parses and marshals back to the same bytes, unless it holds names of glibc-hwcaps subdirectories no
// entry uses (ldconfig keeps those in the string table; a parsed cache cannot know them).
func (c *LDCache) Marshal(order binary.ByteOrder) []byte {
	var bo appendOrder = binary.LittleEndian
	if order == binary.BigEndian {
		bo = binary.BigEndian
	}
	var strs []string
	for _, e := range c.Entries {
		strs = append(strs, e.Key, e.Value)
	}
	strs = append(strs, c.HWCaps...)
	strs = append(strs, c.interned...)
	table, offsets := stringTable(strs)

	n := len(c.Entries)
	strOffset := ldcacheNewHeaderSize + n*ldcacheNewEntrySize
	extOffset := (strOffset + len(table) + 3) &^ 3
	out := make([]byte, extOffset, extOffset+ldcacheExtHeaderSize+2*ldcacheExtEntrySize+4*len(c.HWCaps)+len(c.Generator))
	copy(out, ldcacheNewMagic)
	bo.PutUint32(out[20:], uint32(n))
	bo.PutUint32(out[24:], uint32(len(table)))
	out[28] = 2 // cache_file_new_flags_endian_little
	if order == binary.BigEndian {
		out[28] = 3
	}
	bo.PutUint32(out[32:], uint32(extOffset))
	for i, e := range c.Entries {
		b := out[ldcacheNewHeaderSize+i*ldcacheNewEntrySize:]
		bo.PutUint32(b[0:], uint32(e.Flags))
		bo.PutUint32(b[4:], uint32(strOffset+offsets[e.Key]))
		bo.PutUint32(b[8:], uint32(strOffset+offsets[e.Value]))
		bo.PutUint32(b[12:], e.OSVersion) // osversion_unused: 0 from glibc 2.36 and from Build
		bo.PutUint64(b[16:], e.HWCap)
	}
	copy(out[strOffset:], table)

	// The extension directory: room for two sections is counted (cache_extension_size), but only those
	// written are in the directory, so the generator string moves back by one section when there are no
	// hwcaps names.
	sections := 1
	if len(c.HWCaps) > 0 {
		sections = 2
	}
	hwcapsOffset := extOffset + ldcacheExtHeaderSize + 2*ldcacheExtEntrySize
	genOffset := hwcapsOffset - ldcacheExtEntrySize
	if sections == 2 {
		genOffset = hwcapsOffset + 4*len(c.HWCaps)
	}
	out = bo.AppendUint32(out, ldcacheExtMagic)
	out = bo.AppendUint32(out, uint32(sections))
	out = appendSection(out, bo, ldcacheTagGenerator, genOffset, len(c.Generator))
	if sections == 2 {
		out = appendSection(out, bo, ldcacheTagHWCaps, hwcapsOffset, 4*len(c.HWCaps))
		for _, h := range c.HWCaps {
			out = bo.AppendUint32(out, uint32(strOffset+offsets[h]))
		}
	}
	return append(out, c.Generator...)
}

// appendOrder is a byte order that both puts and appends.
type appendOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

func appendSection(out []byte, bo appendOrder, tag uint32, offset, size int) []byte {
	out = bo.AppendUint32(out, tag)
	out = bo.AppendUint32(out, 0) // flags
	out = bo.AppendUint32(out, uint32(offset))
	return bo.AppendUint32(out, uint32(size))
}

// stringTable is stringtable_finalize: every distinct string once, ordered by their reversed bytes
// (descending, a longer string before its own suffixes), and a string that is the end of the one before
// it shares its bytes. It returns the table and each string's offset in it.
func stringTable(strs []string) ([]byte, map[string]int) {
	uniq := slices.Clone(strs)
	slices.Sort(uniq)
	uniq = slices.Compact(uniq)
	slices.SortFunc(uniq, func(l, r string) int {
		for i := 1; i <= min(len(l), len(r)); i++ {
			if lc, rc := l[len(l)-i], r[len(r)-i]; lc != rc {
				return int(rc) - int(lc)
			}
		}
		return len(r) - len(l) // longer strings first
	})
	offsets := make(map[string]int, len(uniq))
	var table []byte
	for i, s := range uniq {
		if i > 0 {
			prev := uniq[i-1]
			if strings.HasSuffix(prev, s) {
				offsets[s] = offsets[prev] + len(prev) - len(s)
				continue
			}
		}
		offsets[s] = len(table)
		table = append(append(table, s...), 0)
	}
	return table, offsets
}
