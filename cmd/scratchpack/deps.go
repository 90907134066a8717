package main

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/scratchpack/scratchpack/collector"
	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/elfdeps"
)

// depsFlags are deps' flags.
type depsFlags struct {
	rootDir, platform, libPath, format, cpuMode, hwcaps, atPlatform, cwd *string
	insecure, verbose, credHelpers                                       *bool
}

// depsFlagSet defines deps' flags (for parsing, help and completion).
func depsFlagSet() (*pflag.FlagSet, *depsFlags) {
	fl := pflag.NewFlagSet("deps", pflag.ContinueOnError)
	d := &depsFlags{}
	d.rootDir = fl.String("root", "/", "resolve inside this root, as under chroot: a directory (a sysroot), or an image: oci:PATH[:TAG], docker-archive:PATH[:REF], docker://REF")
	d.platform = fl.String("platform", "", "the platform os/arch[/variant] to pick from a multi-platform image --root (default: this machine's)")
	d.credHelpers = fl.Bool("cred-helpers", false, "let the Docker config's credential helpers run for a docker:// --root's credentials")
	d.insecure = fl.Bool("insecure", false, "allow a plain-HTTP registry for a docker:// --root (loopback ones are always allowed)")
	d.libPath = fl.String("library-path", "", "resolve as if LD_LIBRARY_PATH were set to this value")
	d.format = fl.String("format", "tree", "output format: tree, list or json")
	d.cpuMode = fl.String("cpu", "host", "CPU-dependent choices: host (this machine's CPU), baseline (no optional feature) or all (every glibc-hwcaps subdirectory and legacy hwcap enabled: the best variant)")
	d.hwcaps = fl.String("hwcaps", "", "comma-separated glibc-hwcaps subdirectories to search, best first (overrides --cpu's)")
	d.atPlatform = fl.String("at-platform", "", "value of $PLATFORM and the legacy platform subdirectory (overrides --cpu's)")
	d.cwd = fl.String("cwd", "", "working directory inside the root for relative names (default: the current directory with --root /, else /)")
	d.verbose = fl.BoolP("verbose", "v", false, "log every candidate file tried to stderr")
	return fl, d
}

const depsAbout = "Lists what the dynamic loader would map for each FILE, reading ELF only (nothing is run)."

func runDeps(args []string, stdout, stderr io.Writer) error {
	stderr = quoteWriter{stderr}
	fl, d := depsFlagSet()
	if help, err := parseFlags(fl, args, stdout); help || err != nil {
		return err
	}
	rootDir, platform, insecure, libPath, format, cpuMode := d.rootDir, d.platform, d.insecure, d.libPath, d.format, d.cpuMode
	hwcaps, atPlatform, cwd, verbose := d.hwcaps, d.atPlatform, d.cwd, d.verbose
	if fl.NArg() == 0 {
		return &exitError{code: 2, err: errors.New("no FILE given (see 'scratchpack deps --help')")}
	}
	switch *format {
	case "tree", "list", "json":
	default:
		return &exitError{code: 2, err: fmt.Errorf("unknown --format %q (want tree, list or json)", *format)}
	}

	opts, err := resolverOptions(*rootDir, *libPath, *cpuMode, *hwcaps, *atPlatform, *cwd, fl.Changed("library-path"))
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if *verbose {
		opts = append(opts, elfdeps.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	var r *elfdeps.Resolver
	if rootfs.IsImageRef(*rootDir) {
		lopts := []rootfs.LoadOption{rootfs.WithInsecure(*insecure), rootfs.WithCredentialHelpers(*d.credHelpers)}
		if *platform != "" {
			p, err := collector.ParsePlatform(*platform)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			lopts = append(lopts, rootfs.WithPlatform(p))
		}
		root, err := rootfs.Open(context.Background(), *rootDir, lopts...)
		if err != nil {
			return fmt.Errorf("opening the root: %w", err)
		}
		defer root.Close()
		r, err = elfdeps.New(root, opts...)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
	} else {
		// A directory is read through os.DirFS: resolving opens only the real paths elfdeps found, and this
		// is the fastest way there (deps is read-only; build reads through rootfs.Dir).
		if r, err = elfdeps.NewDir(*rootDir, opts...); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	inputs := fl.Args()
	results, errs := r.ResolveAll(inputs)

	failed := false
	for i, err := range errs {
		if err != nil {
			fmt.Fprintf(stderr, "scratchpack deps: %v\n", err)
			failed = true
			continue
		}
		for _, p := range results[i].Problems {
			fmt.Fprintf(stderr, "scratchpack deps: %v\n", p)
			failed = true
		}
	}
	switch *format {
	case "list":
		if err := writeList(quoteWriter{stdout}, results); err != nil {
			return err
		}
	case "json":
		if err := writeJSON(stdout, inputs, results, errs); err != nil {
			return err
		}
	default:
		for _, res := range results {
			if res != nil {
				writeTree(quoteWriter{stdout}, res)
			}
		}
	}
	if failed {
		return &exitError{code: 1}
	}
	return nil
}

// resolverOptions turns the shared resolution flags into elfdeps options.
func resolverOptions(rootDir, libPath, cpuMode, hwcaps, platform, cwd string, haveLibPath bool) ([]elfdeps.Option, error) {
	var opts []elfdeps.Option
	if haveLibPath {
		opts = append(opts, elfdeps.WithLibraryPath(libPath))
	}
	var choose func(elf.Machine, elf.Class) elfdeps.CPU
	switch cpuMode {
	case "host":
		choose = elfdeps.HostCPU
	case "baseline":
		choose = elfdeps.BaselineCPU
	case "all":
		choose = elfdeps.AllVariantsCPU
	default:
		return nil, fmt.Errorf("unknown --cpu %q (want host, baseline or all)", cpuMode)
	}
	if hwcaps != "" || platform != "" {
		base := choose
		choose = func(m elf.Machine, c elf.Class) elfdeps.CPU {
			cpu := base(m, c)
			if hwcaps != "" {
				cpu.HWCaps = strings.Split(hwcaps, ",")
			}
			if platform != "" {
				cpu.Platform = platform
			}
			return cpu
		}
	}
	opts = append(opts, elfdeps.WithCPU(choose))
	if cwd == "" && filepath.Clean(rootDir) == "/" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, fmt.Errorf("finding the working directory: %w", err)
		}
		cwd = wd
	}
	if cwd != "" {
		opts = append(opts, elfdeps.WithWorkDir(cwd))
	}
	return opts, nil
}

func writeList(w io.Writer, results []*elfdeps.Result) error {
	seen := map[string]bool{}
	var all []string
	for _, res := range results {
		if res == nil {
			continue
		}
		for _, o := range res.Objects { // Result.Paths of each, in one set
			if !seen[o.Path] {
				seen[o.Path] = true
				all = append(all, o.Path)
			}
		}
	}
	slices.Sort(all)
	bw := bufio.NewWriter(w)
	for _, p := range all {
		bw.WriteString(p)
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// writeTree prints a result like libtree: each object under the object that first loaded it, with why it
// was found; objects already shown are not repeated.
func writeTree(w io.Writer, res *elfdeps.Result) {
	fmt.Fprintf(w, "%s", res.Input.Path)
	if res.Flavor == elfdeps.FlavorStatic {
		fmt.Fprintf(w, " (static)\n")
		return
	}
	fmt.Fprintln(w)
	if res.Interp != nil {
		fmt.Fprintf(w, "├── %s [%s]\n", res.Interp.Path, res.Interp.How)
	} else if res.Input.File.Interp != "" {
		fmt.Fprintf(w, "├── %s => not found [interpreter]\n", res.Input.File.Interp)
	}
	shown := map[*elfdeps.Object]bool{res.Input: true}
	if res.Interp != nil {
		shown[res.Interp] = true
	}
	var walk func(o *elfdeps.Object, prefix string)
	walk = func(o *elfdeps.Object, prefix string) {
		type line struct {
			name string
			dep  *elfdeps.Object
		}
		var lines []line
		for i, name := range o.Needed {
			var dep *elfdeps.Object
			if i < len(o.Deps) {
				dep = o.Deps[i]
			}
			if dep != nil && shown[dep] {
				continue
			}
			lines = append(lines, line{name, dep})
			if dep != nil {
				shown[dep] = true
			}
		}
		for i, l := range lines {
			branch, next := "├── ", "│   "
			if i == len(lines)-1 {
				branch, next = "└── ", "    "
			}
			if l.dep == nil {
				fmt.Fprintf(w, "%s%s%s => not found\n", prefix, branch, l.name)
				continue
			}
			fmt.Fprintf(w, "%s%s%s => %s [%s]\n", prefix, branch, l.name, l.dep.Path, why(l.dep))
			walk(l.dep, prefix+next)
		}
	}
	walk(res.Input, "")
}

func why(o *elfdeps.Object) string {
	switch {
	case o.Via != "":
		return fmt.Sprintf("%s of %s", o.How, o.Via)
	case o.Dir != "" && o.How != elfdeps.HowCache:
		return fmt.Sprintf("%s %s", o.How, o.Dir)
	}
	return string(o.How)
}

type jsonMissing struct {
	Name       string   `json:"name"`
	NeededBy   string   `json:"needed_by"`
	Searched   []string `json:"searched,omitempty"`
	WrongClass []string `json:"wrong_class,omitempty"`
}

type jsonResult struct {
	Input   string            `json:"input"`
	Error   string            `json:"error,omitempty"`
	Flavor  elfdeps.Flavor    `json:"loader,omitempty"`
	Interp  string            `json:"interpreter,omitempty"`
	Objects []*elfdeps.Object `json:"objects"`
	Missing []jsonMissing     `json:"missing,omitempty"`
	Errors  []string          `json:"errors,omitempty"`
}

func writeJSON(w io.Writer, inputs []string, results []*elfdeps.Result, errs []error) error {
	out := make([]jsonResult, len(inputs))
	for i, in := range inputs {
		j := jsonResult{Input: in, Objects: []*elfdeps.Object{}}
		if errs[i] != nil {
			j.Error = errs[i].Error()
			out[i] = j
			continue
		}
		res := results[i]
		j.Flavor = res.Flavor
		if res.Interp != nil {
			j.Interp = res.Interp.Path
		}
		j.Objects = append(j.Objects, res.Objects...)
		for _, p := range res.Problems {
			var nf *elfdeps.NotFoundError
			if errors.As(p, &nf) {
				j.Missing = append(j.Missing, jsonMissing{nf.Name, nf.NeededBy, nf.Searched, nf.WrongClass})
			} else {
				j.Errors = append(j.Errors, p.Error())
			}
		}
		out[i] = j
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
