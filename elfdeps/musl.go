package elfdeps

import (
	"errors"
	"io"
	"path"
	"slices"
	"strings"
	"syscall"
)

// muslLoad is one program's load by musl's ldso/dynlink.c load_library.
type muslLoad struct {
	r      *Resolver
	res    *Result
	main   *Object
	ldso   *Object
	list   []*Object // main first, then in load order (ldso where first needed)
	byReal map[string]*Object
	short  map[*Object]string // shortname: basename of a searched path
	parent map[*Object]*Object
	rpaths map[*Object]*string
	// originDirs are the search directories an object's $ORIGIN expanded to, per object.
	originDirs map[*Object]map[string]bool
	sysPath    *string
	// hasPathFile: the root has the interpreter's ld-musl-ARCH.path, which replaces the default path.
	hasPathFile bool
}

// muslDefaultPath is musl's search path when there is no ld-musl-ARCH.path.
const muslDefaultPath = "/lib:/usr/local/lib:/usr/lib"

// MuslPathFile returns the path file musl's interpreter interp reads its search path from:
// <prefix>/etc/ld-musl-ARCH.path, prefix being the interpreter path less its last two components
// ("/lib/ld-musl-x86_64.so.1": "/etc/ld-musl-x86_64.path").
func MuslPathFile(interp string) string {
	prefix := ""
	if strings.HasPrefix(interp, "/") {
		t, z := 0, 0
		for i := 0; i < len(interp); i++ {
			if interp[i] == '/' {
				z, t = t, i
			}
		}
		prefix = interp[:z]
	}
	arch := strings.TrimSuffix(strings.TrimPrefix(path.Base(interp), "ld-musl-"), ".so.1")
	return prefix + "/etc/ld-musl-" + arch + ".path"
}

// muslReserved are the names musl's loader answers with itself: lib{c,pthread,rt,m,dl,util,xnet}.*.
var muslReserved = []string{"c.", "pthread.", "rt.", "m.", "dl.", "util.", "xnet."}

func (r *Resolver) resolveMusl(res *Result) error {
	main := res.Input
	s := &muslLoad{r: r, res: res, main: main, list: []*Object{main}, byReal: map[string]*Object{main.RealPath: main},
		short: map[*Object]string{}, parent: map[*Object]*Object{}, rpaths: map[*Object]*string{},
		originDirs: map[*Object]map[string]bool{}}
	interp := main.File.Interp
	ipath := r.abs(interp)
	rp, err := r.root.resolveFile(ipath)
	if err == nil && !rp.mode.IsRegular() {
		err = errors.New("not a regular file")
	}
	var f *File
	if err == nil {
		f, err = r.parse(rp.real)
	}
	if err != nil {
		res.Problems = append(res.Problems, &NotFoundError{Name: interp, NeededBy: main.Path,
			Searched: []string{"PT_INTERP: " + errString(err)}})
		return nil
	}
	s.ldso = &Object{Name: interp, Path: ipath, RealPath: rp.real, Links: rp.links, How: HowInterp, File: f,
		Soname: f.Soname, Needed: f.Needed}
	s.short[s.ldso] = "libc.so"
	s.byReal[rp.real] = s.ldso
	res.Interp = s.ldso

	// load_deps walks the list as it grows: breadth-first.
	for i := 0; i < len(s.list); i++ {
		o := s.list[i]
		if o == s.ldso {
			continue
		}
		o.Deps = make([]*Object, len(o.File.Needed))
		for j, name := range o.File.Needed {
			dep, err := s.load(name, o)
			if err != nil {
				res.Problems = append(res.Problems, err)
				continue
			}
			o.Deps[j] = dep
		}
	}
	res.Objects = s.list[1:]
	if !slices.Contains(res.Objects, s.ldso) {
		res.Objects = append(res.Objects, s.ldso)
	}
	return nil
}

func (s *muslLoad) self(name string) bool {
	if name == s.ldso.Name {
		return true
	}
	if strings.HasPrefix(name, "lib") {
		for _, r := range muslReserved {
			if strings.HasPrefix(name[3:], r) {
				return true
			}
		}
	}
	return false
}

func (s *muslLoad) append(o *Object) {
	if !slices.Contains(s.list, o) {
		s.list = append(s.list, o)
	}
}

func (s *muslLoad) load(name string, neededBy *Object) (*Object, error) {
	if s.self(name) {
		s.append(s.ldso)
		return s.ldso, nil
	}
	nf := &NotFoundError{Name: name, NeededBy: neededBy.Path}
	var p string
	var rp resolved
	var d searchDir
	if strings.Contains(name, "/") {
		p = s.r.abs(name)
		var err error
		if rp, err = s.r.root.resolve(p); err != nil {
			nf.Searched = []string{p}
			return nil, nf
		}
		d = searchDir{how: HowPath}
	} else {
		for _, o := range s.list {
			if sn, ok := s.short[o]; ok && sn == name {
				return o, nil
			}
		}
		if len(name) > 255 {
			return nil, nf
		}
		var ok, hard bool
		try := func(list string, how How, via *Object) {
			if ok || hard {
				return
			}
			p, rp, d, ok, hard = s.pathOpen(name, list, how, via, nf)
		}
		if s.r.opts.hasLibraryPath {
			try(s.r.opts.libraryPath, HowLibraryPath, nil)
		}
		for o := neededBy; o != nil && !ok && !hard; o = s.parent[o] {
			if rpath := s.rpathOf(o); rpath != nil {
				how := HowRPATH
				if o.File.HasRunPath {
					how = HowRUNPATH
				}
				try(*rpath, how, o)
			}
		}
		try(s.systemPath(), HowMuslPath, nil)
		if !ok {
			return nil, nf
		}
	}
	if !rp.mode.IsRegular() {
		return nil, &LoadError{Name: name, NeededBy: neededBy.Path, Path: p, Err: errors.New("not a regular file")}
	}
	if o := s.byReal[rp.real]; o != nil {
		if _, ok := s.short[o]; !ok && d.how != HowPath {
			s.short[o] = path.Base(o.Path)
		}
		return o, nil
	}
	f, err := s.r.parse(rp.real)
	if err == nil && f.Class != s.main.File.Class {
		// musl maps the first file it can open: another class is fatal ("Exec format error"), not skipped.
		// It does not look at e_machine at all, so neither do we.
		err = errors.New("wrong ELF class (musl does not skip it)")
	}
	if err != nil {
		return nil, &LoadError{Name: name, NeededBy: neededBy.Path, Path: p, Err: err}
	}
	o := &Object{Name: name, Path: p, RealPath: rp.real, Links: rp.links, How: d.how, Dir: strings.TrimSuffix(d.dir, "/"),
		NeededBy: neededBy.Path, Soname: f.Soname, Needed: f.Needed, File: f}
	if d.via != nil {
		o.Via, o.ViaOrigin = d.via.Path, d.origin
	}
	if d.how == HowMuslPath && s.hasPathFile {
		dir := strings.TrimSuffix(d.dir, "/")
		o.NeedsConfig = !slices.Contains(strings.Split(muslDefaultPath, ":"), dir)
	}
	if d.how != HowPath {
		s.short[o] = path.Base(p)
	}
	s.parent[o] = neededBy
	s.byReal[rp.real] = o
	s.list = append(s.list, o)
	return o, nil
}

// pathOpen is musl's path_open: elements separated by ':' or '\n' (runs of separators skipped), each tried as
// DIR/NAME; ENOENT, ENOTDIR, EACCES and ENAMETOOLONG go on, any other failure stops the whole search.
func (s *muslLoad) pathOpen(name, list string, how How, via *Object, nf *NotFoundError) (string, resolved, searchDir, bool, bool) {
	for {
		list = strings.TrimLeft(list, ":\n")
		if list == "" {
			return "", resolved{}, searchDir{}, false, false
		}
		n := strings.IndexAny(list, ":\n")
		if n < 0 {
			n = len(list)
		}
		dir := list[:n]
		list = list[n:]
		d := searchDir{dir: dir + "/", how: how, via: via, origin: via != nil && s.originDirs[via][dir]}
		nf.Searched = append(nf.Searched, d.String())
		p := s.r.abs(dir + "/" + name)
		rp, err := s.r.root.resolveFile(p)
		if err == nil {
			return p, rp, d, true, false
		}
		if !isNotExist(err) && !errors.Is(err, syscall.ENOTDIR) {
			return "", resolved{}, searchDir{}, false, true
		}
	}
}

// rpathOf is musl's fixup_rpath: DT_RUNPATH if present, else DT_RPATH; only $ORIGIN and ${ORIGIN} are
// expanded and any other '$' disables the path; the main program's origin is its real path.
func (s *muslLoad) rpathOf(o *Object) *string {
	if p, ok := s.rpaths[o]; ok {
		return p
	}
	var out *string
	orig, has := o.File.RunPath, o.File.HasRunPath
	if !has {
		orig, has = o.File.rawRPath, o.File.rawRPath != "" || o.File.HasRPath
	}
	if has {
		ok := true
		for rest := orig; ok; {
			i := strings.IndexByte(rest, '$')
			if i < 0 {
				break
			}
			ok = strings.HasPrefix(rest[i:], "$ORIGIN") || strings.HasPrefix(rest[i:], "${ORIGIN}")
			rest = rest[i+1:]
		}
		if ok {
			origin := o.Path
			if o == s.main {
				origin = o.RealPath
			}
			if i := strings.LastIndexByte(origin, '/'); i >= 0 {
				origin = origin[:i]
			} else {
				origin = "."
			}
			var b strings.Builder
			rest := orig
			for {
				i := strings.IndexByte(rest, '$')
				if i < 0 {
					break
				}
				b.WriteString(rest[:i])
				b.WriteString(origin)
				if strings.HasPrefix(rest[i:], "${") {
					rest = rest[i+9:]
				} else {
					rest = rest[i+7:]
				}
			}
			b.WriteString(rest)
			v := b.String()
			out = &v
			// Which directories came from $ORIGIN: expand each element alone.
			dirs := map[string]bool{}
			for _, el := range strings.FieldsFunc(orig, func(r rune) bool { return r == ':' || r == '\n' }) {
				if strings.Contains(el, "$") {
					dirs[strings.NewReplacer("${ORIGIN}", origin, "$ORIGIN", origin).Replace(el)] = true
				}
			}
			s.originDirs[o] = dirs
		}
	}
	s.rpaths[o] = out
	return out
}

// systemPath is musl's sys_path: <prefix>/etc/ld-musl-ARCH.path, prefix being the interpreter path less its
// last two components; "/lib:/usr/local/lib:/usr/lib" when that file does not exist.
func (s *muslLoad) systemPath() string {
	if s.sysPath != nil {
		return *s.sysPath
	}
	file := MuslPathFile(s.ldso.Name)
	v := muslDefaultPath
	if rp, err := s.r.root.resolve(file); err == nil {
		v, s.hasPathFile = "", true
		if fh, size, ra, err := s.r.root.open(rp.real); err == nil {
			data := make([]byte, min(size, maxSegment))
			if _, err := ra.ReadAt(data, 0); err == nil || err == io.EOF {
				v = string(data)
			}
			fh.Close()
		}
	} else if !isNotExist(err) {
		v = ""
	}
	s.sysPath = &v
	return v
}
