package elfdeps

import (
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// searchDir is one directory of a search list, as glibc's fillin_rpath leaves it: with a trailing '/', or ""
// for an empty element (the working directory).
type searchDir struct {
	dir    string
	how    How
	via    *Object
	origin bool // expanded from via's $ORIGIN
}

func (d searchDir) String() string {
	dir := strings.TrimSuffix(d.dir, "/")
	switch {
	case d.dir == "":
		dir = "(working directory)"
	case dir == "":
		dir = "/"
	}
	if d.via != nil {
		return fmt.Sprintf("%s (%s of %s)", dir, strings.ToUpper(string(d.how)), d.via.Path)
	}
	return fmt.Sprintf("%s (%s)", dir, d.how)
}

// glibcLoad is one program's load: glibc's link map, in load order.
type glibcLoad struct {
	r        *Resolver
	res      *Result
	main     *Object
	rtld     *Object
	queue    []*Object // main first, then every object in the order it was mapped (the rtld when first needed)
	byReal   map[string]*Object
	class    elf.Class
	data     elf.Data
	machine  elf.Machine
	cpu      CPU
	subdirs  []string
	legacyOK func(uint64) bool // the CPU's test of a legacy cache entry
	sys      *interpInfo
	llp      []searchDir
	// byName indexes the queue for loaded: each name the first object of the queue matching it; indexed is
	// how much of the queue it covers.
	byName  map[string]*Object
	indexed int
}

// cacheKey is what a cache answer depends on (see search's fromCache).
type cacheKey struct {
	name     string
	class    elf.Class
	data     elf.Data
	machine  elf.Machine
	flags    uint32
	nodeflib bool
	sys      *interpInfo
	how      How
}

// cacheAnswer is the entry a cache gave for a name ("" for none) and what opening it gave.
type cacheAnswer struct {
	path string
	rp   resolved
	f    *File
	oc   outcome
	err  error
}

// outcome of trying one candidate file, as glibc's open_path/open_verify treat it.
type outcome int

const (
	found   outcome = iota
	skip            // ENOENT/EACCES, or a file of another class or machine: try the next candidate
	stop            // any other open error (ELOOP, ENOTDIR...): may stop this search list
	fatally         // the loader gives up the whole load
)

func (r *Resolver) resolveGlibc(res *Result) error {
	s := r.loadGlibc(res)
	// The symbol versions every mapped object requires, checked as ld.so checks them before it runs anything.
	res.Problems = append(res.Problems, checkVersions(s.queue, &r.c.versionsOK)...)
	if errors.Is(r.c.cacheErr, ErrTooLarge) {
		// Not a cache the loader could use as we would: say so rather than resolve as if it were absent.
		res.Problems = append(res.Problems, &LoadError{Name: "ld.so.cache", NeededBy: res.Input.Path, Path: "/etc/ld.so.cache", Err: r.c.cacheErr})
	}
	return nil
}

// loadGlibc runs the program's load and returns its state (for a later dlopen).
func (r *Resolver) loadGlibc(res *Result) *glibcLoad {
	main := res.Input
	f := main.File
	// The kernel maps the program and ld.so without recording their file identity (l_file_id), so a needed
	// path that reaches either file by another name maps it a second time; only `ld.so FILE` records it.
	s := &glibcLoad{r: r, res: res, main: main, byReal: map[string]*Object{},
		class: f.Class, data: f.Data, machine: f.Machine}
	ch := r.choice(f.Machine, f.Class)
	s.cpu, s.subdirs, s.legacyOK = ch.cpu, ch.subdirs, ch.legacyOK
	s.queue = []*Object{main}

	interp, how := f.Interp, HowInterp
	if interp == "" {
		// A shared library given as input: it is loaded as `ld.so FILE` would load it, so $ORIGIN is the
		// directory of the path given and the path is a name of the main map.
		interp, how = defaultInterp(f.Machine, f.Class, f.Flags), HowDefaultInterp
		main.origin = dirOf(main.Path)
		main.nameless = false
		main.names = []string{main.Path}
		s.byReal[main.RealPath] = main
	} else {
		main.names = []string{""} // l_name and l_libname of the kernel-mapped program are ""
	}
	if interp != "" {
		ipath := r.abs(interp)
		rp, err := r.root.resolveFile(ipath) // the same for every program: resolved once
		var ifile *File
		if err == nil {
			ifile, err = r.parse(rp.real)
		}
		switch {
		case err == nil:
			s.rtld = &Object{Name: interp, Path: ipath, RealPath: rp.real, Links: rp.links, How: how,
				File: ifile, Soname: ifile.Soname, Needed: ifile.Needed, names: []string{interp}}
			if ifile.Soname != "" {
				s.rtld.names = append(s.rtld.names, ifile.Soname)
			}
			res.Interp = s.rtld
			s.sys = r.interpInfo(rp.real, ifile)
		case how == HowInterp:
			res.Problems = append(res.Problems, &NotFoundError{Name: interp, NeededBy: main.Path,
				Searched: []string{"PT_INTERP: " + errString(err)}})
		}
	}
	if s.sys == nil {
		s.sys = fallbackInterpInfo(r, f.Machine, f.Class)
	}
	if r.opts.hasLibraryPath && r.opts.libraryPath != "" {
		s.llp = s.decompose(r.opts.libraryPath, ":;", HowLibraryPath, main, false)
	}

	s.mapDeps(0, &res.Problems)
	res.Objects = s.queue[1:]
	if s.rtld != nil && !slices.Contains(res.Objects, s.rtld) {
		if s.rtld.How == HowInterp {
			res.Objects = append(res.Objects, s.rtld) // the kernel maps PT_INTERP whether or not anything needs it
		} else {
			res.Interp = nil // `ld.so LIB` for a library nothing in which needs ld.so
		}
	}
	return s
}

// mapDeps is _dl_map_object_deps: breadth-first over the queue from index from, each object's DT_NEEDED in
// order, new objects appended as they are mapped.
func (s *glibcLoad) mapDeps(from int, problems *[]error) {
	for i := from; i < len(s.queue); i++ {
		o := s.queue[i]
		if o == s.rtld {
			continue // ld.so is self-contained: its DT_NEEDED (none) is never searched
		}
		o.Deps = make([]*Object, len(o.File.Needed))
		for j, name := range o.File.Needed {
			dep, err := s.load(name, o)
			if err != nil {
				*problems = append(*problems, err)
				continue
			}
			o.Deps[j] = dep
		}
	}
}

// dlopenGlibc maps name as dlopen(name) called from the program's own code (the caller's map is the main
// program, so its RPATH/RUNPATH apply) and returns what that adds.
func (r *Resolver) dlopenGlibc(prog *Result, name string) (*Result, error) {
	s := r.loadGlibc(prog)
	before := len(s.queue)
	res := &Result{Input: prog.Input, Flavor: FlavorGlibc, Interp: prog.Interp}
	dep, err := s.load(name, s.main)
	if err != nil {
		res.Problems = append(res.Problems, err)
		return res, nil
	}
	from := before
	if slices.Index(s.queue, dep) < before {
		from = len(s.queue) // already mapped by the program: nothing new
	}
	s.mapDeps(from, &res.Problems)
	res.Objects = slices.Clone(s.queue[before:])
	res.Problems = append(res.Problems, checkVersionsOf(res.Objects, s.queue, &r.c.versionsOK)...)
	return res, nil
}

// dlopenSetGlibc maps every path of paths as the program's dlopen calls would, all of them before any of
// their dependencies: a DT_NEEDED name then matches an object another of them brought in by its SONAME, as
// glibc matches an already loaded object whatever order the program loaded them in.
func (r *Resolver) dlopenSetGlibc(prog *Result, paths []string) *Result {
	s := r.loadGlibc(prog)
	before := len(s.queue)
	res := &Result{Input: prog.Input, Flavor: FlavorGlibc, Interp: prog.Interp}
	for _, p := range paths {
		if _, err := s.load(p, s.main); err != nil {
			res.Problems = append(res.Problems, err)
		}
	}
	s.mapDeps(before, &res.Problems)
	res.Objects = slices.Clone(s.queue[before:])
	res.Problems = append(res.Problems, checkVersionsOf(res.Objects, s.queue, &r.c.versionsOK)...)
	return res
}

// load is glibc's _dl_map_object for a DT_NEEDED name of loader.
func (s *glibcLoad) load(name string, loader *Object) (*Object, error) {
	if o := s.loaded(name); o != nil {
		return o, nil
	}
	if strings.Contains(name, "/") {
		p, ok := s.expand(name, loader)
		if !ok {
			return nil, &NotFoundError{Name: name, NeededBy: loader.Path, Searched: []string{"(dynamic string token has no value)"}}
		}
		p = s.r.abs(p)
		rp, f, oc, err := s.open(p)
		switch oc {
		case found:
			return s.add(name, p, rp, f, loader, searchDir{how: HowPath}), nil
		case fatally:
			return nil, &LoadError{Name: name, NeededBy: loader.Path, Path: p, Err: err}
		}
		nf := &NotFoundError{Name: name, NeededBy: loader.Path, Searched: []string{p}}
		if oc == skip && err != nil {
			nf.WrongClass = []string{p}
		}
		return nil, nf
	}
	return s.search(name, loader)
}

// loaded returns the object already mapped under name (its path, a name it was asked for, or its DT_SONAME):
// the first such object of the queue, else the interpreter (then queued).
func (s *glibcLoad) loaded(name string) *Object {
	s.indexQueue()
	if o := s.byName[name]; o != nil {
		return o
	}
	if r := s.rtld; r != nil && ((!r.nameless && r.Path == name) || slices.Contains(r.names, name) || (r.Soname != "" && r.Soname == name)) {
		s.enqueue(r)
		return r
	}
	return nil
}

// indexQueue adds what was queued since the last call to byName.
func (s *glibcLoad) indexQueue() {
	if s.byName == nil {
		s.byName = map[string]*Object{}
	}
	for ; s.indexed < len(s.queue); s.indexed++ {
		o := s.queue[s.indexed]
		o.qpos = s.indexed
		if !o.nameless {
			s.indexName(o.Path, o)
		}
		for _, n := range o.names {
			s.indexName(n, o)
		}
		if o.Soname != "" {
			s.indexName(o.Soname, o)
		}
	}
}

// indexName records that o matches name, unless an object before it in the queue does.
func (s *glibcLoad) indexName(name string, o *Object) {
	if cur, ok := s.byName[name]; !ok || cur.qpos > o.qpos {
		s.byName[name] = o
	}
}

func (s *glibcLoad) enqueue(o *Object) {
	if !slices.Contains(s.queue, o) {
		s.queue = append(s.queue, o)
	}
}

// add records a file found for name, or returns the object already mapped from the same file.
func (s *glibcLoad) add(name, p string, rp resolved, f *File, loader *Object, d searchDir) *Object {
	if o := s.byReal[rp.real]; o != nil {
		if !slices.Contains(o.names, name) {
			o.names = append(o.names, name)
			if o.qpos < s.indexed && s.queue[o.qpos] == o {
				s.indexName(name, o)
			}
		}
		if o == s.rtld {
			s.enqueue(o)
		}
		return o
	}
	o := &Object{Name: name, Path: p, RealPath: rp.real, Links: rp.links, How: d.how, Dir: strings.TrimSuffix(d.dir, "/"),
		NeededBy: loader.Path, Soname: f.Soname, Needed: f.Needed, File: f,
		names: []string{name}, loader: loader, origin: dirOf(p)}
	o.NeedsConfig = (d.how == HowCache || d.how == HowConf) && !s.sys.searches(dirOf(p))
	if d.dir == "" && d.how != HowPath && d.how != HowCache {
		o.Dir = s.r.opts.workDir
	}
	if d.via != nil {
		o.Via, o.ViaOrigin = d.via.Path, d.origin
	}
	s.byReal[rp.real] = o
	s.queue = append(s.queue, o)
	return o
}

// search looks a name without '/' up as _dl_map_object does.
func (s *glibcLoad) search(name string, loader *Object) (*Object, error) {
	nf := &NotFoundError{Name: name, NeededBy: loader.Path}
	tryIn := func(dirs []searchDir, subdirs []string) (*Object, error) {
		for _, d := range dirs {
			nf.Searched = append(nf.Searched, d.String())
			// open_path: after every subdirectory of a directory failed, an error other than ENOENT or
			// EACCES from the last attempt ends this search list, but only if one of those
			// subdirectories (or the directory itself) exists ("here_any").
			hereAny, lastStops := false, false
			for _, sub := range subdirs {
				p := s.r.abs(d.dir + sub + name)
				hereAny = hereAny || s.r.root.isDir(dirOf(p))
				rp, f, oc, err := s.open(p)
				switch oc {
				case found:
					return s.add(name, p, rp, f, loader, d), nil
				case fatally:
					return nil, &LoadError{Name: name, NeededBy: loader.Path, Path: p, Err: err}
				}
				lastStops = oc == stop
				if err != nil {
					nf.WrongClass = append(nf.WrongClass, p)
				}
			}
			if hereAny && lastStops {
				return nil, nil
			}
		}
		return nil, nil
	}
	try := func(dirs []searchDir) (*Object, error) { return tryIn(dirs, s.subdirs) }

	// DT_RPATH of the loader and up its chain, unless the loader has DT_RUNPATH; then the main program's.
	if !loader.File.HasRunPath {
		didMain := false
		for l := loader; l != nil; l = l.loader {
			if dirs := s.rpathOf(l); len(dirs) > 0 {
				if o, err := try(dirs); o != nil || err != nil {
					return o, err
				}
				didMain = didMain || l == s.main
			}
		}
		if !didMain && loader != s.main {
			if dirs := s.rpathOf(s.main); len(dirs) > 0 {
				if o, err := try(dirs); o != nil || err != nil {
					return o, err
				}
			}
		}
	}
	if o, err := try(s.llp); o != nil || err != nil {
		return o, err
	}
	if o, err := try(s.runpathOf(loader)); o != nil || err != nil {
		return o, err
	}
	nodeflib := loader.File.HasNodeflib()
	// fromCache looks name up in a cache (the root's, or the one ldconfig would make of its ld.so.conf).
	// The answer depends on nothing but the name, the main program's header (the flags the cache entry
	// must have, what open accepts), DF_1_NODEFLIB and the interpreter: it is looked up once per resolver.
	fromCache := func(c *LDCache, what string, how How) (*Object, error) {
		nf.Searched = append(nf.Searched, what)
		mf := s.main.File
		key := cacheKey{name: name, class: mf.Class, data: mf.Data, machine: mf.Machine, flags: mf.Flags, nodeflib: nodeflib, sys: s.sys, how: how}
		v, ok := s.r.cacheHits.Load(key)
		if !ok {
			a := &cacheAnswer{}
			accept := CacheFlagsAccepted(s.class, s.machine, mf.Flags)
			if p, ok := c.LookupFor(name, accept, s.cpu.hwcapsPriority, s.legacyOK); ok && !(nodeflib && s.sys.isSystem(p)) {
				a.path = p
				a.rp, a.f, a.oc, a.err = s.open(p)
			}
			v, _ = s.r.cacheHits.LoadOrStore(key, a)
		}
		a := v.(*cacheAnswer)
		if a.path != "" {
			switch a.oc {
			case found:
				return s.add(name, a.path, a.rp, a.f, loader, searchDir{dir: dirOf(a.path), how: how}), nil
			case fatally:
				return nil, &LoadError{Name: name, NeededBy: loader.Path, Path: a.path, Err: a.err}
			}
		}
		return nil, nil
	}
	if c := s.r.ldCache(); c != nil {
		if o, err := fromCache(c, "/etc/ld.so.cache", HowCache); o != nil || err != nil {
			return o, err
		}
	} else if c := s.r.confCache(s.sys, s.machine); c != nil {
		// No cache in this root, but an ld.so.conf: the cache ldconfig would write (see confCache).
		if o, err := fromCache(c, "/etc/ld.so.conf (the cache ldconfig would make of it)", HowConf); o != nil || err != nil {
			return o, err
		}
	} else if dirs := s.r.confSearchDirs(s.sys); len(dirs) > 0 {
		// No cache, and ldconfig is not modelled for this machine: search what it would cache from
		// /etc/ld.so.conf (the directories and their glibc-hwcaps subdirectories).
		if nodeflib {
			dirs = slices.DeleteFunc(slices.Clone(dirs), func(d searchDir) bool { return s.sys.isSystem(d.dir) })
		}
		var subdirs []string
		for _, h := range s.cpu.HWCaps {
			subdirs = append(subdirs, "glibc-hwcaps/"+h+"/")
		}
		if o, err := tryIn(dirs, append(subdirs, "")); o != nil || err != nil {
			return o, err
		}
	}
	if !nodeflib {
		if o, err := try(s.sys.dirs); o != nil || err != nil {
			return o, err
		}
	}
	return nil, nf
}

// open checks one candidate as glibc's open_verify does.
func (s *glibcLoad) open(p string) (resolved, *File, outcome, error) {
	rp, err := s.r.root.resolveFile(p)
	if err != nil {
		if isNotExist(err) {
			return rp, nil, skip, nil
		}
		return rp, nil, stop, nil
	}
	if !rp.mode.IsRegular() {
		return rp, nil, fatally, errors.New("cannot read file data: not a regular file")
	}
	f, err := s.r.parse(rp.real)
	if errors.Is(err, ErrNotELF) {
		return rp, nil, fatally, fmt.Errorf("invalid ELF header: %w", err)
	}
	if f == nil {
		return rp, nil, fatally, err
	}
	if oc, verr := s.verify(f); oc != found {
		return rp, f, oc, verr
	}
	if err != nil {
		return rp, f, fatally, err // the header passed, what follows it did not
	}
	switch {
	case f.Flags1&uint64(elf.DF_1_PIE) != 0:
		return rp, f, fatally, errors.New("cannot dynamically load position-independent executable")
	case !f.Dynamic:
		return rp, f, fatally, errors.New("object file has no dynamic section")
	}
	return rp, f, found, nil
}

// verify applies glibc 2.36's open_verify header checks, in its order. The loader reads e_type, e_machine,
// e_version and e_phentsize in its own byte order (the main program's), whatever the file's EI_DATA says.
// Another class or machine is skipped silently; anything else wrong is fatal.
func (s *glibcLoad) verify(f *File) (outcome, error) {
	main := s.main.File
	ehsize, phsize, phentOff := 64, 56, 54
	if main.Class == elf.ELFCLASS32 {
		ehsize, phsize, phentOff = 52, 32, 42
	}
	h := f.hdr
	if len(h) < ehsize {
		return fatally, errors.New("file too short")
	}
	var bo binary.ByteOrder = binary.LittleEndian
	if main.Data == elf.ELFDATA2MSB {
		bo = binary.BigEndian
	}
	machine := elf.Machine(bo.Uint16(h[18:]))
	otherMachine := machine != main.Machine || !floatABIMatches(main, f)
	osabi, abiver := elf.OSABI(h[elf.EI_OSABI]), h[elf.EI_ABIVERSION]
	identOK := h[elf.EI_CLASS] == byte(main.Class) && h[elf.EI_DATA] == byte(main.Data) &&
		h[elf.EI_VERSION] == byte(elf.EV_CURRENT) &&
		(osabi == elf.ELFOSABI_NONE || osabi == elf.ELFOSABI_LINUX) &&
		(abiver == 0 || osabi == elf.ELFOSABI_LINUX && abiver < glibcABIMax) &&
		allZero(h[elf.EI_PAD:elf.EI_NIDENT])
	if !identOK {
		switch {
		case h[elf.EI_CLASS] != byte(main.Class):
			return skip, errors.New("wrong ELF class")
		case otherMachine:
			return skip, errors.New("wrong machine")
		case h[elf.EI_DATA] != byte(main.Data):
			return fatally, errors.New("ELF file data encoding does not match the loader's")
		case h[elf.EI_VERSION] != byte(elf.EV_CURRENT):
			return fatally, errors.New("ELF file version ident does not match current one")
		case osabi != elf.ELFOSABI_NONE && osabi != elf.ELFOSABI_LINUX:
			return fatally, errors.New("ELF file OS ABI invalid")
		case !allZero(h[elf.EI_PAD:elf.EI_NIDENT]):
			return fatally, errors.New("nonzero padding in e_ident")
		}
		return fatally, errors.New("ELF file ABI version invalid")
	}
	typ := elf.Type(bo.Uint16(h[16:]))
	switch {
	case bo.Uint32(h[20:]) != uint32(elf.EV_CURRENT):
		return fatally, errors.New("ELF file version does not match current one")
	case otherMachine:
		return skip, errors.New("wrong machine")
	case typ != elf.ET_DYN && typ != elf.ET_EXEC:
		return fatally, errors.New("only ET_DYN and ET_EXEC can be loaded")
	case typ == elf.ET_EXEC:
		return fatally, errors.New("cannot dynamically load executable")
	case int(bo.Uint16(h[phentOff:])) != phsize:
		return fatally, errors.New("ELF file's phentsize not the expected size")
	case f.osABITag > 0:
		return skip, errors.New("ABI note names another OS")
	}
	return found, nil
}

// glibcABIMax is LIBC_ABI_MAX of glibc 2.36 on x86-64: EI_ABIVERSION values below it are accepted with
// ELFOSABI_GNU.
const glibcABIMax = 4

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// floatABIMatches applies the extra e_flags test some loaders make (ARM hard-float vs soft-float).
func floatABIMatches(main, lib *File) bool {
	if main.Machine != elf.EM_ARM {
		return true
	}
	const hard, soft = 0x400, 0x200 // EF_ARM_ABI_FLOAT_HARD, EF_ARM_ABI_FLOAT_SOFT
	return main.Flags&hard == lib.Flags&hard || (lib.Flags&(hard|soft) == 0)
}

func (s *glibcLoad) rpathOf(o *Object) []searchDir {
	if o.rpath == nil {
		var dirs []searchDir
		if o.File.HasRPath {
			dirs = s.decompose(o.File.RPath, ":", HowRPATH, o, true)
		}
		o.rpath = &dirs
	}
	return *o.rpath
}

func (s *glibcLoad) runpathOf(o *Object) []searchDir {
	if o.runpath == nil {
		var dirs []searchDir
		if o.File.HasRunPath {
			dirs = s.decompose(o.File.RunPath, ":", HowRUNPATH, o, true)
		}
		o.runpath = &dirs
	}
	return *o.runpath
}

// decompose splits a search path as fillin_rpath does: an empty element is the working directory; an element
// whose dynamic string token has no value is dropped; trailing slashes are trimmed and one added; a
// directory already in the list is not repeated.
func (s *glibcLoad) decompose(list, seps string, how How, owner *Object, named bool) []searchDir {
	var dirs []searchDir
	for _, el := range splitAny(list, seps) {
		origin := hasOriginDST(el)
		if el != "" {
			var ok bool
			if el, ok = s.expand(el, owner); !ok || el == "" {
				continue
			}
			for len(el) > 1 && strings.HasSuffix(el, "/") {
				el = el[:len(el)-1]
			}
			if !strings.HasSuffix(el, "/") {
				el += "/"
			}
		}
		if slices.ContainsFunc(dirs, func(d searchDir) bool { return d.dir == el }) {
			continue
		}
		d := searchDir{dir: el, how: how}
		if named {
			d.via, d.origin = owner, origin
		}
		dirs = append(dirs, d)
	}
	return dirs
}

// expand substitutes glibc's dynamic string tokens ($ORIGIN, $PLATFORM, $LIB, braced or not) for object o.
// ok is false when a known token has no value (the element is then dropped).
func (s *glibcLoad) expand(in string, o *Object) (string, bool) {
	if !strings.Contains(in, "$") {
		return in, true
	}
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		if in[i] != '$' {
			b.WriteByte(in[i])
			continue
		}
		rest := in[i+1:]
		var repl string
		var n int
		if n = isDST(rest, "ORIGIN"); n > 0 {
			repl = o.origin
		} else if n = isDST(rest, "PLATFORM"); n > 0 {
			repl = s.cpu.Platform
		} else if n = isDST(rest, "LIB"); n > 0 {
			repl = s.sys.lib
		}
		if n == 0 {
			b.WriteByte('$')
			continue
		}
		if repl == "" {
			return "", false
		}
		b.WriteString(repl)
		i += n
	}
	return b.String(), true
}

// hasOriginDST reports whether a search path element uses $ORIGIN (braced or not).
func hasOriginDST(el string) bool {
	for i := strings.IndexByte(el, '$'); i >= 0; i = strings.IndexByte(el, '$') {
		if isDST(el[i+1:], "ORIGIN") > 0 {
			return true
		}
		el = el[i+1:]
	}
	return false
}

// isDST is glibc's is_dst: the length of NAME or {NAME} at the start of in, 0 if absent or if an unbraced
// NAME runs on into identifier characters.
func isDST(in, name string) int {
	curly := strings.HasPrefix(in, "{")
	if curly {
		in = in[1:]
	}
	if !strings.HasPrefix(in, name) {
		return 0
	}
	next := byte(0)
	if len(in) > len(name) {
		next = in[len(name)]
	}
	if curly {
		if next != '}' {
			return 0
		}
		return len(name) + 2
	}
	if next >= 'A' && next <= 'Z' || next >= 'a' && next <= 'z' || next >= '0' && next <= '9' || next == '_' {
		return 0
	}
	return len(name)
}

// dirOf is the directory part of p as the loader computes $ORIGIN: everything before the last '/', "/" for
// a file at the top, with no cleaning.
func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	switch {
	case i < 0:
		return "."
	case i == 0:
		return "/"
	}
	return p[:i]
}

func errString(err error) string {
	if errors.Is(err, io.EOF) {
		return "unexpected end of file"
	}
	return err.Error()
}

// splitAny splits s at every byte in seps, keeping empty elements (as strsep does).
func splitAny(s, seps string) []string {
	var out []string
	for {
		i := strings.IndexAny(s, seps)
		if i < 0 {
			return append(out, s)
		}
		out = append(out, s[:i])
		s = s[i+1:]
	}
}
