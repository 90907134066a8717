package collector

import (
	"bytes"
	"regexp"
	"sort"
	"strings"
)

var pyLiteralImport = regexp.MustCompile(`(?:__import__|import_module)\(\s*['"]([A-Za-z_][\w.]*)['"]`)

// pyImport is one import statement of a Python source: "import a.b" (module a.b), "from a.b import c, d"
// (module a.b, names c and d, which may be submodules), "from .. import x" (level 2).
type pyImport struct {
	module string
	names  []string
	level  int // leading dots of a relative import
	line   int
	text   string // the statement as written, for --explain
	// main says the import is in the module's top-level `if __name__ == "__main__":` block, which runs
	// only when the file is the script run, not when it is imported.
	main bool
}

// pythonImports returns the import statements of a Python source, wherever they are (inside functions,
// try or if blocks: all are taken), and the lines that import by a computed name (__import__,
// importlib.import_module), which cannot be followed. Strings and comments are skipped.
func pythonImports(src []byte) (imports []pyImport, dynamic []int) {
	// __import__("name") and importlib.import_module("name") with a literal name are imports too.
	literal := map[int]bool{}
	lineOf := lineIndex(src)
	for _, m := range pyLiteralImport.FindAllSubmatchIndex(src, -1) {
		line := lineOf(m[0])
		literal[line] = true
		imports = append(imports, pyImport{module: string(src[m[2]:m[3]]), line: line, text: string(src[m[0]:m[1]])})
	}
	inMain := false
	for _, st := range pythonStatements(src) {
		text := st.text
		if st.indent == 0 {
			inMain = text == `if __name__ == "":` || text == `if "" == __name__:` || strings.HasPrefix(text, `if __name__ == "": `)
		}
		first := len(imports)
		if (strings.Contains(text, "__import__(") || strings.Contains(text, "import_module(")) && !literal[st.line] {
			dynamic = append(dynamic, st.line)
		}
		for _, part := range strings.Split(text, ";") {
			part = strings.TrimSpace(part)
			// A compound statement's body on the same line ("if x: import y").
			if i := strings.Index(part, ": import "); i >= 0 {
				part = part[i+2:]
			} else if i := strings.Index(part, ": from "); i >= 0 {
				part = part[i+2:]
			}
			switch {
			case strings.HasPrefix(part, "import "):
				for _, m := range strings.Split(strings.TrimPrefix(part, "import "), ",") {
					name, _, _ := strings.Cut(strings.TrimSpace(m), " as ")
					if name = strings.TrimSpace(name); isDottedName(name) {
						imports = append(imports, pyImport{module: name, line: st.line, text: part})
					}
				}
			case strings.HasPrefix(part, "from "):
				rest := strings.TrimPrefix(part, "from ")
				mod, names, ok := strings.Cut(rest, " import ")
				if !ok {
					continue
				}
				mod = strings.TrimSpace(mod)
				level := len(mod) - len(strings.TrimLeft(mod, "."))
				mod = mod[level:]
				if mod != "" && !isDottedName(mod) {
					continue
				}
				imp := pyImport{module: mod, level: level, line: st.line, text: part}
				names = strings.Trim(strings.TrimSpace(names), "()")
				for _, n := range strings.Split(names, ",") {
					n, _, _ = strings.Cut(strings.TrimSpace(n), " as ")
					if n = strings.TrimSpace(n); n != "*" && isDottedName(n) && !strings.Contains(n, ".") {
						imp.names = append(imp.names, n)
					}
				}
				imports = append(imports, imp)
			}
		}
		for i := first; i < len(imports); i++ {
			imports[i].main = inMain
		}
	}
	return imports, dynamic
}

func isDottedName(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" || !(part[0] == '_' || part[0] >= 'a' && part[0] <= 'z' || part[0] >= 'A' && part[0] <= 'Z') {
			return false
		}
		for _, c := range part {
			if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
				return false
			}
		}
	}
	return true
}

type pyStatement struct {
	text   string
	line   int
	indent int // the columns of white space before it (a tab counts one)
}

// pythonStatements splits a source into logical lines (joined across brackets and backslashes), with
// string literals and comments removed, each with its first line number.
func pythonStatements(src []byte) []pyStatement {
	var out []pyStatement
	var cur strings.Builder
	depth, line, start, indent := 0, 1, 1, 0
	flush := func() {
		if t := strings.TrimSpace(cur.String()); t != "" {
			out = append(out, pyStatement{text: strings.Join(strings.Fields(t), " "), line: start, indent: indent})
		}
		cur.Reset()
		indent = 0
	}
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i--
		case c == '"' || c == '\'':
			// A string: skip it (triple-quoted ones too), counting its newlines.
			q := string(c)
			if i+2 < len(src) && src[i+1] == c && src[i+2] == c {
				q = strings.Repeat(string(c), 3)
			}
			j := i + len(q)
			for j < len(src) {
				if src[j] == '\\' {
					j += 2
					continue
				}
				if src[j] == '\n' {
					line++
					if len(q) == 1 {
						break
					}
				}
				if bytes.HasPrefix(src[j:], []byte(q)) {
					j += len(q) - 1
					break
				}
				j++
			}
			cur.WriteString(`""`)
			i = j
		case c == '\\' && i+1 < len(src) && src[i+1] == '\n':
			i++
			line++
			cur.WriteByte(' ')
		case c == '(' || c == '[' || c == '{':
			depth++
			cur.WriteByte(c)
		case c == ')' || c == ']' || c == '}':
			if depth > 0 {
				depth--
			}
			cur.WriteByte(c)
		case c == '\n':
			line++
			if depth == 0 {
				flush()
				start = line
			} else {
				cur.WriteByte(' ')
			}
		default:
			if cur.Len() == 0 && (c == ' ' || c == '\t') {
				start = line
				indent++
				continue
			}
			cur.WriteByte(c)
		}
	}
	flush()
	return out
}

// lineIndex returns a function giving the 1-based line number of a byte offset of text, in logarithmic time
// (a hostile script with many statements must not take quadratic time).
func lineIndex[T string | []byte](text T) func(off int) int {
	var nl []int
	for i := 0; i < len(text); i++ {
		if text[i] == '\n' {
			nl = append(nl, i)
		}
	}
	return func(off int) int {
		return 1 + sort.SearchInts(nl, off)
	}
}
