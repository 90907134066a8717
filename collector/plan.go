package collector

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/scratchpack/scratchpack/collector/dpkg"
	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/elfdeps"
)

// Planner collects what programs need from a root (a directory or an image, read only through its
// rootfs.FS) into a Tree. Nothing is copied until a writer runs: the tree only names files of the root,
// each remembered by its identity so that a later change is caught.
type Planner struct {
	root       rootfs.FS
	rootDir    string // the host directory of a directory root ("" for an image), for --add files inside it
	keepOwners bool   // an image root's owners are kept; a directory root's files become 0:0, as COPY does
	keepSetuid bool   // regular files keep setuid, setgid and sticky
	tree       *Tree
	resolvers  []*elfdeps.Resolver // one per CPU variant, sharing caches; the first also answers plain lookups
	log        *slog.Logger
	// programs are the parsed ELF inputs (and script interpreters), in the order added (the first sets the
	// image platform); programPaths are their paths in the root, programImages where they are in the image.
	programs      []*elfdeps.File
	programPaths  []string
	programImages []string
	// hostFiles are host files the root shows at image paths (WithHostPrograms); addedPrograms the image
	// paths of those added, in order (an entrypoint when no program is given).
	hostFiles     map[string]string
	addedPrograms []string
	// Warnings are what a build should tell: programs placed where they may not find their data.
	Warnings []string
	// libraries records every shared object path in the closure (for rules such as the CA bundle's), in
	// the order found; isLibrary holds the same paths as a set.
	libraries []string
	isLibrary map[string]bool
	// Problems are the libraries that could not be found or loaded: a build with any must not be written.
	Problems []error
	// imports caches each object's undefined dynamic symbols for the rules.
	imports map[string][]string
	// loaderNeeds are, per interpreter, the closure's objects it reaches only through the root's loader
	// configuration (elfdeps.Object.NeedsConfig), for the ld.so.cache rule.
	loaderNeeds []LoaderNeed
	// scripts are the #! scripts of the plan, in the order added.
	scripts []Script
	// dlopened are the shared libraries added by rules, literals, traces or --add (not FILE inputs), which a
	// program loads by path; dlopenProblems what resolving each alone found missing.
	dlopened       []string
	dlopenProblems []error
	dlopensDone    bool
	// optional are the dlopened libraries rules found, each with the paths of its own closure.
	optional map[string]map[string]bool
	// dpkg is the root's package database, read when a rule first asks.
	dpkgOnce sync.Once
	dpkg     *dpkg.DB
	dpkgErr  error
}

// LoaderNeed is what one interpreter's programs need of the root's loader configuration: the libraries it
// reaches only through /etc/ld.so.cache (glibc) or /etc/ld-musl-ARCH.path (musl).
type LoaderNeed struct {
	Interp    string         // the interpreter's path in the root, as its programs name it
	Flavor    elfdeps.Flavor // its C library
	Machine   elf.Machine    // its programs' machine
	Data      elf.Data       // and byte order
	Libraries []string       // image paths, in the order found
}

// noteLoaderNeed records obj of the closure res when the loader reaches it only through its configuration.
func (p *Planner) noteLoaderNeed(res *elfdeps.Result, obj *elfdeps.Object) {
	if !obj.NeedsConfig || res.Interp == nil {
		return
	}
	i := slices.IndexFunc(p.loaderNeeds, func(n LoaderNeed) bool { return n.Interp == res.Interp.Path })
	if i < 0 {
		f := res.Input.File
		p.loaderNeeds = append(p.loaderNeeds, LoaderNeed{Interp: res.Interp.Path, Flavor: res.Flavor, Machine: f.Machine, Data: f.Data})
		i = len(p.loaderNeeds) - 1
	}
	if n := &p.loaderNeeds[i]; !slices.Contains(n.Libraries, obj.Path) {
		n.Libraries = append(n.Libraries, obj.Path)
	}
}

// PlanOption configures a Planner.
type PlanOption func(*planOptions) error

type planOptions struct {
	resolve    []elfdeps.Option
	cpus       []func(elf.Machine, elf.Class) elfdeps.CPU
	log        *slog.Logger
	keepOwners *bool
	keepSetuid bool
	hostFiles  map[string]string
}

// WithHostPrograms shows host files inside the root at image paths (rootfs.WithHostFiles) for resolving:
// an ELF program built outside the root (a cross-compiled service) that AddHostPath puts at one of those
// paths gets its closure from the root, found from where it will be in the image.
func WithHostPrograms(files map[string]string) PlanOption {
	return func(o *planOptions) error {
		o.hostFiles = files
		return nil
	}
}

// WithKeepSetuid keeps the setuid, setgid and sticky bits and the file capabilities of regular files,
// which are removed by default (Entry.Stripped and CapabilityStripped say what a file lost).
func WithKeepSetuid(keep bool) PlanOption {
	return func(o *planOptions) error {
		o.keepSetuid = keep
		return nil
	}
}

// WithOwners says whether files keep the owners they have in the root (the default for image roots) or
// become root's, 0:0 (the default for directory roots, as a Dockerfile's COPY does).
func WithOwners(keep bool) PlanOption {
	return func(o *planOptions) error {
		o.keepOwners = &keep
		return nil
	}
}

// WithResolverOptions passes options (library path, working directory) to every resolver.
func WithResolverOptions(opts ...elfdeps.Option) PlanOption {
	return func(o *planOptions) error {
		o.resolve = append(o.resolve, opts...)
		return nil
	}
}

// WithCPUs resolves each program once per CPU choice and keeps the union, so an image holds every variant
// the loader could pick on any of those CPUs. The default is AllCPUVariants.
func WithCPUs(cpus ...func(elf.Machine, elf.Class) elfdeps.CPU) PlanOption {
	return func(o *planOptions) error {
		if len(cpus) == 0 {
			return errors.New("no CPU choice")
		}
		o.cpus = cpus
		return nil
	}
}

// WithPlanLogger logs each file added and why at debug level.
func WithPlanLogger(l *slog.Logger) PlanOption {
	return func(o *planOptions) error {
		o.log = l
		return nil
	}
}

// AllCPUVariants are the CPU choices whose union is every file a loader could map on any CPU: one per
// elfdeps.CPUVariants of the object's machine (the baseline, each glibc-hwcaps level alone, each legacy
// platform and hwcap combination). A machine with fewer variants repeats its baseline, which the planner
// resolves once.
func AllCPUVariants() []func(elf.Machine, elf.Class) elfdeps.CPU {
	var out []func(elf.Machine, elf.Class) elfdeps.CPU
	for i := range maxCPUVariants {
		out = append(out, func(m elf.Machine, c elf.Class) elfdeps.CPU {
			if vs := elfdeps.CPUVariants(m, c); i < len(vs) {
				return vs[i]
			}
			return elfdeps.BaselineCPU(m, c)
		})
	}
	return out
}

// maxCPUVariants is the most elfdeps.CPUVariants any machine has (x86-64: 1 + 3 + 3).
const maxCPUVariants = 7

// NewPlanner returns a planner over root. The root stays the caller's to close, after the tree is written.
func NewPlanner(root rootfs.FS, opts ...PlanOption) (*Planner, error) {
	o := planOptions{cpus: AllCPUVariants(), log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	p := &Planner{root: root, tree: NewTree(), log: o.log, imports: map[string][]string{}, isLibrary: map[string]bool{}, optional: map[string]map[string]bool{},
		keepSetuid: o.keepSetuid}
	if d, ok := root.(*rootfs.Dir); ok {
		abs, err := filepath.Abs(d.String())
		if err != nil {
			return nil, fmt.Errorf("root %s: %w", d, err)
		}
		p.rootDir = abs
	} else {
		p.keepOwners = true
	}
	if o.keepOwners != nil {
		p.keepOwners = *o.keepOwners
	}
	if len(o.hostFiles) > 0 {
		ov, err := rootfs.WithHostFiles(root, o.hostFiles)
		if err != nil {
			return nil, err
		}
		p.root, p.hostFiles = ov, o.hostFiles
	}
	first, err := elfdeps.New(p.root, append(slices.Clone(o.resolve), elfdeps.WithCPU(o.cpus[0]))...)
	if err != nil {
		return nil, err
	}
	p.resolvers = []*elfdeps.Resolver{first}
	for _, cpu := range o.cpus[1:] {
		p.resolvers = append(p.resolvers, first.WithCPU(cpu)) // one cache for every variant
	}
	return p, nil
}

// FirstProgram returns the first program added, or nil.
func (p *Planner) FirstProgram() *elfdeps.File {
	if len(p.programs) == 0 {
		return nil
	}
	return p.programs[0]
}

// Tree returns the tree planned so far.
func (p *Planner) Tree() *Tree { return p.tree }

// Root returns the root the planner reads.
func (p *Planner) Root() rootfs.FS { return p.root }

// fsName turns an absolute, resolved path of the root into its fs.FS name.
func fsName(real string) string {
	if real == "/" {
		return "."
	}
	return strings.TrimPrefix(real, "/")
}

// readRoot reads up to limit bytes of the resolved regular file real of the root.
func (p *Planner) readRoot(real string, limit int64) ([]byte, error) {
	f, err := p.root.Open(fsName(real))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, limit))
}

// AddProgram adds an ELF file (or a #! script) of the root at its path, with every symbolic link to it, and
// its closure under every CPU choice. Missing libraries are recorded in Problems.
func (p *Planner) AddProgram(file string) error { return p.AddProgramAt(file, "") }

// AddProgramAt is AddProgram with the program placed at dest in the image (its own path when dest is ""):
// the file goes there only, and what it finds through $ORIGIN (RPATH, RUNPATH) moves with it, at the same
// place relative to it, so that it loads the same files. A script's interpreter stays where it is.
func (p *Planner) AddProgramAt(file, dest string) error {
	at := placement{self: true}
	if dest != "" {
		d, err := cleanPath(dest)
		if err != nil {
			return fmt.Errorf("placing %s: %w", file, err)
		}
		at.dest = d
	}
	return p.addProgram(file, Origin{Kind: OriginInput, RootPath: file, Reason: "input"}, 0, at)
}

// placement says where a program goes: dest ("" for its own path), and whether the program file itself is
// added (not when it is already in the tree, from the host).
type placement struct {
	dest string
	self bool
}

// own is the placement of a program at its own path.
var own = placement{self: true}

// maxInterpreterDepth is how many #! interpreters may chain (Linux allows 4 levels of binfmt_script).
const maxInterpreterDepth = 4

// DefaultPath is the PATH searched inside the root for "#!/usr/bin/env NAME", and a traced workload's PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func (p *Planner) addProgram(file string, o Origin, depth int, at placement) error {
	l, err := p.resolvers[0].Lookup(file)
	if err != nil {
		return err
	}
	if l.Mode.IsRegular() {
		head, err := p.readRoot(l.RealPath, 256)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		interp, arg, ok, err := shebang(head)
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if ok {
			return p.addScript(l, interp, arg, o, depth, at)
		}
	}
	return p.addELF(file, o, at)
}

// shebang reads a "#!" line as the kernel does (the first 256 bytes; the interpreter, then everything
// after it as one optional argument).
func shebang(buf []byte) (interp, arg string, ok bool, err error) {
	if !strings.HasPrefix(string(buf), "#!") {
		return "", "", false, nil
	}
	line, _, _ := strings.Cut(string(buf[2:]), "\n")
	line = strings.Trim(line, " \t\r")
	interp, arg, _ = strings.Cut(strings.ReplaceAll(line, "\t", " "), " ")
	if interp == "" {
		return "", "", false, errors.New("#! line names no interpreter")
	}
	return interp, strings.TrimSpace(arg), true, nil
}

// addScript adds a script at its path and its interpreter (for "/usr/bin/env NAME", also NAME as found on
// PATH inside the root), each with its closure.
func (p *Planner) addScript(l elfdeps.Lookup, interp, arg string, o Origin, depth int, at placement) error {
	if depth >= maxInterpreterDepth {
		return fmt.Errorf("%s: more than %d levels of #! interpreters", l.Path, maxInterpreterDepth)
	}
	image := l.Path
	switch {
	case at.dest == "":
		if err := p.addResolved(l.Path, l.RealPath, l.Links, o); err != nil {
			return err
		}
	case at.self:
		image = at.dest
		if err := p.addPlaced(at.dest, l.RealPath, o); err != nil {
			return err
		}
	default:
		image = at.dest
	}
	if depth == 0 && o.Kind == OriginInput {
		p.programImages = append(p.programImages, image)
	}
	if !slices.ContainsFunc(p.scripts, func(s Script) bool { return s.Path == l.Path }) {
		p.scripts = append(p.scripts, Script{Path: l.Path, Interp: strings.TrimSpace(interp + " " + arg)})
	}
	byScript := func(root, reason string) Origin {
		return Origin{Kind: OriginInterpreter, RootPath: root, By: image, Reason: reason}
	}
	if err := p.addProgram(interp, byScript(interp, "#! interpreter of "+image), depth+1, own); err != nil {
		return fmt.Errorf("%s: %w", l.Path, err)
	}
	if path.Base(interp) != "env" || arg == "" {
		return nil
	}
	name := envProgram(arg)
	if name == "" {
		return nil
	}
	if strings.Contains(name, "/") {
		return p.addProgram(name, byScript(name, fmt.Sprintf("run by %s for %s", interp, image)), depth+1, own)
	}
	for _, dir := range strings.Split(DefaultPath, ":") {
		cand := path.Join(dir, name)
		if cl, err := p.resolvers[0].Lookup(cand); err == nil && cl.Mode.IsRegular() {
			return p.addProgram(cand, byScript(cand, fmt.Sprintf("%s found on PATH for %s (#!%s %s)", name, image, interp, arg)), depth+1, own)
		}
	}
	return fmt.Errorf("%s: #!%s %s: %s is not on PATH (%s) inside the root", l.Path, interp, arg, name, DefaultPath)
}

// envProgram is the program env(1) would run for a #! argument: options (and -S's splitting) and VAR=value
// assignments skipped.
func envProgram(arg string) string {
	for _, w := range strings.Fields(arg) {
		switch {
		case strings.HasPrefix(w, "-"):
			continue
		case strings.Contains(w, "=") && !strings.Contains(w, "/"):
			continue
		}
		return w
	}
	return ""
}

// addELF adds an ELF program or library of the root with its closure under every CPU choice, the program
// placed as at says.
func (p *Planner) addELF(file string, o Origin, at placement) error {
	seen := map[string]bool{}
	originTo := "" // the program's real directory in the image, when placed
	if at.dest != "" {
		var err error
		if originTo, err = p.imageDir(path.Dir(at.dest)); err != nil {
			return fmt.Errorf("placing %s: %w", file, err)
		}
	}
	var first *elfdeps.File // the file, as the first resolver parsed it
	var done []elfdeps.CPU  // the CPU choices resolved for its machine
	for i, r := range p.resolvers {
		if first != nil {
			cpu := r.CPU(first.Machine, first.Class)
			if slices.ContainsFunc(done, func(c elfdeps.CPU) bool { return reflect.DeepEqual(c, cpu) }) {
				continue // the same choice as an earlier resolver's: the same closure
			}
			done = append(done, cpu)
		}
		res, err := r.Resolve(file)
		if err != nil {
			return err
		}
		in := res.Input
		if i == 0 {
			first = in.File
			done = append(done, r.CPU(first.Machine, first.Class))
		}
		image := in.Path
		if at.dest != "" {
			image = at.dest
		}
		if i == 0 {
			p.programs = append(p.programs, in.File)
			p.programPaths = append(p.programPaths, in.Path)
			if o.Kind == OriginInput {
				p.programImages = append(p.programImages, image)
			}
			switch {
			case at.dest == "":
				if err := p.addResolved(in.Path, in.RealPath, in.Links, o); err != nil {
					return err
				}
			case at.self:
				if err := p.addPlaced(at.dest, in.RealPath, o); err != nil {
					return err
				}
			}
			if at.dest != "" && at.dest != in.Path {
				p.warnIfRelocationSensitive(in, at.dest)
			}
			if o.Kind != OriginInput && in.File.Type == elf.ET_DYN && in.File.Interp == "" {
				// A library a rule, a literal, a trace or --add brought in is dlopened by a program: what it
				// needs may be what another such library provides (see FinishDlopens).
				p.dlopened = append(p.dlopened, in.Path)
				p.dlopenProblems = append(p.dlopenProblems, res.Problems...)
				if o.Kind == OriginRule {
					// A plugin a rule found: one the root cannot load is left out rather than failing.
					closure := map[string]bool{in.Path: true}
					for _, obj := range res.Objects {
						closure[obj.Path] = true
					}
					p.optional[in.Path] = closure
				}
			} else {
				p.Problems = append(p.Problems, res.Problems...)
			}
		}
		mv := newMover(in, image, originTo)
		for _, obj := range res.Objects {
			if seen[obj.Path] {
				continue
			}
			seen[obj.Path] = true
			if err := p.addMovedOrNot(obj, mv); err != nil {
				return err
			}
			p.addLibrary(obj.Path)
			p.noteLoaderNeed(res, obj)
		}
	}
	return nil
}

// FinishDlopens resolves the libraries rules, literals, traces and --add brought in as the first program
// would dlopen them all: a DT_NEEDED name one of them lacks alone may be the SONAME of another (OpenJDK's
// libjava.so needs the libjvm.so its launcher loaded from lib/server), as glibc matches a loaded object.
// What is still missing then is a problem. ApplyRules calls it before the ldcache rule; it does its work
// once.
func (p *Planner) FinishDlopens() error {
	if len(p.dlopened) == 0 || p.dlopensDone {
		return nil
	}
	p.dlopensDone = true
	prog := ""
	for i, f := range p.programs {
		if f.Interp != "" {
			prog = p.programPaths[i]
			break
		}
	}
	if prog == "" {
		p.Problems = append(p.Problems, p.dlopenProblems...)
		return nil
	}
	res, err := p.resolvers[0].DlopenSet(prog, p.dlopened)
	if err != nil { // not a glibc program: each library's own resolution stands
		p.Problems = append(p.Problems, p.dlopenProblems...)
		return nil
	}
	// A problem inside the closure of a plugin a rule found drops that plugin (with a warning); any other is
	// a problem of the build.
	dropped := map[string]bool{}
	for _, prob := range res.Problems {
		by := problemNeededBy(prob)
		var owners []string
		for lib, closure := range p.optional {
			if closure[by] {
				owners = append(owners, lib)
			}
		}
		if len(owners) == 0 {
			p.Problems = append(p.Problems, prob)
			continue
		}
		slices.Sort(owners)
		for _, lib := range owners {
			if !dropped[lib] {
				dropped[lib] = true
				p.tree.Remove(lib)
				p.Warnings = append(p.Warnings, fmt.Sprintf("left out %s, which the root cannot load: %v", lib, prob))
			}
		}
	}
	for _, obj := range res.Objects {
		if dropped[obj.Path] {
			continue
		}
		o := objectOrigin(obj, prog)
		if err := p.addResolved(obj.Path, obj.RealPath, obj.Links, o); err != nil {
			return err
		}
		p.addLibrary(obj.Path)
	}
	return nil
}

// problemNeededBy is the object whose need a resolution problem is about.
func problemNeededBy(err error) string {
	var nf *elfdeps.NotFoundError
	var le *elfdeps.LoadError
	switch {
	case errors.As(err, &nf):
		return nf.NeededBy
	case errors.As(err, &le):
		return le.NeededBy
	}
	return ""
}

// addLibrary records a shared object of the closure once.
func (p *Planner) addLibrary(path string) {
	if !p.isLibrary[path] {
		p.isLibrary[path] = true
		p.libraries = append(p.libraries, path)
	}
}

// mover places what a placed program finds through $ORIGIN: the loader opens "$ORIGIN/SUFFIX/NAME" with the
// $ORIGIN of the object whose RPATH/RUNPATH names it, so a moved object is opened at the same SUFFIX/NAME
// from that object's new $ORIGIN.
type mover struct {
	input string            // the program's path in the root
	image map[string]string // root path of a placed or moved object -> the path the loader opens in the image
	from  map[string]string // root path -> its $ORIGIN in the root
	to    map[string]string // root path -> its $ORIGIN in the image
}

// newMover starts with the program at image path image, whose real directory there is originTo (a program's
// $ORIGIN is its real directory, the kernel's /proc/self/exe).
func newMover(in *elfdeps.Object, image, originTo string) *mover {
	m := &mover{input: in.Path, image: map[string]string{in.Path: image}, from: map[string]string{}, to: map[string]string{}}
	if image != in.Path {
		m.from[in.Path], m.to[in.Path] = path.Dir(in.RealPath), originTo
	}
	return m
}

// place returns the path the loader opens obj at when it moves with a placed object, or "".
func (m *mover) place(obj *elfdeps.Object) string {
	if !obj.ViaOrigin {
		return ""
	}
	to, ok := m.to[obj.Via]
	if !ok {
		return ""
	}
	suffix, ok := strings.CutPrefix(obj.Path, m.from[obj.Via])
	if !ok || !strings.HasPrefix(suffix, "/") {
		return ""
	}
	opened := strings.TrimSuffix(to, "/") + suffix
	m.image[obj.Path] = opened
	// A library's own $ORIGIN is the directory it was opened from, as opened.
	m.from[obj.Path], m.to[obj.Path] = dirOf(obj.Path), dirOf(opened)
	return opened
}

// dirOf is the directory part of p as the loader takes it: everything before the last '/'.
func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}

// imagePath is where the object at root path p is opened in the image.
func (m *mover) imagePath(p string) string {
	if ip, ok := m.image[p]; ok {
		return ip
	}
	return p
}

// addMovedOrNot adds a closure object: at its place relative to a moved object when it was found through
// that object's $ORIGIN, else at its own path with every link on the way.
func (p *Planner) addMovedOrNot(obj *elfdeps.Object, m *mover) error {
	o := objectOrigin(obj, m.imagePath(m.input))
	if obj.NeededBy != "" {
		o.By = m.imagePath(obj.NeededBy)
	}
	if opened := m.place(obj); opened != "" {
		o.Reason += fmt.Sprintf(", opened at %s beside %s", opened, m.imagePath(obj.Via))
		return p.addPlaced(opened, obj.RealPath, o)
	}
	return p.addResolved(obj.Path, obj.RealPath, obj.Links, o)
}

// imageDir resolves a directory path as the kernel will inside the built image: through the tree's links,
// and where the tree has nothing yet, through the root's (a link met there is added to the tree, since the
// image's directories are the root's). It returns the real directory.
func (p *Planner) imageDir(dir string) (string, error) {
	cur, rest := "/", strings.Split(dir, "/")
	for n := 0; len(rest) > 0; {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, c)
		target := ""
		if e := p.tree.Get(next); e != nil {
			if e.Kind == KindSymlink {
				target = e.Target
			} else if e.Kind != KindDir {
				return "", fmt.Errorf("%s: %s is a %s in the image", dir, next, e.Kind)
			}
		} else if fi, err := p.root.Lstat(fsName(next)); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			if target, err = p.root.ReadLink(fsName(next)); err != nil {
				return "", fmt.Errorf("%s: %w", next, err)
			}
			meta := p.meta(next)
			o := Origin{Kind: OriginLink, RootPath: next, Reason: "link on the way to " + dir}
			if err := p.tree.Add(Entry{Path: next, Kind: KindSymlink, Target: target, UID: meta.UID, GID: meta.GID, Origins: []Origin{o}}); err != nil {
				return "", err
			}
		}
		if target == "" {
			cur = next
			continue
		}
		if n++; n > 40 {
			return "", fmt.Errorf("%s: too many levels of symbolic links", dir)
		}
		if strings.HasPrefix(target, "/") {
			cur = "/"
		}
		rest = append(strings.Split(target, "/"), rest...)
	}
	return cur, nil
}

// addPlaced adds the regular file real of the root where the kernel finds image path dest, as one file: no
// link of the root's to the file is reproduced (the loader opens dest itself), but dest's directories are
// resolved as they will be in the image.
func (p *Planner) addPlaced(dest, real string, o Origin) error {
	dir, err := p.imageDir(dirOf(dest))
	if err != nil {
		return fmt.Errorf("placing %s at %s: %w", real, dest, err)
	}
	if o.RootPath == "" {
		o.RootPath = real
	}
	return p.addRootFile(path.Join(dir, path.Base(dest)), real, real, o)
}

// addRootFile adds the regular file real of the root (asked for as asked) at image path image, remembered
// by its identity now.
func (p *Planner) addRootFile(image, real, asked string, o Origin) error {
	fi, err := p.root.Lstat(fsName(real))
	if err != nil {
		return fmt.Errorf("%s: %w", asked, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", asked)
	}
	p.log.Debug("add", "path", image, "why", o.Reason)
	meta := rootfs.MetaOf(fi)
	e := Entry{Path: image, Kind: KindFile, Source: &rootFile{fsys: p.root, name: fsName(real), meta: meta},
		Size: meta.Size, Origins: []Origin{o}}
	e.Mode, e.Stripped = p.regularMode(fi.Mode())
	if c := rootfs.Capability(p.root, fsName(real), fi); c != "" {
		if p.keepSetuid {
			e.Capability = c
		} else {
			e.CapabilityStripped = true
		}
	}
	if p.keepOwners {
		e.UID, e.GID = meta.UID, meta.GID
	}
	return p.tree.Add(e)
}

func objectWhy(o *elfdeps.Object, input string) string {
	switch o.How {
	case elfdeps.HowInterp:
		return "interpreter of " + input
	case elfdeps.HowDefaultInterp:
		return "ld.so, which loads the library " + input
	case elfdeps.HowInput:
		return "input"
	}
	s := fmt.Sprintf("%s needed by %s (%s", o.Name, o.NeededBy, o.How)
	if o.Via != "" {
		s += " of " + o.Via
	}
	return s + ")"
}

// objectOrigin is why a resolved object of input's closure is in: what brought it in is the object that
// needed it, or the input itself for its interpreter.
func objectOrigin(obj *elfdeps.Object, input string) Origin {
	o := Origin{Kind: OriginNeeded, RootPath: obj.Path, By: obj.NeededBy, Reason: objectWhy(obj, input)}
	if obj.How == elfdeps.HowInterp || obj.How == elfdeps.HowDefaultInterp {
		o.Kind = OriginInterpreter
	}
	if o.By == "" {
		o.By = input
	}
	return o
}

// addLinks adds the symbolic links met on the way to asked.
func (p *Planner) addLinks(asked string, links []elfdeps.Link) error {
	for _, l := range links {
		meta := p.meta(l.Path)
		o := Origin{Kind: OriginLink, RootPath: l.Path, Reason: "link on the way to " + asked}
		if err := p.tree.Add(Entry{Path: l.Path, Kind: KindSymlink, Target: l.Target, UID: meta.UID, GID: meta.GID, Origins: []Origin{o}}); err != nil {
			return err
		}
	}
	return nil
}

// meta returns the owners (when kept) of a path of the root, not following a final link; zero when they
// are not kept or cannot be read.
func (p *Planner) meta(real string) rootfs.Meta {
	if !p.keepOwners {
		return rootfs.Meta{}
	}
	fi, err := p.root.Lstat(fsName(real))
	if err != nil {
		return rootfs.Meta{}
	}
	return rootfs.MetaOf(fi)
}

// addResolved adds the regular file real of the root (asked for as asked, through links) at its path, and
// the links; the file is remembered by its identity now.
func (p *Planner) addResolved(asked, real string, links []elfdeps.Link, o Origin) error {
	if err := p.addLinks(asked, links); err != nil {
		return err
	}
	return p.addRootFile(real, real, asked, o)
}

// specialBits are the mode bits a file loses unless the planner keeps them.
const specialBits = fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// regularMode is a regular file's mode in the image: its permission bits, and setuid, setgid and sticky
// only when the planner keeps them (a user's setuid file must not become a root-owned setuid file). It
// also returns the bits it removed.
func (p *Planner) regularMode(m fs.FileMode) (mode, stripped fs.FileMode) {
	mode = fileMode(m)
	if p.keepSetuid {
		return mode, 0
	}
	return mode &^ specialBits, mode & specialBits
}

// fileMode keeps the permission bits and setuid, setgid and sticky; never a type bit.
func fileMode(m fs.FileMode) fs.FileMode { return m & (fs.ModePerm | specialBits) }

// AddRootPath adds a path of the root (a file, a symbolic link chain, or a whole directory tree) at the same
// path in the image. ELF programs and libraries met get their closure too.
func (p *Planner) AddRootPath(file string, o Origin) error {
	l, err := p.resolvers[0].Lookup(file)
	if err != nil {
		return err
	}
	if o.RootPath == "" {
		o.RootPath = l.Path
	}
	if !l.Mode.IsDir() {
		if err := p.addResolved(l.Path, l.RealPath, l.Links, o); err != nil {
			return err
		}
		return p.rootClosureIfELF(l.RealPath, o)
	}
	if err := p.addLinks(l.Path, l.Links); err != nil {
		return err
	}
	return p.addRootTree(l.RealPath, o)
}

// addRootTree adds the directory tree real of the root at the same path: links as links, directories with
// their modes, regular files with their closures; special files are left out.
func (p *Planner) addRootTree(real string, o Origin) error {
	return fs.WalkDir(p.root, fsName(real), func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("adding %s: %w", real, err)
		}
		ip := "/" + name
		if name == "." {
			ip = "/"
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := p.root.ReadLink(name)
			if err != nil {
				return fmt.Errorf("adding %s: %w", ip, err)
			}
			meta := p.meta(ip)
			return p.tree.Add(Entry{Path: ip, Kind: KindSymlink, Target: t, UID: meta.UID, GID: meta.GID, Origins: []Origin{o}})
		case d.IsDir():
			if ip == "/" {
				return nil
			}
			return p.addRootDirEntry(ip, o)
		case d.Type().IsRegular():
			if err := p.addResolved(ip, ip, nil, o); err != nil {
				return err
			}
			return p.rootClosureIfELF(ip, o)
		}
		p.log.Debug("skipping special file", "path", ip)
		return nil
	})
}

// addRootDirEntry adds the directory real of the root (not its content) with its mode and owners.
func (p *Planner) addRootDirEntry(real string, o Origin) error {
	fi, err := p.root.Lstat(fsName(real))
	if err != nil {
		return fmt.Errorf("adding %s: %w", real, err)
	}
	e := Entry{Path: real, Kind: KindDir, Mode: fileMode(fi.Mode()), Origins: []Origin{o}}
	if p.keepOwners {
		meta := rootfs.MetaOf(fi)
		e.UID, e.GID = meta.UID, meta.GID
	}
	return p.tree.Add(e)
}

// rootClosureIfELF adds the closure of the file real of the root when it is a dynamically-linked ELF file.
func (p *Planner) rootClosureIfELF(real string, o Origin) error {
	f, err := p.root.Open(fsName(real))
	if err != nil {
		return err
	}
	defer f.Close()
	ra, ok := f.(io.ReaderAt)
	if !ok {
		return nil
	}
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if o.Kind == OriginRule && st.Mode()&0o111 != 0 && st.Mode().IsRegular() {
		// A script a rule adds (a helper program) brings its interpreter; one the root cannot run is left
		// as it is, with a warning.
		var head [2]byte
		if n, _ := ra.ReadAt(head[:], 0); n == 2 && string(head[:]) == "#!" {
			if err := p.addProgram(real, o, 0, own); err != nil {
				p.Warnings = append(p.Warnings, fmt.Sprintf("%s (%s): its interpreter is not added: %v", real, o.Reason, err))
			}
			return nil
		}
	}
	if !isDynamicELF(ra, st.Size()) {
		return nil
	}
	return p.addProgram(real, o, 0, own)
}

// isDynamicELF reports whether r holds an ELF file the loader would map libraries for.
func isDynamicELF(r io.ReaderAt, size int64) bool {
	var magic [4]byte
	if n, _ := r.ReadAt(magic[:], 0); n < 4 || string(magic[:]) != elf.ELFMAG {
		return false
	}
	f, err := elfdeps.ParseELF(r, size)
	return err == nil && (f.Interp != "" || len(f.Needed) > 0) // not loadable, or static: nothing to add
}

// AddHostPath adds a file or directory tree of the host (not of the root) at dest in the image, as Docker's
// COPY does: symbolic links inside the tree are kept as links, owners are root's. ELF files among them get
// their closure from the root. src itself may be a symbolic link (it is followed, as the user named it).
func (p *Planner) AddHostPath(src, dest string, o Origin) error {
	if _, err := cleanPath(dest); err != nil {
		return fmt.Errorf("adding %s: %w", src, err)
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return fmt.Errorf("adding %s: %w", src, err)
	}
	st, err := os.Lstat(real)
	if err != nil {
		return fmt.Errorf("adding %s: %w", src, err)
	}
	if o.Kind == "" {
		o.Kind = OriginAdded
	}
	if o.RootPath == "" {
		o.RootPath = src
	}
	if st.IsDir() {
		return p.addHostTree(real, path.Clean(dest), o)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("adding %s: not a regular file or directory", src)
	}
	e := Entry{Path: dest, Kind: KindFile, Source: newHostFile(real, st), Origins: []Origin{o}}
	e.Mode, e.Stripped = p.regularMode(st.Mode())
	if err := p.tree.Add(e); err != nil {
		return err
	}
	return p.hostClosureIfELF(dest, real, o)
}

// addHostTree adds the tree at host directory src as image directory dest.
func (p *Planner) addHostTree(src, dest string, o Origin) error {
	return filepath.WalkDir(src, func(hp string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("adding %s: %w", src, err)
		}
		rel, err := filepath.Rel(src, hp)
		if err != nil {
			return err
		}
		ip := path.Join(dest, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("adding %s: %w", hp, err)
		}
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			t, err := os.Readlink(hp)
			if err != nil {
				return fmt.Errorf("adding %s: %w", hp, err)
			}
			return p.tree.Add(Entry{Path: ip, Kind: KindSymlink, Target: t, Origins: []Origin{o}})
		case d.IsDir():
			if ip == "/" {
				return nil
			}
			return p.tree.Add(Entry{Path: ip, Kind: KindDir, Mode: fileMode(info.Mode()), Origins: []Origin{o}})
		case d.Type().IsRegular():
			e := Entry{Path: ip, Kind: KindFile, Source: newHostFile(hp, info), Origins: []Origin{o}}
			e.Mode, e.Stripped = p.regularMode(info.Mode())
			if err := p.tree.Add(e); err != nil {
				return err
			}
			return p.hostClosureIfELF(ip, hp, o)
		}
		p.log.Debug("skipping special file", "path", hp)
		return nil
	})
}

// hostClosureIfELF adds the closure of a dynamically-linked ELF file found at host path hp (image path ip),
// resolved inside the root. Anything else is left alone.
func (p *Planner) hostClosureIfELF(ip, hp string, o Origin) error {
	fh, err := os.OpenFile(hp, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	if !isDynamicELF(fh, st.Size()) {
		return nil
	}
	// The file may live outside the root (--add from the host); resolve its dependencies from where it will
	// be in the image by resolving a root path when there is one, else the host file's own view.
	// It is already in the tree at ip; its closure is added, and what it finds through $ORIGIN moves with it.
	at := placement{dest: ip}
	var file string
	switch {
	case p.hostFiles[ip] == hp:
		file = ip // the root shows it there (WithHostPrograms)
	case p.rootDir == "/":
		file = hp
	case p.rootDir != "":
		if rel, ok := strings.CutPrefix(hp, p.rootDir+string(filepath.Separator)); ok {
			file = "/" + filepath.ToSlash(rel)
		}
	}
	if file == "" {
		return fmt.Errorf("%s (added as %s) is a dynamically-linked ELF file from outside the root %s: its libraries "+
			"cannot be resolved there (see WithHostPrograms)", hp, ip, p.root)
	}
	n := len(p.programs)
	if err := p.addProgram(file, o, 0, at); err != nil {
		return err
	}
	if len(p.programs) > n && p.programs[n].Interp != "" {
		p.addedPrograms = append(p.addedPrograms, ip)
	}
	return nil
}

// relocationHints are what a program does when it finds its data relative to its own location.
var relocationHints = []string{"/proc/self/exe", "RUNTIME_PREFIX", "GIT_EXEC_PATH", "PYTHONHOME", "PERL5LIB", "RUBYLIB", "TCL_LIBRARY"}

// warnIfRelocationSensitive warns when a program placed away from its path in the root looks as if it finds
// its data relative to its own location (an interpreter computing its prefix, git's exec path): moving it
// may break that, and no closure shows it.
func (p *Planner) warnIfRelocationSensitive(in *elfdeps.Object, dest string) {
	data, err := p.readRoot(in.RealPath, 64<<20)
	if err != nil {
		return
	}
	var why []string
	for _, h := range relocationHints {
		if bytes.Contains(data, []byte(h)) {
			why = append(why, h)
		}
	}
	if len(why) == 0 {
		return
	}
	p.Warnings = append(p.Warnings, fmt.Sprintf("%s is placed at %s, but it may find its data relative to its own location (it names %s): check that it still runs there, or place it at its own path",
		in.Path, dest, strings.Join(why, ", ")))
}
