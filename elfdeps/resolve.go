// Package elfdeps names exactly the files a Linux dynamic loader (glibc's ld.so or musl's) maps for a
// program, by reading ELF program headers and the dynamic section only: nothing is ever executed.
//
// Resolution happens inside a root (the host's "/" or any sysroot, another architecture included), through an
// fs.FS whose symbolic links are resolved as under chroot: nothing outside the root is ever read.
package elfdeps

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// How says why the loader picked a file.
type How string

const (
	HowInput         How = "input"           // the file asked about
	HowInterp        How = "interpreter"     // PT_INTERP
	HowDefaultInterp How = "rtld"            // the machine's default interpreter, for an input without PT_INTERP
	HowPath          How = "path"            // a needed name holding '/', opened as is
	HowRPATH         How = "rpath"           // DT_RPATH of Via (itself or inherited)
	HowLibraryPath   How = "ld_library_path" // LD_LIBRARY_PATH
	HowRUNPATH       How = "runpath"         // DT_RUNPATH of Via
	HowCache         How = "ld.so.cache"     // the root's /etc/ld.so.cache
	HowDefault       How = "default"         // the loader's built-in system directories
	HowConf          How = "ld.so.conf"      // a root without ld.so.cache: where ldconfig would have cached it from
	HowMuslPath      How = "musl path"       // musl's /etc/ld-musl-ARCH.path or its built-in path
)

// Flavor is the dynamic loader family an object is loaded by.
type Flavor string

const (
	FlavorStatic Flavor = "static"
	FlavorGlibc  Flavor = "glibc"
	FlavorMusl   Flavor = "musl"
)

// Object is one file the loader maps.
type Object struct {
	Name     string `json:"name"`            // the needed name (DT_NEEDED, PT_INTERP, or the input path)
	Path     string `json:"path"`            // absolute path inside the root, as the loader opens it
	RealPath string `json:"realpath"`        // Path with every symbolic link resolved
	Links    []Link `json:"links,omitempty"` // symbolic links crossed from Path to RealPath, in order
	How      How    `json:"how"`             // why this file
	Dir      string `json:"dir,omitempty"`   // the search directory that held it
	Via      string `json:"via,omitempty"`   // the object whose RPATH/RUNPATH gave Dir
	// ViaOrigin says Dir came from $ORIGIN of Via: the object sits where it does relative to Via, and moves
	// with it.
	ViaOrigin bool   `json:"via_origin,omitempty"`
	NeededBy  string `json:"needed_by,omitempty"` // the object whose DT_NEEDED loaded it first
	// NeedsConfig says the loader reached the object only through its configuration: glibc's
	// /etc/ld.so.cache (or, in a root without one, the directories of /etc/ld.so.conf) or musl's
	// /etc/ld-musl-ARCH.path, in a directory its built-in search does not cover. A root holding the object
	// without that configuration does not load it.
	NeedsConfig bool     `json:"needs_config,omitempty"`
	Soname      string   `json:"soname,omitempty"`
	Needed      []string `json:"needed,omitempty"`

	// Deps are the objects Needed resolved to, index for index (nil where a name was not found).
	Deps []*Object `json:"-"`
	// File is the parsed ELF object.
	File *File `json:"-"`

	names    []string // every name it was asked for (glibc's l_libname)
	nameless bool     // the main program: its path is no name (glibc's l_name is "")
	qpos     int      // its place in the load's queue, once indexed (glibcLoad.indexQueue)
	loader   *Object
	origin   string // $ORIGIN
	rpath    *[]searchDir
	runpath  *[]searchDir
}

// Result is the closure of one input.
type Result struct {
	Input  *Object
	Flavor Flavor
	Interp *Object // nil for a static input
	// Objects are every object mapped besides Input, in the loader's order (breadth-first; the interpreter
	// where it is first needed, or last).
	Objects []*Object
	// Problems are *NotFoundError and *LoadError values: what a real run would fail on.
	Problems []error
}

// Err returns the problems joined, or nil.
func (r *Result) Err() error { return errors.Join(r.Problems...) }

// Paths returns the sorted, unique paths of every object besides the input, as the loader opens them.
func (r *Result) Paths() []string {
	seen := map[string]bool{}
	var out []string
	for _, o := range r.Objects {
		if !seen[o.Path] {
			seen[o.Path] = true
			out = append(out, o.Path)
		}
	}
	slices.Sort(out)
	return out
}

// Resolver resolves closures inside one root. It caches parsed objects, directory listings and the
// ld.so.cache, and is safe for concurrent use.
type Resolver struct {
	root *root
	opts options
	c    *caches // shared with every Resolver made from this one by WithCPU

	cpuMu sync.Mutex
	cpus  map[[2]int]CPU // (machine, class) -> the CPU choice, made once
	// choices are what a load derives from each CPU choice (its subdirectories, its legacy cache test).
	choices map[[2]int]*cpuChoice
	// cacheHits are ld.so.cache answers for a name, by what the answer depends on (cacheKey).
	cacheHits sync.Map
}

// caches are what a root's resolvers learn once: parsed objects, interpreters' built-in directories, the
// ld.so.cache and ld.so.conf. None of it depends on the CPU choice.
type caches struct {
	mu      sync.Mutex
	objs    map[string]*parsed // real path -> parsed file
	interps map[string]*interpInfo

	cacheOnce sync.Once
	cache     *LDCache
	cacheErr  error

	confOnce sync.Once
	conf     []string // /etc/ld.so.conf directories, for a root without a cache
	hasConf  bool

	// confCaches are, for a root without a cache, the cache ldconfig would build from ld.so.conf and an
	// interpreter's system directories, by the interpreter's dirs (nil when it cannot be built).
	confCaches map[*interpInfo]*confCache

	versionsOK sync.Map // *File -> *verMemo: version needs found satisfied (checkVersionsOf)
}

type confCache struct {
	once  sync.Once
	cache *LDCache
}

type parsed struct {
	once sync.Once
	f    *File
	err  error
}

// New returns a Resolver over fsys. Symbolic links are followed only when fsys implements fs.ReadLinkFS
// (os.DirFS and fstest.MapFS do).
func New(fsys fs.FS, opts ...Option) (*Resolver, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	c := &caches{objs: map[string]*parsed{}, interps: map[string]*interpInfo{}}
	return &Resolver{root: newRoot(fsys), opts: o, c: c, cpus: map[[2]int]CPU{}, choices: map[[2]int]*cpuChoice{}}, nil
}

// WithCPU returns a Resolver over the same root with the same options but another CPU choice, sharing r's
// caches: resolving under several CPU choices (every glibc-hwcaps variant of an image) reads each object,
// directory and ld.so.cache once.
func (r *Resolver) WithCPU(choose func(elf.Machine, elf.Class) CPU) *Resolver {
	o := r.opts
	o.cpu = choose
	return &Resolver{root: r.root, opts: o, c: r.c, cpus: map[[2]int]CPU{}, choices: map[[2]int]*cpuChoice{}}
}

// NewDir returns a Resolver over the directory tree at dir ("/" for this machine).
func NewDir(dir string, opts ...Option) (*Resolver, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("opening root: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("opening root %s: not a directory", dir)
	}
	return New(hostDir(dir), opts...)
}

// parse returns the parsed ELF object at a resolved path, reading it once per Resolver.
func (r *Resolver) parse(real string) (*File, error) {
	r.c.mu.Lock()
	p := r.c.objs[real]
	if p == nil {
		p = &parsed{}
		r.c.objs[real] = p
	}
	r.c.mu.Unlock()
	p.once.Do(func() {
		fh, size, ra, err := r.root.open(real)
		if err != nil {
			p.err = err
			return
		}
		defer fh.Close()
		p.f, p.err = parseELFPartial(ra, size)
	})
	return p.f, p.err
}

// CPU returns the CPU choice the resolver makes for objects of machine m and class c.
func (r *Resolver) CPU(m elf.Machine, c elf.Class) CPU { return r.cpu(m, c) }

// cpuChoice is a CPU choice with what glibc derives from it once: the subdirectories tried in every search
// directory and the test of a legacy cache entry.
type cpuChoice struct {
	cpu      CPU
	subdirs  []string
	legacyOK func(uint64) bool
}

// choice returns the CPU choice for machine m and class c with what follows from it, made once.
func (r *Resolver) choice(m elf.Machine, c elf.Class) *cpuChoice {
	cpu := r.cpu(m, c)
	key := [2]int{int(m), int(c)}
	r.cpuMu.Lock()
	defer r.cpuMu.Unlock()
	ch := r.choices[key]
	if ch == nil {
		ch = &cpuChoice{cpu: cpu, subdirs: cpu.subdirs(), legacyOK: cpu.legacyCacheOK(m, c)}
		r.choices[key] = ch
	}
	return ch
}

// cpu returns the CPU choice for objects of machine m and class c, asking the chooser once per Resolver
// (HostCPU reads /proc/cpuinfo).
func (r *Resolver) cpu(m elf.Machine, c elf.Class) CPU {
	key := [2]int{int(m), int(c)}
	r.cpuMu.Lock()
	defer r.cpuMu.Unlock()
	cpu, ok := r.cpus[key]
	if !ok {
		cpu = r.opts.cpu(m, c)
		r.cpus[key] = cpu
	}
	return cpu
}

// abs makes a path absolute against the working directory. It drops "." components of a relative path
// (which never change what a path names) but keeps ".." as the loader does: "dir/link/.." is not "dir".
func (r *Resolver) abs(p string) string {
	if strings.HasPrefix(p, "/") {
		return p
	}
	var b strings.Builder
	b.WriteString(strings.TrimSuffix(r.opts.workDir, "/"))
	for _, c := range strings.Split(p, "/") {
		if c != "." && c != "" {
			b.WriteByte('/')
			b.WriteString(c)
		}
	}
	if b.Len() == 0 {
		return "/"
	}
	return b.String()
}

// ResolveAll resolves every input, using every core, and returns results and errors index for index.
func (r *Resolver) ResolveAll(inputs []string) ([]*Result, []error) {
	res := make([]*Result, len(inputs))
	errs := make([]error, len(inputs))
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(1, min(runtime.GOMAXPROCS(0), len(inputs))) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				res[i], errs[i] = r.Resolve(inputs[i])
			}
		}()
	}
	for i := range inputs {
		next <- i
	}
	close(next)
	wg.Wait()
	return res, errs
}

// Resolve returns the closure of the ELF file at p (absolute inside the root, or relative to the working
// directory). An error means the input itself cannot be used (missing, not ELF, malformed); libraries that
// cannot be found are reported in Result.Problems, with everything that was found.
func (r *Resolver) Resolve(p string) (*Result, error) {
	in := r.abs(p)
	rp, err := r.root.resolve(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, unwrapErrno(err))
	}
	if rp.mode.IsDir() {
		return nil, fmt.Errorf("%s: is a directory", p)
	}
	if !rp.mode.IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", p)
	}
	f, err := r.parse(rp.real)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, fmt.Errorf("%s: %w: ELF type %v is neither a program nor a shared object", p, ErrBadELF, f.Type)
	}
	main := &Object{Name: p, Path: in, RealPath: rp.real, Links: rp.links, How: HowInput, File: f,
		Soname: f.Soname, Needed: f.Needed, nameless: true, origin: path.Dir(rp.real)}
	res := &Result{Input: main, Flavor: FlavorStatic}
	if f.Interp == "" && len(f.Needed) == 0 {
		return res, nil // static (or static-pie): the kernel maps it alone
	}
	if isMuslInterp(f.Interp) {
		res.Flavor = FlavorMusl
		return res, r.resolveMusl(res)
	}
	res.Flavor = FlavorGlibc
	return res, r.resolveGlibc(res)
}

func isMuslInterp(interp string) bool {
	return strings.HasPrefix(path.Base(interp), "ld-musl-")
}

// defaultInterp is the PT_INTERP glibc's toolchain writes for a machine: the loader that runs an input which
// has none of its own (a shared library).
func defaultInterp(m elf.Machine, c elf.Class, flags uint32) string {
	switch m {
	case elf.EM_X86_64:
		if c == elf.ELFCLASS32 {
			return "/libx32/ld-linux-x32.so.2"
		}
		return "/lib64/ld-linux-x86-64.so.2"
	case elf.EM_386:
		return "/lib/ld-linux.so.2"
	case elf.EM_AARCH64:
		return "/lib/ld-linux-aarch64.so.1"
	case elf.EM_ARM:
		if flags&0x400 != 0 { // EF_ARM_ABI_FLOAT_HARD
			return "/lib/ld-linux-armhf.so.3"
		}
		return "/lib/ld-linux.so.3"
	case elf.EM_PPC64:
		return "/lib64/ld64.so.2"
	case elf.EM_S390:
		return "/lib/ld64.so.1"
	case elf.EM_RISCV:
		return "/lib/ld-linux-riscv64-lp64d.so.1"
	}
	return ""
}

// Lookup is a path looked up inside the root.
type Lookup struct {
	Path     string      // the path asked about, made absolute
	RealPath string      // every symbolic link resolved, inside the root
	Links    []Link      // the links crossed, in order
	Mode     fs.FileMode // type bits of RealPath
}

// Lookup resolves p (absolute inside the root, or relative to the working directory) as the kernel would
// under chroot, without reading past the root. Callers that copy files out of a root use it to learn every
// symbolic link they must reproduce.
func (r *Resolver) Lookup(p string) (Lookup, error) {
	in := r.abs(p)
	rp, err := r.root.resolve(in)
	if err != nil {
		return Lookup{}, fmt.Errorf("%s: %w", p, unwrapErrno(err))
	}
	return Lookup{Path: in, RealPath: rp.real, Links: rp.links, Mode: rp.mode}, nil
}
