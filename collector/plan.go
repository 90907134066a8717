package collector

import (
	"debug/elf"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/scratchpack/scratchpack/elfdeps"
)

// Planner collects what programs need from a root (the host's "/" or a sysroot) into a Tree. Nothing is
// copied until a writer runs: the tree only names host files.
type Planner struct {
	rootDir   string
	tree      *Tree
	resolvers []*elfdeps.Resolver // one per CPU variant, sharing caches; the first also answers plain lookups
	log       *slog.Logger
	// programs are the parsed ELF inputs (and script interpreters), in the order added (the first sets the
	// image platform); programPaths are their paths.
	programs     []*elfdeps.File
	programPaths []string
	// Libraries records every shared object path in the closure (for rules such as the CA bundle's).
	Libraries []string
	// Problems are the libraries that could not be found or loaded: a build with any must not be written.
	Problems []error
	// imports caches each object's undefined dynamic symbols for the rules.
	imports map[string][]string
}

// PlanOption configures a Planner.
type PlanOption func(*planOptions) error

type planOptions struct {
	resolve []elfdeps.Option
	cpus    []func(elf.Machine, elf.Class) elfdeps.CPU
	log     *slog.Logger
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

// AllCPUVariants are the CPU choices whose union is every file a loader could map on any CPU: no optional
// feature, then each glibc-hwcaps level alone.
func AllCPUVariants() []func(elf.Machine, elf.Class) elfdeps.CPU {
	out := []func(elf.Machine, elf.Class) elfdeps.CPU{elfdeps.BaselineCPU}
	for i := range 4 {
		out = append(out, func(m elf.Machine, c elf.Class) elfdeps.CPU {
			all := elfdeps.AllVariantsCPU(m, c)
			cpu := elfdeps.BaselineCPU(m, c)
			if i < len(all.HWCaps) {
				cpu.HWCaps = all.HWCaps[i : i+1]
			}
			return cpu
		})
	}
	return out
}

// NewPlanner returns a planner over the root directory rootDir.
func NewPlanner(rootDir string, opts ...PlanOption) (*Planner, error) {
	o := planOptions{cpus: AllCPUVariants(), log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(rootDir)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", rootDir, err)
	}
	p := &Planner{rootDir: abs, tree: NewTree(), log: o.log, imports: map[string][]string{}}
	first, err := elfdeps.NewDir(abs, append(slices.Clone(o.resolve), elfdeps.WithCPU(o.cpus[0]))...)
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

// host is the host path of a resolved path inside the root.
func (p *Planner) host(real string) string {
	return filepath.Join(p.rootDir, filepath.FromSlash(real))
}

// AddProgram adds an ELF file of the root at its path, with every symbolic link to it, and its closure
// under every CPU choice. Missing libraries are recorded in Problems.
func (p *Planner) AddProgram(file, why string) error {
	return p.addProgram(file, why, "", 0)
}

// maxInterpreterDepth is how many #! interpreters may chain (Linux allows 4 levels of binfmt_script).
const maxInterpreterDepth = 4

// DefaultPath is the PATH searched inside the root for "#!/usr/bin/env NAME", and a traced workload's PATH.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func (p *Planner) addProgram(file, why, via string, depth int) error {
	l, err := p.resolvers[0].Lookup(file)
	if err != nil {
		return err
	}
	if l.Mode.IsRegular() {
		interp, arg, ok, err := p.shebang(p.host(l.RealPath))
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		if ok {
			return p.addScript(l, interp, arg, why, via, depth)
		}
	}
	return p.addELF(file, why, via)
}

// shebang reads a "#!" line as the kernel does (the first 256 bytes; the interpreter, then everything
// after it as one optional argument).
func (p *Planner) shebang(host string) (interp, arg string, ok bool, err error) {
	f, err := os.Open(host)
	if err != nil {
		return "", "", false, err
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.ReadAt(buf, 0)
	buf = buf[:n]
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
func (p *Planner) addScript(l elfdeps.Lookup, interp, arg, why, via string, depth int) error {
	if depth >= maxInterpreterDepth {
		return fmt.Errorf("%s: more than %d levels of #! interpreters", l.Path, maxInterpreterDepth)
	}
	if err := p.addResolved(l.Path, l.RealPath, l.Links, why, via); err != nil {
		return err
	}
	iwhy := fmt.Sprintf("#! interpreter of %s", l.Path)
	if err := p.addProgram(interp, iwhy, l.Path, depth+1); err != nil {
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
		return p.addProgram(name, fmt.Sprintf("run by %s for %s", interp, l.Path), l.Path, depth+1)
	}
	for _, dir := range strings.Split(DefaultPath, ":") {
		cand := path.Join(dir, name)
		if cl, err := p.resolvers[0].Lookup(cand); err == nil && cl.Mode.IsRegular() {
			return p.addProgram(cand, fmt.Sprintf("%s found on PATH for %s (#!%s %s)", name, l.Path, interp, arg), l.Path, depth+1)
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

// addELF adds an ELF program or library of the root with its closure under every CPU choice.
func (p *Planner) addELF(file, why, via string) error {
	seen := map[string]bool{}
	for i, r := range p.resolvers {
		res, err := r.Resolve(file)
		if err != nil {
			return err
		}
		if i == 0 {
			p.programs = append(p.programs, res.Input.File)
			p.programPaths = append(p.programPaths, res.Input.Path)
			in := res.Input
			if err := p.addResolved(in.Path, in.RealPath, in.Links, why, via); err != nil {
				return err
			}
			p.Problems = append(p.Problems, res.Problems...)
		}
		for _, o := range res.Objects {
			if seen[o.Path] {
				continue
			}
			seen[o.Path] = true
			if err := p.addObject(o, objectWhy(o, res.Input.Path), res.Input.Path); err != nil {
				return err
			}
			if !slices.Contains(p.Libraries, o.Path) {
				p.Libraries = append(p.Libraries, o.Path)
			}
		}
	}
	return nil
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

// addObject adds a resolved object of input's closure: every link on its way, then the file. What brought
// it in is the object that needed it, or the input itself for its interpreter.
func (p *Planner) addObject(o *elfdeps.Object, why, input string) error {
	via := o.NeededBy
	if via == "" {
		via = input
	}
	return p.addResolved(o.Path, o.RealPath, o.Links, why, via)
}

// addResolved adds the file real (asked for as asked, through links) and the links; via, if not "", is the
// image path of what brought it in.
func (p *Planner) addResolved(asked, real string, links []elfdeps.Link, why, via string) error {
	for _, l := range links {
		if err := p.tree.Add(Entry{Path: l.Path, Kind: KindSymlink, Target: l.Target, Why: []string{"link on the way to " + asked}}); err != nil {
			return err
		}
	}
	st, err := os.Stat(p.host(real))
	if err != nil {
		return fmt.Errorf("%s: %w", asked, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", asked)
	}
	p.log.Debug("add", "path", asked, "why", why)
	e := Entry{Path: real, Kind: KindFile, Mode: fileMode(st.Mode()), Source: p.host(real), Size: st.Size(), Why: []string{why}}
	if via != "" {
		e.Via = []string{via}
	}
	return p.tree.Add(e)
}

// fileMode keeps the permission bits and setuid, setgid and sticky; never a type bit.
func fileMode(m fs.FileMode) fs.FileMode {
	return m & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// AddRootPath adds a path of the root (a file, a symbolic link chain, or a whole directory tree) at the same
// path in the image. ELF programs and libraries met in a tree get their closure too.
func (p *Planner) AddRootPath(file, why string) error {
	l, err := p.resolvers[0].Lookup(file)
	if err != nil {
		return err
	}
	if !l.Mode.IsDir() {
		if err := p.addResolved(l.Path, l.RealPath, l.Links, why, ""); err != nil {
			return err
		}
		return p.closureIfELF(l.Path, p.host(l.RealPath), why)
	}
	for _, lk := range l.Links {
		if err := p.tree.Add(Entry{Path: lk.Path, Kind: KindSymlink, Target: lk.Target, Why: []string{"link on the way to " + l.Path}}); err != nil {
			return err
		}
	}
	return p.addHostTree(p.host(l.RealPath), l.RealPath, why)
}

// AddHostPath adds a file or directory tree of the host (not of the root) at dest in the image, as Docker's
// COPY does: symbolic links inside the tree are kept as links. ELF files among them get their closure from
// the root.
func (p *Planner) AddHostPath(src, dest, why string) error {
	st, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("--add %s: %w", src, err)
	}
	if st.Mode()&fs.ModeSymlink != 0 {
		if st, err = os.Stat(src); err != nil {
			return fmt.Errorf("--add %s: %w", src, err)
		}
	}
	if _, err := cleanPath(dest); err != nil {
		return fmt.Errorf("--add %s: %w", src, err)
	}
	if st.IsDir() {
		return p.addHostTree(src, path.Clean(dest), why)
	}
	if err := p.tree.Add(Entry{Path: dest, Kind: KindFile, Mode: fileMode(st.Mode()), Source: src, Size: st.Size(), Why: []string{why}}); err != nil {
		return err
	}
	return p.closureIfELF(dest, src, why)
}

// addHostTree adds the tree at host directory src as image directory dest.
func (p *Planner) addHostTree(src, dest, why string) error {
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
			return p.tree.Add(Entry{Path: ip, Kind: KindSymlink, Target: t, Why: []string{why}})
		case d.IsDir():
			e := Entry{Path: ip, Kind: KindDir, Mode: fileMode(info.Mode()), Why: []string{why}}
			if ip == "/" {
				return nil
			}
			return p.tree.Add(e)
		case d.Type().IsRegular():
			if err := p.tree.Add(Entry{Path: ip, Kind: KindFile, Mode: fileMode(info.Mode()), Source: hp, Size: info.Size(), Why: []string{why}}); err != nil {
				return err
			}
			return p.closureIfELF(ip, hp, why)
		}
		p.log.Debug("skipping special file", "path", hp)
		return nil
	})
}

// closureIfELF adds the closure of a dynamically-linked ELF file found at host path hp (image path ip),
// resolved inside the root. Anything else is left alone.
func (p *Planner) closureIfELF(ip, hp, why string) error {
	fh, err := os.Open(hp)
	if err != nil {
		return err
	}
	defer fh.Close()
	var magic [4]byte
	if n, _ := fh.ReadAt(magic[:], 0); n < 4 || string(magic[:]) != elf.ELFMAG {
		return nil
	}
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	f, err := elfdeps.ParseELF(fh, st.Size())
	if err != nil || (f.Interp == "" && len(f.Needed) == 0) {
		return nil // not loadable, or static: nothing to add
	}
	// The file may live outside the root (--add from the host); resolve its dependencies from where it will
	// be in the image by resolving a root path when there is one, else the host file's own view.
	if p.rootDir == "/" {
		return p.AddProgram(hp, why)
	}
	if rel, ok := strings.CutPrefix(hp, p.rootDir+string(filepath.Separator)); ok {
		return p.AddProgram("/"+filepath.ToSlash(rel), why)
	}
	return fmt.Errorf("%s (added as %s) is a dynamically-linked ELF file from outside the root %s: its libraries "+
		"cannot be resolved there; put it inside the root first", hp, ip, p.rootDir)
}
