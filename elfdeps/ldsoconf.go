package elfdeps

import (
	"bufio"
	"debug/elf"
	"path"
	"slices"
	"strings"
)

// maxConfIncludeDepth bounds include recursion in ld.so.conf (an include cycle must not hang us), and
// maxConfFiles how many files are read in all (each once: a file including itself three times must not
// fan out 3^16 parses).
const (
	maxConfIncludeDepth = 16
	maxConfFiles        = 1000
)

// confDirs reads the root's /etc/ld.so.conf as glibc's ldconfig parse_conf does: one directory per line,
// '#' starts a comment, "include PATTERN..." reads every file matching each glob (relative patterns are
// relative to the including file's directory), "hwcap" lines are ignored, a "=TYPE" suffix on a directory is
// dropped. Directories come out in order, without repeats.
func (r *Resolver) confDirs() []string {
	var dirs []string
	seen := map[string]bool{}
	read := map[string]bool{}
	var parse func(file string, depth int)
	parse = func(file string, depth int) {
		if depth > maxConfIncludeDepth || len(read) >= maxConfFiles {
			return
		}
		if rp, err := r.root.resolve(file); err == nil {
			if read[rp.real] {
				return
			}
			read[rp.real] = true
		}
		data, err := r.readSmall(file)
		if err != nil {
			return
		}
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			line := sc.Text()
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			fields := strings.Fields(line)
			if len(fields) == 0 {
				continue
			}
			switch fields[0] {
			case "include":
				for _, pat := range fields[1:] {
					if !strings.HasPrefix(pat, "/") {
						pat = path.Join(path.Dir(file), pat)
					}
					for _, m := range r.root.glob(pat) {
						parse(m, depth+1)
					}
				}
				continue
			case "hwcap":
				continue
			}
			d := strings.TrimSpace(line)
			if i := strings.IndexByte(d, '='); i >= 0 {
				d = d[:i]
			}
			d = path.Clean(d)
			if strings.HasPrefix(d, "/") && !seen[d] {
				seen[d] = true
				dirs = append(dirs, d)
			}
		}
	}
	parse("/etc/ld.so.conf", 0)
	return dirs
}

// readSmall reads a whole small file inside the root.
func (r *Resolver) readSmall(p string) ([]byte, error) {
	rp, err := r.root.resolve(p)
	if err != nil {
		return nil, err
	}
	fh, size, ra, err := r.root.open(rp.real)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data := make([]byte, min(size, maxSegment))
	n, err := ra.ReadAt(data, 0)
	if n == len(data) {
		err = nil
	}
	return data[:n], err
}

// glob matches an absolute pattern inside the root, component by component, as glob(3) does (sorted).
func (r *root) glob(pattern string) []string {
	matches := []string{"/"}
	for _, comp := range strings.Split(strings.Trim(pattern, "/"), "/") {
		if comp == "" {
			continue
		}
		var next []string
		for _, m := range matches {
			rp, err := r.resolve(m)
			if err != nil || !rp.mode.IsDir() {
				continue
			}
			ents, err := r.list(rp.real)
			if err != nil {
				continue
			}
			names := make([]string, 0, len(ents))
			for name := range ents {
				if ok, _ := path.Match(comp, name); ok && (name[0] != '.' || comp[0] == '.') {
					names = append(names, name)
				}
			}
			slices.Sort(names)
			for _, n := range names {
				next = append(next, path.Join(m, n))
			}
		}
		matches = next
	}
	if len(matches) == 1 && matches[0] == "/" {
		return nil
	}
	return matches
}

// loadConf reads the root's /etc/ld.so.conf once.
func (r *Resolver) loadConf() {
	r.c.confOnce.Do(func() {
		if _, err := r.root.resolve("/etc/ld.so.conf"); err == nil {
			r.c.conf, r.c.hasConf = r.confDirs(), true
		}
	})
}

// ConfDirs returns the directories of the root's /etc/ld.so.conf and the files it includes, in the order
// ldconfig adds them (each once, without a trailing '/'), or nil when the root has no /etc/ld.so.conf.
func (r *Resolver) ConfDirs() []string {
	r.loadConf()
	out := make([]string, 0, len(r.c.conf))
	for _, d := range r.c.conf {
		if d = strings.TrimRight(d, "/"); d != "" && !slices.Contains(out, d) {
			out = append(out, d)
		}
	}
	return out
}

// SystemDirs returns the built-in search directories of the glibc interpreter at interp in the root, read
// out of the interpreter itself (without a trailing '/'). Debian's ldconfig has the same list built in.
func (r *Resolver) SystemDirs(interp string) ([]string, error) {
	rp, err := r.root.resolve(r.abs(interp))
	if err != nil {
		return nil, err
	}
	f, err := r.parse(rp.real)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range r.interpInfo(rp.real, f).dirs {
		out = append(out, strings.TrimSuffix(d.dir, "/"))
	}
	return out, nil
}

// confCache is, for a root that has /etc/ld.so.conf but no /etc/ld.so.cache (an extracted root, whose
// maintainer scripts never ran ldconfig), the cache `ldconfig` would write there: LDConfig.Build over the
// configured directories, then the interpreter's system directories (Debian's ldconfig has the same built
// in), as the ldcache rule writes it into an image. It is nil when the root has no ld.so.conf or ldconfig
// is not modelled for the machine (then confSearchDirs is searched instead).
func (r *Resolver) confCache(sys *interpInfo, m elf.Machine) *LDCache {
	r.loadConf()
	if !r.c.hasConf {
		return nil
	}
	r.c.mu.Lock()
	if r.c.confCaches == nil {
		r.c.confCaches = map[*interpInfo]*confCache{}
	}
	cc := r.c.confCaches[sys]
	if cc == nil {
		cc = &confCache{}
		r.c.confCaches[sys] = cc
	}
	r.c.mu.Unlock()
	cc.once.Do(func() {
		dirs := r.ConfDirs()
		for _, d := range sys.dirs {
			dirs = append(dirs, strings.TrimSuffix(d.dir, "/"))
		}
		c, err := LDConfig{Dirs: dirs, Machine: m}.Build(r.root.fsys)
		if err != nil {
			r.opts.log.Warn("cannot build the cache ldconfig would make; searching ld.so.conf's directories", "err", err)
			return
		}
		cc.cache = c
	})
	return cc.cache
}

// confSearchDirs is the search list used in place of the cache for a root that has /etc/ld.so.conf but no
// /etc/ld.so.cache: what `ldconfig` would put in the cache, searched directly: the configured directories,
// then ldconfig's trusted directories (the first two system directories, slibdir and libdir).
func (r *Resolver) confSearchDirs(sys *interpInfo) []searchDir {
	r.loadConf()
	if !r.c.hasConf {
		return nil
	}
	var out []searchDir
	add := func(d string) {
		d = strings.TrimSuffix(d, "/") + "/"
		if !slices.ContainsFunc(out, func(s searchDir) bool { return s.dir == d }) {
			out = append(out, searchDir{dir: d, how: HowConf})
		}
	}
	for _, d := range r.c.conf {
		add(d)
	}
	for i, d := range sys.dirs {
		if i < 2 {
			add(d.dir)
		}
	}
	return out
}
