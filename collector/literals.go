package collector

import (
	"bytes"
	"debug/elf"
	"io"
)

// maxLiteralData bounds how much read-only data of one object is searched for path literals.
const maxLiteralData = 64 << 20

// elfStrings returns the NUL-terminated strings of an ELF object's read-only data: its PT_LOAD segments
// that are neither writable nor executable (where .rodata lives in separate-code layouts), or the
// read-execute ones when it has none. Only strings that may name a path are kept: absolute paths, and bare
// names of the form a program is looked up on PATH with when bare is set.
func elfStrings(ra io.ReaderAt, size int64, bare bool) (abs, names []string) {
	defer func() {
		if recover() != nil { // debug/elf is not hardened against hostile input: find nothing
			abs, names = nil, nil
		}
	}()
	ef, err := elf.NewFile(io.NewSectionReader(ra, 0, size))
	if err != nil {
		return nil, nil
	}
	var segs []*elf.Prog
	for _, want := range []elf.ProgFlag{elf.PF_R, elf.PF_R | elf.PF_X} {
		for _, p := range ef.Progs {
			if p.Type == elf.PT_LOAD && p.Flags&(elf.PF_R|elf.PF_W|elf.PF_X) == want {
				segs = append(segs, p)
			}
		}
		if len(segs) > 0 {
			break
		}
	}
	seenAbs, seenName := map[string]bool{}, map[string]bool{}
	budget := int64(maxLiteralData)
	for _, p := range segs {
		n := min(int64(p.Filesz), budget)
		if n <= 0 {
			break
		}
		budget -= n
		data := make([]byte, n)
		if _, err := p.ReadAt(data, 0); err != nil && err != io.EOF {
			continue
		}
		for len(data) > 0 {
			i := bytes.IndexByte(data, 0)
			if i < 0 {
				break
			}
			s := data[:i]
			data = data[i+1:]
			switch {
			case len(s) >= 2 && s[0] == '/' && isPathText(s):
				if t := string(s); !seenAbs[t] {
					seenAbs[t] = true
					abs = append(abs, t)
				}
			case bare && len(s) >= 2 && len(s) <= 64 && isCommandName(s):
				if t := string(s); !seenName[t] {
					seenName[t] = true
					names = append(names, t)
				}
			}
		}
	}
	return abs, names
}

// isPathText reports whether s looks like a literal path: printable, no format directives or spaces.
func isPathText(s []byte) bool {
	for _, c := range s {
		if c <= ' ' || c >= 0x7f || c == '%' || c == '*' || c == '?' || c == '$' || c == '"' || c == '\'' || c == '\\' {
			return false
		}
	}
	return len(s) < 4096
}

// isCommandName reports whether s could be a program's name: letters, digits, '.', '_', '+', '-', starting
// with a letter.
func isCommandName(s []byte) bool {
	if !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}
