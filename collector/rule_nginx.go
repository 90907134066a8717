package collector

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// nginxRule adds what an nginx program reads and writes by its configuration: the configuration file its
// build names (--conf-path), every file its include lines name (globs, relative to the configuration's
// directory), the modules its load_module lines load (relative to --prefix) with their closures, the files
// its ssl_* lines name, and the directories of its pid, error_log and access_log files and of its
// compiled-in temporary paths (--http-client-body-temp-path...), which it writes to but does not create.
// What its root and alias lines serve is the site, not the server: the rule names those directories in a
// note (--keep them).
type nginxRule struct{}

func (nginxRule) Name() string { return "nginx" }

func (nginxRule) Summary() string {
	return "an nginx program's configuration with what its include, load_module and ssl_* lines name, and the directories it writes to"
}

// nginxFiles are the directives whose arguments are files the server reads.
var nginxFiles = map[string]bool{"ssl_certificate": true, "ssl_certificate_key": true, "ssl_trusted_certificate": true,
	"ssl_client_certificate": true, "ssl_dhparam": true, "ssl_password_file": true, "auth_basic_user_file": true}

func (nginxRule) Apply(v View, _ RuleOptions) ([]string, error) {
	programs, _ := v.Objects()
	var notes []string
	done := map[string]bool{}
	for _, prog := range programs {
		if path.Base(prog) != "nginx" || done[prog] {
			continue
		}
		done[prog] = true
		args, err := nginxBuildArgs(v, prog)
		if err != nil || args["--conf-path"] == "" {
			continue // not an nginx binary
		}
		n := &nginxWalk{v: v, prog: prog, prefix: args["--prefix"], seen: map[string]bool{}}
		if n.prefix == "" {
			n.prefix = "/usr/local/nginx"
		}
		conf := args["--conf-path"]
		if !path.IsAbs(conf) {
			conf = path.Join(n.prefix, conf)
		}
		n.confDir = path.Dir(conf)
		for _, k := range slices.Sorted(maps.Keys(args)) { // the places it writes: --pid-path, --http-*-temp-path...
			if p := args[k]; strings.HasSuffix(k, "-path") && k != "--conf-path" && k != "--modules-path" && k != "--sbin-path" && path.IsAbs(p) {
				n.dir(path.Dir(p), "its build's "+k)
			}
		}
		if err := n.file(conf, "its build's --conf-path"); err != nil {
			return nil, err
		}
		notes = append(notes, fmt.Sprintf("%s: kept %d configuration files and modules from %s", prog, n.files, conf))
		notes = append(notes, n.notes...)
	}
	return notes, nil
}

// nginxBuildArgs reads the configure arguments an nginx binary holds (what `nginx -V` prints) as a map.
func nginxBuildArgs(v View, prog string) (map[string]string, error) {
	l, err := v.Lookup(prog)
	if err != nil {
		return nil, err
	}
	f, err := v.Root().Open(fsName(l.RealPath))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 64<<20))
	if err != nil {
		return nil, err
	}
	// The configure arguments are one NUL-terminated string (what `nginx -V` prints after "configure
	// arguments:"); --conf-path is always among them.
	i := bytes.Index(data, []byte("--conf-path="))
	if i < 0 {
		return nil, nil
	}
	line := data[bytes.LastIndexByte(data[:i], 0)+1:]
	if end := bytes.IndexByte(line, 0); end >= 0 {
		line = line[:end]
	}
	args := map[string]string{}
	for _, f := range strings.Fields(string(line)) {
		if k, v, ok := strings.Cut(f, "="); ok && strings.HasPrefix(k, "--") {
			args[k] = strings.Trim(v, `'"`)
		}
	}
	return args, nil
}

type nginxWalk struct {
	v               View
	prog            string
	prefix, confDir string
	seen            map[string]bool
	files           int
	notes           []string
}

func (n *nginxWalk) origin(why string) Origin {
	return ruleOrigin("nginx", fmt.Sprintf("%s reads it (%s)", n.prog, why), n.prog)
}

// dir adds a directory of the root (not its content) with its owners and mode, when the root has it.
func (n *nginxWalk) dir(p, why string) {
	l, err := n.v.Lookup(p)
	if err != nil || !l.Mode.IsDir() || n.seen[l.RealPath] {
		return
	}
	n.seen[l.RealPath] = true
	fi, err := n.v.Root().Lstat(fsName(l.RealPath))
	if err != nil {
		return
	}
	m := rootfs.MetaOf(fi)
	o := ruleOrigin("nginx", fmt.Sprintf("%s writes under it (%s)", n.prog, why), n.prog)
	_ = n.v.AddDir(l.RealPath, uint32(fileMode(fi.Mode())), m.UID, m.GID, o)
}

// file adds a configuration file and follows its lines.
func (n *nginxWalk) file(p, why string) error {
	l, err := n.v.Lookup(p)
	if err != nil || !l.Mode.IsRegular() {
		n.notes = append(n.notes, fmt.Sprintf("%s: %s names %s, which the root does not have", n.prog, why, p))
		return nil
	}
	if n.seen[l.RealPath] {
		return nil
	}
	n.seen[l.RealPath] = true
	if err := n.v.AddRootPath(p, n.origin(why)); err != nil {
		return err
	}
	n.files++
	data, err := n.v.ReadRootFile(p)
	if err != nil {
		return nil
	}
	for _, d := range nginxDirectives(string(data)) {
		if len(d) < 2 {
			continue
		}
		arg := d[1]
		at := fmt.Sprintf("%s in %s", d[0], p)
		switch {
		case d[0] == "include":
			if err := n.glob(n.rel(n.confDir, arg), at, n.file); err != nil {
				return err
			}
		case d[0] == "load_module":
			if err := n.glob(n.rel(n.prefix, arg), at, n.readFile); err != nil {
				return err
			}
		case nginxFiles[d[0]] && !strings.Contains(arg, "$") && !strings.HasPrefix(arg, "data:"):
			if err := n.glob(n.rel(n.confDir, arg), at, n.readFile); err != nil {
				return err
			}
		case d[0] == "pid" || d[0] == "error_log" || d[0] == "access_log":
			if arg != "off" && arg != "stderr" && !strings.Contains(arg, ":") && !strings.Contains(arg, "$") {
				n.dir(path.Dir(n.rel(n.prefix, arg)), at)
			}
		case d[0] == "root" || d[0] == "alias":
			if !strings.Contains(arg, "$") {
				n.notes = append(n.notes, fmt.Sprintf("%s: %s serves %s: not kept (the site is not the server; --keep it)", n.prog, at, n.rel(n.prefix, arg)))
			}
		}
	}
	return nil
}

// readFile adds a file the server reads (a module, with its closure; a certificate), not following its lines.
func (n *nginxWalk) readFile(p, why string) error {
	l, err := n.v.Lookup(p)
	if err != nil || !l.Mode.IsRegular() || n.seen[l.RealPath] {
		return nil
	}
	n.seen[l.RealPath] = true
	n.files++
	return n.v.AddRootPath(p, n.origin(why))
}

func (n *nginxWalk) rel(dir, p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(dir, p)
}

// glob calls add for each root path matching pattern (a glob in its last element, as nginx's include has),
// in order; a pattern without glob characters is one path.
func (n *nginxWalk) glob(pattern, why string, add func(p, why string) error) error {
	dir, base := path.Split(pattern)
	if !strings.ContainsAny(base, "*?[") {
		return add(pattern, why)
	}
	l, err := n.v.Lookup(dir)
	if err != nil || !l.Mode.IsDir() {
		return nil
	}
	ents, err := fs.ReadDir(n.v.Root(), fsName(l.RealPath))
	if err != nil {
		return nil
	}
	var names []string
	for _, e := range ents {
		if ok, _ := path.Match(base, e.Name()); ok {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	for _, name := range names {
		if err := add(path.Join(dir, name), why); err != nil {
			return err
		}
	}
	return nil
}

// nginxDirectives splits an nginx configuration into its simple directives' words (name first); block
// openings ("http {") are directives too. Quotes group, '#' starts a comment, '\' escapes.
func nginxDirectives(conf string) [][]string {
	var out [][]string
	var cur []string
	var word strings.Builder
	inWord := false
	end := func() {
		if inWord {
			cur = append(cur, word.String())
			word.Reset()
			inWord = false
		}
	}
	var quote byte
	for i := 0; i < len(conf); i++ {
		c := conf[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(conf) {
				i++
				word.WriteByte(conf[i])
			} else if c == quote {
				quote = 0
			} else {
				word.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == '#' && !inWord:
			for i < len(conf) && conf[i] != '\n' {
				i++
			}
		case c == ';' || c == '{' || c == '}':
			end()
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur = nil
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			end()
		case c == '\\' && i+1 < len(conf):
			i++
			word.WriteByte(conf[i])
			inWord = true
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	return out
}
