package collector

import (
	"bytes"
	"debug/elf"
	"io"
	"strings"
)

// maxLiteralData bounds how much read-only data of one object is searched for path literals.
const maxLiteralData = 64 << 20

// elfStrings returns the NUL-terminated strings of an ELF object's read-only data: its PT_LOAD segments
// that are neither writable nor executable (where .rodata lives in separate-code layouts), or the
// read-execute ones when it has none. Only strings that may name a path are kept: absolute paths, and,
// when isName is not nil, the names it accepts (programs on PATH) — also as the tail of a longer string,
// since linkers merge a string into another one ending with it (tar's "xz" is the end of "unxz").
func elfStrings(ra io.ReaderAt, size int64, isName func(string) bool) (abs, names []string) {
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
			if len(s) >= 2 && s[0] == '/' && isPathText(s) {
				for _, part := range bytes.Split(s, []byte{':'}) { // a search list: "/etc/magic:/usr/share/misc/magic"
					if t := string(part); len(t) >= 2 && t[0] == '/' && !seenAbs[t] {
						seenAbs[t] = true
						abs = append(abs, t)
					}
				}
				continue
			}
			if isName == nil {
				continue
			}
			for j := max(0, len(s)-64); j+2 <= len(s); j++ {
				if tail := s[j:]; isCommandName(tail) && !seenName[string(tail)] && isName(string(tail)) {
					seenName[string(tail)] = true
					names = append(names, string(tail))
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

// maxScriptText bounds the scripts whose text is searched for paths and program names.
const maxScriptText = 1 << 20

// scriptWords returns the absolute paths and the words that may name programs in a script's text: maximal
// runs of path characters, split at anything a shell separates words with or quotes them by.
func scriptWords(text []byte) (abs, names []string) {
	seen := map[string]bool{}
	isWord := func(c byte) bool {
		return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '.' || c == '_' || c == '+' || c == '-'
	}
	for i := 0; i < len(text); {
		if !isWord(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isWord(text[j]) {
			j++
		}
		w := text[i:j]
		i = j
		if seen[string(w)] {
			continue
		}
		seen[string(w)] = true
		switch {
		case len(w) >= 2 && w[0] == '/' && isPathText(w):
			for _, part := range strings.Split(string(w), ":") {
				if len(part) >= 2 && part[0] == '/' {
					abs = append(abs, part)
				}
			}
		case len(w) >= 2 && len(w) <= 64 && isCommandName(w):
			names = append(names, string(w))
		}
	}
	return abs, names
}
