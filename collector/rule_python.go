package collector

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strings"
)

// pythonRule gives a CPython interpreter what it loads at start-up and a script what it imports, found
// statically: the interpreter's search path as it computes it from its own location and version
// (PREFIX/lib/pythonX.Y, lib-dynload, Debian's dist-packages), the encodings package and the modules site
// imports, then for every #! python script of the image the closure of its import statements through that
// path, compiled extension modules (with their ELF closures) included. What a script imports by a computed
// name is named in a warning.
type pythonRule struct{}

func (pythonRule) Name() string { return "python" }

func (pythonRule) Summary() string {
	return "a CPython's start-up modules (encodings, site) and the modules its #! scripts import, followed statically through its search path"
}

var pythonBinary = regexp.MustCompile(`^python(\d)\.(\d+)$`)

// pyEnv is one interpreter's view of its modules.
type pyEnv struct {
	v       View
	interp  string   // the interpreter's real path
	version string   // "3.11"
	abi     string   // extension suffix tag: "cpython-311-x86_64-linux-gnu"
	path    []string // sys.path without the script's directory
	done    map[string]bool
	added   int
	dynamic []string
	missing []string
}

// pythonPath is sys.path as CPython computes it for the interpreter at real (PREFIX/bin/pythonX.Y):
// PREFIX/lib/pythonXY.zip, PREFIX/lib/pythonX.Y, its lib-dynload, then what Debian's site adds.
func pythonPath(real, version string) []string {
	prefix := path.Dir(path.Dir(real))
	lib := path.Join(prefix, "lib")
	nodot := strings.ReplaceAll(version, ".", "")
	major, _, _ := strings.Cut(version, ".")
	return []string{
		path.Join(lib, "python"+nodot+".zip"),
		path.Join(lib, "python"+version),
		path.Join(lib, "python"+version, "lib-dynload"),
		path.Join(prefix, "local/lib", "python"+version, "dist-packages"),
		path.Join(lib, "python"+major, "dist-packages"),
		path.Join(lib, "python"+version, "dist-packages"),
	}
}

func (pythonRule) Apply(v View, _ RuleOptions) ([]string, error) {
	programs, _ := v.Objects()
	var notes []string
	seen := map[string]bool{}
	var envs []*pyEnv
	for _, prog := range programs {
		l, err := v.Lookup(prog)
		if err != nil {
			continue
		}
		m := pythonBinary.FindStringSubmatch(path.Base(l.RealPath))
		if m == nil || seen[l.RealPath] {
			continue
		}
		seen[l.RealPath] = true
		version := m[1] + "." + m[2]
		env := &pyEnv{v: v, interp: l.RealPath, version: version, path: pythonPath(l.RealPath, version),
			abi: "cpython-" + m[1] + m[2] + "-" + machineTriplet(v), done: map[string]bool{}}
		if _, err := v.Lookup(path.Join(env.path[1], "os.py")); err != nil {
			notes = append(notes, fmt.Sprintf("%s: no %s/os.py in the root: its standard library is not where it looks", prog, env.path[1]))
			continue
		}
		envs = append(envs, env)
		// Start-up: the encodings package (codecs are looked up in it by name), site and what it imports,
		// the os landmark, and the .pth files site processes.
		start := ruleOrigin("python", env.interp+" imports it at start-up", env.interp)
		if err := env.addTree(path.Join(env.path[1], "encodings"), start); err != nil {
			return nil, err
		}
		for _, mod := range []string{"encodings", "site", "os", "sitecustomize", "usercustomize", "_sitebuiltins"} {
			if err := env.follow(mod, nil, start); err != nil {
				return nil, err
			}
		}
		if err := env.pthFiles(start); err != nil {
			return nil, err
		}
		notes = append(notes, fmt.Sprintf("%s: search path %s; start-up modules added", env.interp, strings.Join(env.path, ":")))
	}
	if len(envs) == 0 {
		return notes, nil
	}
	for _, script := range scriptsOf(v, "python") {
		text, err := v.ReadRootFile(script)
		if err != nil {
			continue
		}
		env := envs[0]
		if err := env.followSource(script, text, "", []string{path.Dir(script)}); err != nil {
			return nil, err
		}
		if len(env.dynamic) > 0 {
			notes = append(notes, "warning: imports by a computed name cannot be followed: "+strings.Join(env.dynamic, ", "))
		}
		if len(env.missing) > 0 {
			notes = append(notes, fmt.Sprintf("%s imports what is not on its search path (a built-in module, or missing): %s", script, strings.Join(env.missing, ", ")))
		}
		env.dynamic, env.missing = nil, nil
	}
	for _, env := range envs {
		if env.done["zoneinfo"] {
			if _, err := v.Lookup("/usr/share/zoneinfo"); err == nil {
				if err := v.AddRootPath("/usr/share/zoneinfo", ruleOrigin("python", "zoneinfo reads the system's time zones", env.interp)); err != nil {
					return nil, err
				}
				notes = append(notes, "added /usr/share/zoneinfo: a script imports zoneinfo")
			}
		}
		notes = append(notes, fmt.Sprintf("%s: %d module files", env.interp, env.added))
	}
	return notes, nil
}

// machineTriplet is the multiarch triplet of the interpreter's libc directory ("x86_64-linux-gnu").
func machineTriplet(v View) string {
	for _, lib := range v.Libraries() {
		if path.Base(lib) == "libc.so.6" {
			if t := path.Base(path.Dir(lib)); strings.Contains(t, "-linux-") {
				return t
			}
		}
	}
	return "x86_64-linux-gnu"
}

// find returns the file of module name in dirs (then the interpreter's path), and the __init__.py files of
// its parent packages there.
func (e *pyEnv) find(name string, dirs []string) (file string, parents []string, ok bool) {
	rel := strings.ReplaceAll(name, ".", "/")
	for _, d := range append(slices.Clone(dirs), e.path...) {
		base := path.Join(d, rel)
		for _, cand := range []string{base + ".py", base + "/__init__.py", base + "." + e.abi + ".so", base + ".abi3.so", base + ".so"} {
			if l, err := e.v.Lookup(cand); err == nil && l.Mode.IsRegular() {
				parts := strings.Split(name, ".")
				for i := 1; i < len(parts); i++ {
					init := path.Join(d, strings.Join(parts[:i], "/"), "__init__.py")
					if _, err := e.v.Lookup(init); err == nil {
						parents = append(parents, init)
					}
				}
				return cand, parents, true
			}
		}
	}
	return "", nil, false
}

// add adds a module file (and its compiled __pycache__ twin, when the root has one).
func (e *pyEnv) add(file string, o Origin) error {
	if err := e.v.AddRootPath(file, o); err != nil {
		return err
	}
	e.added++
	if strings.HasSuffix(file, ".py") {
		dir, base := path.Split(file)
		pyc := path.Join(dir, "__pycache__", strings.TrimSuffix(base, ".py")+".cpython-"+strings.ReplaceAll(e.version, ".", "")+".pyc")
		if _, err := e.v.Lookup(pyc); err == nil {
			return e.v.AddRootPath(pyc, o)
		}
	}
	return nil
}

// addTree adds a package directory whole.
func (e *pyEnv) addTree(dir string, o Origin) error {
	if l, err := e.v.Lookup(dir); err != nil || !l.Mode.IsDir() {
		return nil
	}
	return e.v.AddRootPath(dir, o)
}

// follow adds module name and, transitively, what it imports; false when it is not found.
func (e *pyEnv) follow(name string, dirs []string, o Origin) error {
	if e.done[name] {
		return nil
	}
	file, parents, ok := e.find(name, dirs)
	if !ok {
		return nil
	}
	e.done[name] = true
	for _, p := range parents {
		if err := e.add(p, o); err != nil {
			return err
		}
	}
	if parts := strings.Split(name, "."); len(parts) > 1 {
		if err := e.follow(strings.Join(parts[:len(parts)-1], "."), dirs, o); err != nil {
			return err
		}
	}
	if err := e.add(file, o); err != nil {
		return err
	}
	if !strings.HasSuffix(file, ".py") {
		return nil // an extension module: its ELF closure came with it
	}
	if name == "sysconfig" {
		// It imports _sysconfigdata_{abiflags}_{platform}_{multiarch} by a computed name.
		if err := e.glob(path.Dir(file), "_sysconfigdata_", ".py", o); err != nil {
			return err
		}
	}
	text, err := e.v.ReadRootFile(file)
	if err != nil {
		return nil // larger than the rule reads: taken as it is
	}
	pkg := name
	if !strings.HasSuffix(file, "/__init__.py") {
		if i := strings.LastIndexByte(name, '.'); i >= 0 {
			pkg = name[:i]
		} else {
			pkg = ""
		}
	}
	return e.followSource(file, text, pkg, dirs)
}

// followSource follows the imports of a source file (a module of package pkg, or a script).
func (e *pyEnv) followSource(file string, text []byte, pkg string, dirs []string) error {
	imports, dynamic := pythonImports(text)
	script := pkg == "" && !strings.HasPrefix(file, path.Dir(e.path[1]))
	for _, line := range dynamic {
		if script {
			e.dynamic = append(e.dynamic, fmt.Sprintf("%s:%d", file, line))
		}
	}
	for _, imp := range imports {
		if imp.main && !script {
			continue // an imported module's __main__ block does not run
		}
		mod := imp.module
		if imp.level > 0 {
			base := strings.Split(pkg, ".")
			if pkg == "" || imp.level-1 > len(base) {
				continue
			}
			base = base[:len(base)-(imp.level-1)]
			mod = strings.Trim(strings.Join(base, ".")+"."+imp.module, ".")
		}
		if mod == "" {
			continue
		}
		o := ruleOrigin("python", fmt.Sprintf("`%s` in %s:%d", imp.text, file, imp.line), file)
		before := e.done[mod]
		if err := e.follow(mod, dirs, o); err != nil {
			return err
		}
		if script && !before && !e.done[mod] && !slices.Contains(e.missing, mod) {
			e.missing = append(e.missing, mod)
		}
		for _, n := range imp.names { // from M import n: n may be a submodule
			if err := e.follow(mod+"."+n, dirs, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// glob follows every module of dir whose file name has the prefix and suffix.
func (e *pyEnv) glob(dir, prefix, suffix string, o Origin) error {
	l, err := e.v.Lookup(dir)
	if err != nil {
		return nil
	}
	ents, err := fs.ReadDir(e.v.Root(), fsName(l.RealPath))
	if err != nil {
		return nil
	}
	for _, ent := range ents {
		if n := ent.Name(); strings.HasPrefix(n, prefix) && strings.HasSuffix(n, suffix) {
			if err := e.follow(strings.TrimSuffix(n, suffix), nil, o); err != nil {
				return err
			}
		}
	}
	return nil
}

// pthFiles reads the .pth files of the site directories: site executes their "import" lines.
func (e *pyEnv) pthFiles(o Origin) error {
	for _, d := range e.path[3:] {
		l, err := e.v.Lookup(d)
		if err != nil || !l.Mode.IsDir() {
			continue
		}
		ents, err := fs.ReadDir(e.v.Root(), fsName(l.RealPath))
		if err != nil {
			continue
		}
		for _, ent := range ents {
			if !strings.HasSuffix(ent.Name(), ".pth") {
				continue
			}
			p := path.Join(d, ent.Name())
			text, err := e.v.ReadRootFile(p)
			if err != nil {
				continue
			}
			if err := e.v.AddRootPath(p, o); err != nil {
				return err
			}
			// Its "import" lines run at every start; what they import is added, not what that imports in
			// turn (Debian's distutils-precedence.pth imports _distutils_hack, which imports setuptools only
			// when a program asks for distutils).
			for _, line := range strings.Split(string(text), "\n") {
				if !strings.HasPrefix(line, "import ") && !strings.HasPrefix(line, "import\t") {
					continue
				}
				imports, _ := pythonImports([]byte(line))
				for _, imp := range imports {
					if file, parents, ok := e.find(imp.module, nil); ok && !e.done[imp.module] {
						e.done[imp.module] = true
						for _, f := range append(parents, file) {
							if err := e.add(f, ruleOrigin("python", fmt.Sprintf("`%s` in %s", imp.text, p), p)); err != nil {
								return err
							}
						}
					}
				}
			}
		}
	}
	return nil
}
