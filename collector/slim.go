package collector

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scratchpack/scratchpack/elfdeps"
)

// Annotations a slimmed image's manifest carries: the image it was made from.
const (
	SlimSourceAnnotation       = "dev.scratchpack.slim.source"
	SlimSourceDigestAnnotation = "dev.scratchpack.slim.source.digest"
)

// SlimSpec is the slimming of an existing image: Spec.Root holds its files (rootfs.NewImage), Config is its
// config, Source (as given) and Digest (of its manifest) name it. Spec's Programs and Adds are computed; Keep adds root paths (globs).
type SlimSpec struct {
	Spec
	Config *v1.ConfigFile
	Source string
	Digest v1.Hash
	Keep   []string
	// Traces are workloads run in the unpacked image, sandboxed, whose files stay too.
	Traces []SlimTrace
}

// SlimTrace is a workload slim runs in the image (unpacked into a directory of the system's temporary one),
// as the image's User, with its Env and WorkingDir, in namespaces of its own (Workload.Sandbox).
type SlimTrace struct {
	Argv    []string // nil: the image's Entrypoint and Cmd
	Probe   []string // see Workload.Probe
	Timeout time.Duration
	Stdout  io.Writer // nil: discarded
	Stderr  io.Writer
}

// SlimPlan is what an image's config says must stay: the programs its command lines run, the paths its
// arguments and config name, and what could not be followed.
type SlimPlan struct {
	Programs []string
	Paths    []string
	Scripts  []Script // files an interpreter of the image is given to run (python3 app.py)
	Notes    []string
}

// shellWords are the words of a shell command line that start no program of the image: builtins,
// keywords and the prefixes that run the next word.
var shellWords = map[string]bool{
	"if": true, "then": true, "else": true, "elif": true, "fi": true, "for": true, "in": true, "do": true, "done": true,
	"while": true, "until": true, "case": true, "esac": true, "function": true, "{": true, "}": true, "!": true,
	"cd": true, "echo": true, "exit": true, "export": true, "set": true, "unset": true, "shift": true, "return": true,
	"local": true, "read": true, "trap": true, "wait": true, ".": true, "source": true, "eval": true, "true": true,
	"false": true, ":": true, "test": true, "[": true, "[[": true, "printf": true, "umask": true, "ulimit": true,
	"exec": true, "command": true, "nohup": true, "env": true, "readonly": true, "declare": true, "alias": true,
}

// PlanSlim reads the programs and paths an image's config needs, looked up in the image (r): the entrypoint
// and command (a program on the config's PATH; "sh -c LINE" keeps the shell and each command word of LINE;
// a shell script is read the same way), the healthcheck's, the arguments that name files of the image, the
// working directory, the volumes, and the image's /etc/passwd and /etc/group.
func PlanSlim(r *elfdeps.Resolver, root fs.FS, cf *v1.ConfigFile) SlimPlan {
	c := cf.Config
	var sp SlimPlan
	pathDirs := strings.Split(DefaultPath, ":")
	for _, kv := range c.Env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathDirs = strings.Split(v, ":")
		}
	}
	wd := c.WorkingDir
	if wd == "" {
		wd = "/"
	}
	isFile := func(p string) bool {
		l, err := r.Lookup(p)
		return err == nil && l.Mode.IsRegular()
	}
	find := func(word string) string {
		if strings.Contains(word, "/") {
			p := word
			if !path.IsAbs(p) {
				p = path.Join(wd, p)
			}
			if isFile(p) {
				return p
			}
			return ""
		}
		for _, d := range pathDirs {
			if d != "" && isFile(path.Join(d, word)) {
				return path.Join(d, word)
			}
		}
		return ""
	}
	seen := map[string]bool{}
	execsArgs := map[string]bool{} // shell scripts that run their arguments (exec "$@")
	var addProgram func(word string, depth int)
	var shellLine func(line, from string, depth int)
	addProgram = func(word string, depth int) {
		p := find(word)
		if p == "" {
			sp.Notes = append(sp.Notes, fmt.Sprintf("%q is not a program of the image (looked up on %s)", word, strings.Join(pathDirs, ":")))
			return
		}
		if seen[p] {
			return
		}
		seen[p] = true
		sp.Programs = append(sp.Programs, p)
		if depth < 4 {
			if data, err := readRootFile(r, root, p); err == nil && isShellScript(data) {
				for _, line := range strings.Split(string(data), "\n") {
					shellLine(line, p, depth+1)
				}
			}
		}
	}
	shellLine = func(line, from string, depth int) {
		for _, cmd := range commandWords(line) {
			if runsArgs(cmd) {
				execsArgs[from] = true // the command line's arguments, followed by run
				continue
			}
			if shellWords[cmd] {
				continue
			}
			if strings.HasPrefix(cmd, "$") || strings.ContainsAny(cmd, "`$()<>*?") {
				sp.Notes = append(sp.Notes, fmt.Sprintf("%s: the command %q is computed when it runs: not followed (--keep what it runs, or --trace)", from, cmd))
				continue
			}
			if find(cmd) == "" {
				sp.Notes = append(sp.Notes, fmt.Sprintf("%s: %q is not a program of the image", from, cmd))
				continue
			}
			addProgram(cmd, depth)
		}
	}
	argv := append(slices.Clone(c.Entrypoint), c.Cmd...)
	var run func(argv []string)
	run = func(argv []string) {
		if len(argv) == 0 {
			return
		}
		addProgram(argv[0], 0)
		if len(argv) >= 3 && isShellName(path.Base(argv[0])) && argv[1] == "-c" {
			shellLine(argv[2], "the command line", 0)
			return
		}
		prog := find(argv[0])
		// An entrypoint script that ends in `exec "$@"` runs its arguments: the command is the next program.
		if execsArgs[prog] && len(argv) > 1 && find(argv[1]) != "" {
			run(argv[1:])
			return
		}
		interp := prog != "" && isInterpreterName(path.Base(prog))
		for _, a := range argv[1:] { // arguments naming files of the image: a script, a configuration
			if strings.HasPrefix(a, "-") || a == "" {
				continue
			}
			p := a
			if !path.IsAbs(p) {
				p = path.Join(wd, p)
			}
			if !isFile(p) {
				continue
			}
			if interp {
				sp.Scripts = append(sp.Scripts, Script{Path: p, Interp: prog})
				interp = false // the first file is the script; the rest are its arguments
				continue
			}
			sp.Paths = append(sp.Paths, p)
		}
	}
	run(argv)
	if hc := c.Healthcheck; hc != nil && len(hc.Test) > 1 {
		switch hc.Test[0] {
		case "CMD":
			run(hc.Test[1:])
		case "CMD-SHELL":
			addProgram("/bin/sh", 0)
			shellLine(strings.Join(hc.Test[1:], " "), "the healthcheck", 0)
		}
	}
	if c.WorkingDir != "" {
		if _, err := r.Lookup(c.WorkingDir); err == nil {
			sp.Paths = append(sp.Paths, c.WorkingDir)
		}
	}
	for v := range c.Volumes {
		if _, err := r.Lookup(v); err == nil {
			sp.Paths = append(sp.Paths, v)
		}
	}
	// The image's own accounts, whole: its programs run as the users its packages made (nginx's www-data).
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		if isFile(f) {
			sp.Paths = append(sp.Paths, f)
		}
	}
	slices.Sort(sp.Paths)
	sp.Paths = slices.Compact(sp.Paths)
	return sp
}

// runsArgs reports whether a command word is the script's own arguments ("$@", "$*", "$1").
func runsArgs(w string) bool {
	switch w {
	case "$@", "$*", "$1", "${@}", "${*}", "${1}":
		return true
	}
	return false
}

// isInterpreterName reports whether a program's name is one of the interpreters the rules follow scripts of.
func isInterpreterName(n string) bool {
	for _, w := range []string{"python", "perl", "ruby", "php", "tclsh", "wish"} {
		if strings.HasPrefix(n, w) {
			return true
		}
	}
	return false
}

func isShellName(n string) bool { return n == "sh" || n == "bash" || n == "dash" || n == "ash" }

func isShellScript(data []byte) bool {
	line, _, _ := strings.Cut(string(data[:min(len(data), 256)]), "\n")
	if !strings.HasPrefix(line, "#!") {
		return false
	}
	f := strings.Fields(strings.TrimPrefix(line, "#!"))
	if len(f) == 0 {
		return false
	}
	prog := path.Base(f[0])
	if prog == "env" && len(f) > 1 {
		prog = f[1]
	}
	return isShellName(prog)
}

// commandWords returns the first word of each simple command of a shell line: after ';', '&&', '||', '|',
// '&', '(' and the prefixes that run the next word (exec, command, nohup, env and VAR=value assignments).
// Quotes group words; what follows '#' at a word's start is a comment.
func commandWords(line string) []string {
	var words []string
	var cur strings.Builder
	var quote rune
	inWord := false
	var toks []string
	flush := func() {
		if inWord {
			toks = append(toks, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for _, ch := range line {
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else {
				cur.WriteRune(ch)
			}
		case ch == '\'' || ch == '"':
			quote, inWord = ch, true
		case ch == '#' && !inWord:
			flush()
			goto done
		case ch == ' ' || ch == '\t':
			flush()
		case strings.ContainsRune(";&|()", ch):
			flush()
			toks = append(toks, string(ch))
		default:
			cur.WriteRune(ch)
			inWord = true
		}
	}
done:
	flush()
	start := true
	for _, t := range toks {
		switch {
		case strings.Contains(";&|()", t) && len(t) == 1:
			start = true
		case !start:
		case t == "exec" || t == "command" || t == "nohup" || t == "env" || (strings.Contains(t, "=") && !strings.HasPrefix(t, "=")):
			// the next word is the command
		case strings.HasPrefix(t, "-"):
		default:
			words = append(words, t)
			start = false
		}
	}
	return words
}

// readRootFile reads a file of the root by path, its links followed inside the root (at most 1 MiB).
func readRootFile(r *elfdeps.Resolver, root fs.FS, p string) ([]byte, error) {
	l, err := r.Lookup(p)
	if err != nil {
		return nil, err
	}
	f, err := root.Open(strings.TrimPrefix(l.RealPath, "/"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// Slim builds the slim image: the programs, paths and rules PlanSlim and Build find, the source config
// whole (but its layers, history and creation time), annotations naming the source.
func Slim(ctx context.Context, s SlimSpec) (*Result, SlimPlan, error) {
	if s.Root == nil || s.Config == nil {
		return nil, SlimPlan{}, fmt.Errorf("no source image to slim")
	}
	r, err := elfdeps.New(s.Root)
	if err != nil {
		return nil, SlimPlan{}, err
	}
	plan := PlanSlim(r, s.Root, s.Config)
	spec := s.Spec
	spec.Programs = nil
	for _, p := range plan.Programs {
		spec.Programs = append(spec.Programs, Program{Path: p})
	}
	spec.RootPaths = append(slices.Clone(spec.RootPaths), plan.Paths...)
	spec.Scripts = append(slices.Clone(spec.Scripts), plan.Scripts...)
	for _, k := range s.Keep {
		matches, err := fs.Glob(s.Root, strings.TrimPrefix(path.Clean("/"+k), "/"))
		if err != nil {
			return nil, plan, fmt.Errorf("--keep %s: %w", k, err)
		}
		if len(matches) == 0 {
			return nil, plan, fmt.Errorf("--keep %s: nothing in %s matches", k, s.Source)
		}
		for _, m := range matches {
			spec.RootPaths = append(spec.RootPaths, "/"+m)
		}
	}
	c := s.Config.Config
	spec.Image.FromConfig = &c
	spec.Image.Platform = v1.Platform{OS: s.Config.OS, Architecture: s.Config.Architecture, Variant: s.Config.Variant}
	if spec.Rules.Base.User == "" {
		spec.Rules.Base.User = c.User
	}
	spec.KeepSetuid = true // the image's own modes and file capabilities, as its maker meant them
	// The source by digest; by name only when the name is a registry's (a local layout's path would make
	// the digest depend on where it is).
	spec.Image.CreatedBy = "scratchpack slim " + s.Digest.String()
	ann := map[string]string{SlimSourceDigestAnnotation: s.Digest.String()}
	if ref, ok := strings.CutPrefix(s.Source, "docker://"); ok {
		ann[SlimSourceAnnotation] = ref
	}
	for k, v := range spec.Image.Annotations {
		ann[k] = v
	}
	spec.Image.Annotations = ann
	if len(s.Traces) > 0 {
		tmp, err := os.MkdirTemp("", "scratchpack-slim-")
		if err != nil {
			return nil, plan, err
		}
		defer os.RemoveAll(tmp)
		run := filepath.Join(tmp, "root")
		if err := Unpack(ctx, s.Root, run, SandboxHostID); err != nil {
			return nil, plan, err
		}
		env := imageEnv(c.Env)
		for _, t := range s.Traces {
			argv := t.Argv
			if argv == nil {
				argv = append(slices.Clone(c.Entrypoint), c.Cmd...)
			}
			if len(argv) == 0 {
				return nil, plan, fmt.Errorf("--trace: %s has no entrypoint or command to run; give one", s.Source)
			}
			spec.Workloads = append(spec.Workloads, Workload{Argv: argv, Env: env, Dir: cmp.Or(c.WorkingDir, "/"), User: c.User,
				RunRoot: run, Sandbox: true, Probe: t.Probe, Timeout: t.Timeout, Stdout: t.Stdout, Stderr: t.Stderr})
		}
	}
	res, err := Build(ctx, spec)
	return res, plan, err
}

// imageEnv is the environment a runtime gives an image's process: its Env over a PATH and HOME.
func imageEnv(env []string) []string {
	return MergeEnv([]string{"PATH=" + DefaultPath, "HOME=/root"}, env)
}

// MergeEnv joins environments, K=V each: a later value of a variable replaces an earlier one in place, so
// that a program's getenv and the PATH lookup of its command agree.
func MergeEnv(lists ...[]string) []string {
	var out []string
	at := map[string]int{}
	for _, list := range lists {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := at[k]; ok {
				out[i] = kv
				continue
			}
			at[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

// SlimIndex slims each platform's image of a multi-platform source (one SlimSpec each, the same Sink, Keep
// and options) and publishes the slim images as one image index, in the order given (the source index's,
// for an index like it), annotated with the source index's digest (index). With Explain, each platform is explained in turn
// and nothing is written. The plans are in the index's order.
func SlimIndex(ctx context.Context, specs []SlimSpec, index v1.Hash) (*Result, []SlimPlan, error) {
	if len(specs) == 0 {
		return nil, nil, fmt.Errorf("no source image to slim")
	}
	sink, explain := specs[0].Sink, specs[0].Explain
	if explain == nil && !takesIndex(sink) {
		return nil, nil, fmt.Errorf("%s holds one image and the source has %d platforms: %w (or --platform)", sink, len(specs), ErrSeveralPlatforms)
	}
	res := &Result{Children: make([]*Result, len(specs))}
	plans := make([]SlimPlan, len(specs))
	prs := make([]PlatformRoot, len(specs))
	arts := make([]Artifact, len(specs))
	// One platform at a time: each holds its source's files in a spool, and the slimming itself is quick.
	for i, s := range specs {
		prs[i].Platform = v1.Platform{OS: s.Config.OS, Architecture: s.Config.Architecture, Variant: s.Config.Variant}
		if explain != nil {
			fmt.Fprintf(explain, "# %s\n", prs[i].Platform)
		}
		if s.Log != nil {
			s.Log = slog.New(prefixHandler{s.Log.Handler(), prs[i].Platform.String() + ": "})
		}
		capture := &captureSink{spool: spoolDir(sink)}
		if explain == nil {
			s.Sink = capture
		}
		r, plan, err := Slim(ctx, s)
		plans[i] = plan
		if err != nil {
			return nil, plans, fmt.Errorf("%s: %w", prs[i].Platform, err)
		}
		r.Platform = prs[i].Platform
		res.Children[i], arts[i] = r, capture.a
		res.Notes = append(res.Notes, r.Notes...)
	}
	if explain != nil {
		return res, plans, nil
	}
	idx, err := imageIndex(prs, arts, map[string]string{SlimSourceDigestAnnotation: index.String()})
	if err != nil {
		return nil, plans, err
	}
	is, ok := sink.(IndexSink)
	if !ok {
		return nil, plans, fmt.Errorf("%s cannot hold an image index", sink)
	}
	if res.Output, err = is.PublishIndex(ctx, IndexArtifact{Index: idx, Children: arts}); err != nil {
		return nil, plans, err
	}
	return res, plans, nil
}
