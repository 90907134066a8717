package trace

import (
	"bufio"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
)

// ParseStrace reads the log of `strace -f -e trace=file,process [-o FILE]`
// and returns the successful file accesses in it, like Run's: the same Ops
// (except OpExe, which a log cannot show), in log order, de-duplicated by
// (Path, Op), without /proc, /sys and /dev.
//
// It reads logs written to stderr (lines of other processes prefixed with
// "[pid N]") and with -o (every line prefixed with "N "), one -ff file at a
// time, with or without -t/-tt/-ttt/-r timestamps, -T durations and -y fd
// paths, and it joins "<unfinished ...>" lines with their "<... resumed>"
// ends. Lines that are not syscalls (signals, exits, the program's own
// output on a shared stderr) are skipped.
//
// cwd is the directory the traced command started in, or "" if unknown.
// Relative paths are resolved against it, or against what later chdir and
// fchdir calls in the log make of it; a child's starts as its parent's at the
// fork (when the log has trace=process). A path relative to a directory fd is
// resolved when the log shows that fd's open, or its path (-y). Paths that
// cannot be made absolute are dropped. The PID of lines without a prefix is
// 0; Comm is "" until the log shows an execve for that process.
func ParseStrace(r io.Reader, cwd string) ([]Access, error) {
	if cwd != "" && !filepath.IsAbs(cwd) {
		return nil, fmt.Errorf("parsing strace log: working directory %q is not absolute", cwd)
	}
	calls, err := readStraceCalls(r)
	if err != nil {
		return nil, err
	}
	st := straceState{cwd: resolve(cwd, ""), procs: map[int]*straceProc{}}
	for _, c := range calls {
		st.apply(c)
	}
	return st.rec.out, nil
}

// straceCall is one syscall from the log, joined from its pieces, at the
// place of its first piece.
type straceCall struct {
	pid  int
	name string   // "" until the call is complete
	args []string // top-level arguments, as printed
	ret  string   // first token after "="
}

// readStraceCalls splits the log into calls, joining unfinished ones.
func readStraceCalls(r io.Reader) ([]*straceCall, error) {
	var calls []*straceCall
	type open struct {
		call *straceCall
		text string
	}
	pending := map[int]open{} // unfinished call of each pid
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20) // execve lines carry whole environments
	for sc.Scan() {
		pid, rest := splitStracePrefix(sc.Text())
		switch {
		case strings.HasPrefix(rest, "+++ superseded by execve in pid "):
			// A non-leader thread's execve finishes under the leader's pid.
			old, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest[len("+++ superseded by execve in pid "):]), " +++"))
			if p, ok := pending[old]; ok && err == nil {
				delete(pending, old)
				p.call.pid = pid
				pending[pid] = p
			}
		case strings.HasPrefix(rest, "+++"), strings.HasPrefix(rest, "---"):
		case strings.HasPrefix(rest, "<... "):
			name, tail, ok := strings.Cut(rest[len("<... "):], " resumed>")
			if !ok {
				continue
			}
			p, ok := pending[pid]
			if !ok && (name == "execve" || name == "execveat") {
				for other, q := range pending { // no "superseded" line seen
					if strings.HasPrefix(q.text, name+"(") {
						p, ok = q, true
						delete(pending, other)
						p.call.pid = pid
						break
					}
				}
			}
			if !ok || !strings.HasPrefix(p.text, name+"(") {
				continue
			}
			delete(pending, pid)
			p.call.parse(p.text + tail)
		case unfinished(rest) >= 0:
			c := &straceCall{pid: pid}
			calls = append(calls, c)
			pending[pid] = open{c, rest[:unfinished(rest)]}
		default:
			c := &straceCall{pid: pid}
			if c.parse(rest) {
				calls = append(calls, c)
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading strace log: %w", err)
	}
	return calls, nil
}

// unfinished returns where the "<unfinished ...>" mark of a call's first part
// starts, or -1. strace 6 ends an execve that changes the pid (when a
// non-leader thread execs) with "<pid changed to N ...>" instead.
func unfinished(line string) int {
	if strings.HasSuffix(line, "<unfinished ...>") {
		return len(line) - len("<unfinished ...>")
	}
	if i := strings.LastIndex(line, "<pid changed to "); i >= 0 && strings.HasSuffix(line, " ...>") {
		return i
	}
	return -1
}

// splitStracePrefix removes the pid prefix ("[pid N] " or "N ") and any
// timestamp from a log line.
func splitStracePrefix(line string) (pid int, rest string) {
	s := strings.TrimLeft(line, " \t")
	if after, ok := strings.CutPrefix(s, "[pid "); ok {
		if n, tail, ok := strings.Cut(after, "]"); ok {
			pid, _ = strconv.Atoi(strings.TrimSpace(n))
			s = tail
		}
	} else {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i > 0 && i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			pid, _ = strconv.Atoi(s[:i])
			s = s[i:]
		}
	}
	s = strings.TrimLeft(s, " \t")
	if tok, tail, ok := strings.Cut(s, " "); ok && isTimestamp(tok) {
		s = strings.TrimLeft(tail, " \t")
	}
	return pid, s
}

// isTimestamp matches strace's -t, -tt, -ttt and -r stamps.
func isTimestamp(s string) bool {
	sep := false
	for _, c := range []byte(s) {
		switch {
		case c == ':' || c == '.':
			sep = true
		case c < '0' || c > '9':
			return false
		}
	}
	return sep
}

// parse fills c from "name(args) = ret ...", reporting whether it is one.
func (c *straceCall) parse(text string) bool {
	open := strings.IndexByte(text, '(')
	if open <= 0 || !isIdent(text[:open]) {
		return false
	}
	args, end, ok := splitArgs(text, open+1)
	if !ok {
		return false
	}
	rest, ok := strings.CutPrefix(strings.TrimSpace(text[end:]), "=")
	fields := strings.Fields(rest)
	if !ok || len(fields) == 0 {
		return false
	}
	c.name, c.args, c.ret = text[:open], args, fields[0]
	return true
}

func isIdent(s string) bool {
	for _, c := range []byte(s) {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// splitArgs splits the arguments starting at text[i] at top-level commas, up
// to the closing parenthesis. end is the index after it.
func splitArgs(text string, i int) (args []string, end int, ok bool) {
	depth, start := 0, i
	for ; i < len(text); i++ {
		switch text[i] {
		case '"':
			for i++; i < len(text) && text[i] != '"'; i++ {
				if text[i] == '\\' {
					i++
				}
			}
		case '(', '[', '{':
			depth++
		case ']', '}':
			depth--
		case ')':
			if depth == 0 {
				if a := strings.TrimSpace(text[start:i]); a != "" || len(args) > 0 {
					args = append(args, a)
				}
				return args, i + 1, true
			}
			depth--
		case ',':
			if depth == 0 {
				args = append(args, strings.TrimSpace(text[start:i]))
				start = i + 1
			}
		}
	}
	return nil, 0, false
}

// straceProc is what the log says about one pid.
type straceProc struct {
	cwd  string         // "" if unknown
	comm string         // last exec
	fds  map[int]string // fd -> path, from successful opens
}

type straceState struct {
	cwd   string
	procs map[int]*straceProc
	rec   recorder
}

func (st *straceState) proc(pid int) *straceProc {
	p := st.procs[pid]
	if p == nil {
		p = &straceProc{cwd: st.cwd, fds: map[int]string{}}
		st.procs[pid] = p
	}
	return p
}

func (st *straceState) apply(c *straceCall) {
	if c.name == "" {
		return // never finished
	}
	ret, err := strconv.Atoi(leadingInt(c.ret))
	if err != nil || ret < 0 {
		return
	}
	p := st.proc(c.pid)
	switch c.name {
	case "fork", "vfork", "clone", "clone2", "clone3":
		if ret > 0 {
			st.procs[ret] = &straceProc{cwd: p.cwd, comm: p.comm, fds: maps.Clone(p.fds)}
		}
		return
	case "close":
		if len(c.args) == 1 {
			delete(p.fds, atoiOr(leadingInt(c.args[0]), -1))
		}
		return
	case "fchdir":
		if len(c.args) == 1 {
			p.cwd = p.dirfd(c.args[0])
		}
		return
	}
	spec, ok := fileCalls[c.name]
	if !ok || spec.path >= len(c.args) {
		return
	}
	name, ok := unquoteStrace(c.args[spec.path])
	if !ok {
		return
	}
	var path string
	switch {
	case name != "":
		base := p.cwd
		if spec.dirfd >= 0 {
			base = p.dirfd(c.args[spec.dirfd])
		}
		path = resolve(name, base)
	case c.name == "execveat" && len(c.args) == 5 && strings.Contains(c.args[4], "AT_EMPTY_PATH"):
		path = p.dirfd(c.args[0])
	}
	switch spec.op {
	case OpOpen:
		if path != "" {
			p.fds[ret] = path
		}
	case OpExec:
		if path != "" {
			p.comm = path
		}
	case OpChdir:
		p.cwd = path
	}
	st.rec.add(Access{Path: path, Op: spec.op, PID: c.pid, Comm: p.comm})
}

// dirfd resolves a directory fd argument: AT_FDCWD, N, or N</path> (-y).
func (p *straceProc) dirfd(arg string) string {
	if i := strings.IndexByte(arg, '<'); i >= 0 && strings.HasSuffix(arg, ">") {
		if d := arg[i+1 : len(arg)-1]; filepath.IsAbs(d) {
			return filepath.Clean(d)
		}
		arg = arg[:i]
	}
	if arg == "AT_FDCWD" {
		return p.cwd
	}
	return p.fds[atoiOr(arg, -1)]
}

// leadingInt returns the optional sign and digits that s starts with.
func leadingInt(s string) string {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}

func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// unquoteStrace decodes a string argument as strace prints it: C escapes,
// octal (\ooo) or hex (\xhh) bytes. It fails on NULL, pointers and strings
// strace cut short ("..."...).
func unquoteStrace(arg string) (string, bool) {
	if len(arg) < 2 || arg[0] != '"' {
		return "", false
	}
	var b strings.Builder
	for i := 1; i < len(arg); i++ {
		c := arg[i]
		switch {
		case c == '"':
			return b.String(), !strings.HasPrefix(arg[i+1:], "...")
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		i++
		if i >= len(arg) {
			return "", false
		}
		switch c = arg[i]; c {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'x':
			j := i + 1
			for j < len(arg) && j < i+3 && isHex(arg[j]) {
				j++
			}
			n, err := strconv.ParseUint(arg[i+1:j], 16, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(n))
			i = j - 1
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := i
			for j < len(arg) && j < i+3 && arg[j] >= '0' && arg[j] <= '7' {
				j++
			}
			n, err := strconv.ParseUint(arg[i:j], 8, 8)
			if err != nil {
				return "", false
			}
			b.WriteByte(byte(n))
			i = j - 1
		default: // \\, \", \' and the like
			b.WriteByte(c)
		}
	}
	return "", false
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}
