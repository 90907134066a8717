package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/scratchpack/scratchpack/collector"
	"github.com/scratchpack/scratchpack/elfdeps"
)

type buildFlags struct {
	root, libPath, cpu, cwd          string
	output                           string
	adds                             []string
	entrypoint, cmd, env             []string
	user, workdir                    string
	labels, annotations              []string
	platform, base, compression      string
	certs                            string
	force, tzdata, insecure, verbose bool
	explain                          bool
	noRules, locales                 []string
	gconv                            string
	traces, traceFiles               []string
	traceFileCwd                     string
	traceTimeout                     time.Duration
}

func runBuild(args []string, stdout, stderr io.Writer) error {
	fl := pflag.NewFlagSet("build", pflag.ContinueOnError)
	fl.SetOutput(stderr)
	fl.Usage = func() {
		fmt.Fprintf(stderr, "Usage: scratchpack build [flags] FILE... -o DEST\n\n"+
			"Builds a minimal root filesystem or FROM-scratch image holding each FILE (at its path) and exactly\n"+
			"what it needs. Nothing is run. DEST is one of:\n")
		for _, t := range collector.Transports {
			fmt.Fprintf(stderr, "  %-27s %s\n", t.Form, t.What)
		}
		fmt.Fprintf(stderr, "\nFlags:\n")
		fl.PrintDefaults()
	}
	var b buildFlags
	fl.StringVarP(&b.output, "output", "o", "", "where to write the result (see above; required)")
	fl.StringVar(&b.root, "root", "/", "take FILEs and their libraries from this root directory (a sysroot)")
	fl.StringVar(&b.libPath, "library-path", "", "resolve as if LD_LIBRARY_PATH were set to this value")
	fl.StringVar(&b.cpu, "cpu", "all", "which CPU variants to include: all (every glibc-hwcaps variant the loader could pick on any CPU), host or baseline")
	fl.StringVar(&b.cwd, "cwd", "", "working directory inside the root for relative names (default: the current directory with --root /, else /)")
	fl.StringArrayVar(&b.adds, "add", nil, "add a host file or tree: SRC[:DEST] (DEST defaults to SRC's absolute path); ELF files get their closure; repeatable")
	fl.StringArrayVar(&b.entrypoint, "entrypoint", nil, "image entrypoint, one argument per flag (default: the first FILE)")
	fl.StringArrayVar(&b.cmd, "cmd", nil, "image command (arguments to the entrypoint), one argument per flag")
	fl.StringArrayVar(&b.env, "env", nil, "image environment variable K=V; repeatable")
	fl.StringVar(&b.user, "user", "", "user to run as: NAME, UID, NAME:GROUP or UID:GID (a NAME gets passwd/group lines)")
	fl.StringVar(&b.workdir, "workdir", "", "image working directory (created in the image)")
	fl.StringArrayVar(&b.labels, "label", nil, "image config label K=V; repeatable")
	fl.StringArrayVar(&b.annotations, "annotation", nil, "image manifest annotation K=V; repeatable")
	fl.StringVar(&b.platform, "platform", "", "image platform os/arch[/variant] (default: from the ELF machine of the first FILE)")
	fl.StringVar(&b.base, "base", "", "base image to add the layer to: oci:PATH[:TAG] or docker://REF (default: empty, FROM scratch)")
	fl.StringVar(&b.compression, "compression", "gzip", "layer compression: gzip or zstd")
	fl.StringVar(&b.certs, "certs", "auto", "CA certificates: auto (when a TLS library is in), always or never")
	fl.BoolVar(&b.tzdata, "tzdata", false, "add the root's /usr/share/zoneinfo")
	fl.BoolVar(&b.force, "force", false, "replace an existing output")
	fl.BoolVar(&b.insecure, "insecure", false, "allow plain HTTP registries (loopback ones are always allowed)")
	fl.BoolVarP(&b.verbose, "verbose", "v", false, "list every file of the result and why it is in (on stderr)")
	fl.BoolVar(&b.explain, "explain", false, "print, for every file the image would hold, why (the chain of reasons) on stdout, and write nothing (-o not needed)")
	fl.StringArrayVar(&b.noRules, "no-rule", nil, "do not apply this run-time rule (see `scratchpack rules`); repeatable")
	fl.StringVar(&b.gconv, "gconv", "auto", "gconv modules when iconv_open is imported: auto (common ones), all, or a comma-separated list (UTF-16,ISO8859-2)")
	fl.StringArrayVar(&b.locales, "locale", nil, "add this locale's data (C.UTF-8, de_DE.UTF-8...); repeatable")
	fl.StringArrayVar(&b.traces, "trace", nil, "run a workload under ptrace and add every file it uses: --trace=\"CMD ARGS\", or --trace alone with the command after --; "+
		"repeatable (the only mode that runs anything; inside --root when set)")
	fl.Lookup("trace").NoOptDefVal = traceAfterDash
	fl.StringArrayVar(&b.traceFiles, "trace-file", nil, "add the files an `strace -f -e trace=file,process -o LOG` log shows were used; repeatable")
	fl.StringVar(&b.traceFileCwd, "trace-file-cwd", "", "the directory strace ran in, for relative paths in --trace-file logs (default: the current directory)")
	fl.DurationVar(&b.traceTimeout, "trace-timeout", 5*time.Minute, "kill a traced workload after this long")
	if err := fl.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2, err: err}
	}
	files := fl.Args()
	var afterDash []string
	if n := fl.ArgsLenAtDash(); n >= 0 {
		files, afterDash = fl.Args()[:n], fl.Args()[n:]
	}
	workloads, err := traceWorkloads(b.traces, afterDash)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(files) == 0 {
		fl.Usage()
		return &exitError{code: 2, err: errors.New("no FILE given")}
	}
	var dest collector.Dest
	switch {
	case b.output == "" && !b.explain:
		return &exitError{code: 2, err: errors.New("no output given: -o DEST (for example -o dir:out or -o oci:image:latest)")}
	case b.output != "":
		if dest, err = collector.ParseDest(b.output); err != nil {
			return &exitError{code: 2, err: err}
		}
	}
	for _, r := range b.noRules {
		if !slices.ContainsFunc(collector.Rules(), func(rule collector.Rule) bool { return rule.Name == r }) {
			return &exitError{code: 2, err: fmt.Errorf("--no-rule %s: no such rule (see `scratchpack rules`)", r)}
		}
	}
	switch b.compression {
	case "gzip", "zstd":
	default:
		return &exitError{code: 2, err: fmt.Errorf("--compression %q: want gzip or zstd", b.compression)}
	}
	if dest.Path != "" && !b.explain {
		// Refuse an existing output before doing any work.
		if err := collector.CheckDest(dest.Path, b.force); err != nil {
			return &exitError{code: 1, err: err}
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	return build(ctx, b, files, workloads, dest, stdout, stderr)
}

func build(ctx context.Context, b buildFlags, files []string, workloads [][]string, dest collector.Dest, stdout, stderr io.Writer) error {
	// The planner sets each resolver's CPU choice itself (after these options, so it wins).
	ropts, err := resolverOptions(b.root, b.libPath, "host", "", "", b.cwd, b.libPath != "")
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	popts := []collector.PlanOption{collector.WithResolverOptions(ropts...)}
	switch b.cpu {
	case "all":
	case "host":
		popts = append(popts, collector.WithCPUs(elfdeps.HostCPU))
	case "baseline":
		popts = append(popts, collector.WithCPUs(elfdeps.BaselineCPU))
	default:
		return &exitError{code: 2, err: fmt.Errorf("unknown --cpu %q (want all, host or baseline)", b.cpu)}
	}
	if b.verbose {
		popts = append(popts, collector.WithPlanLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	p, err := collector.NewPlanner(b.root, popts...)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	for _, f := range files {
		if err := p.AddProgram(f, "input"); err != nil {
			return err
		}
	}
	for _, a := range b.adds {
		src, dst, _ := strings.Cut(a, ":")
		if dst == "" {
			abs, err := filepath.Abs(src)
			if err != nil {
				return err
			}
			dst = filepath.ToSlash(abs)
		}
		if err := p.AddHostPath(src, dst, "--add "+a); err != nil {
			return err
		}
	}
	if err := addTraces(ctx, p, b, workloads, dest, stderr); err != nil {
		return err
	}
	notes, err := p.ApplyRules(collector.RuleOptions{
		Disabled: b.noRules, Gconv: b.gconv, Locales: b.locales,
		Base: collector.BaseFiles{User: b.user, Certs: b.certs, TZData: b.tzdata},
	})
	if err != nil {
		return err
	}
	if len(p.Problems) > 0 {
		return fmt.Errorf("nothing written: the closure is incomplete:\n  %v", errors.Join(p.Problems...))
	}
	if b.workdir != "" {
		if err := p.Tree().Add(collector.Entry{Path: b.workdir, Kind: collector.KindDir, Mode: 0o755, Why: []string{"--workdir"}}); err != nil {
			return err
		}
	}
	for _, n := range notes {
		fmt.Fprintf(stderr, "scratchpack build: %s\n", n)
	}
	if b.explain {
		return p.Tree().Explain(stdout)
	}
	if b.verbose {
		for _, e := range p.Tree().Entries() {
			if len(e.Why) > 0 {
				fmt.Fprintf(stderr, "  %-60s %s\n", e.Path, strings.Join(e.Why, "; "))
			}
		}
	}
	n, size := p.Tree().Size()
	mtime, err := sourceDateEpoch()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	progress := progressf(stderr)
	progress("writing %d entries, %s, to %s", n, collector.HumanSize(size), dest.Transport)

	switch dest.Transport {
	case "dir":
		err = collector.WriteDir(p.Tree(), dest.Path, mtime, b.force)
	case "tar":
		err = collector.WriteTarFile(p.Tree(), dest.Path, mtime, b.force)
	case "cpio":
		err = collector.WriteCPIOFile(p.Tree(), dest.Path, mtime, b.force)
	default:
		return writeImage(ctx, b, files, p, dest, mtime, stdout, stderr)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, dest.Path)
	return nil
}

func writeImage(ctx context.Context, b buildFlags, files []string, p *collector.Planner, dest collector.Dest, mtime time.Time, stdout, stderr io.Writer) error {
	cfg := collector.ImageConfig{
		Entrypoint: b.entrypoint, Cmd: b.cmd, Env: b.env, User: b.user, WorkingDir: b.workdir,
		Created: mtime, Compression: b.compression,
	}
	if len(cfg.Entrypoint) == 0 {
		cfg.Entrypoint = []string{absInImage(files[0], b)}
	}
	var err error
	if cfg.Labels, err = keyValues("--label", b.labels); err != nil {
		return &exitError{code: 2, err: err}
	}
	if cfg.Annotations, err = keyValues("--annotation", b.annotations); err != nil {
		return &exitError{code: 2, err: err}
	}
	for _, e := range b.env {
		if !strings.Contains(e, "=") {
			return &exitError{code: 2, err: fmt.Errorf("--env %q: want K=V", e)}
		}
	}
	if b.platform != "" {
		if cfg.Platform, err = collector.ParsePlatform(b.platform); err != nil {
			return &exitError{code: 2, err: err}
		}
	} else {
		f := p.FirstProgram()
		if cfg.Platform, err = collector.PlatformFor(f.Machine, f.Class, f.Data, f.Flags); err != nil {
			return err
		}
	}
	if b.base != "" {
		if cfg.Base, err = collector.LoadBase(ctx, b.base, b.insecure, collector.WithBasePlatform(cfg.Platform)); err != nil {
			return err
		}
	}
	img, err := collector.BuildImage(p.Tree(), cfg)
	if err != nil {
		return err
	}
	digest, err := img.Digest()
	if err != nil {
		return err
	}
	switch dest.Transport {
	case "oci":
		err = collector.WriteOCILayout(img, dest.Path, dest.Ref, b.force)
	case "docker-archive":
		// A docker-archive keeps no manifest (docker load makes up its own), so the stable name of what it
		// holds is the config digest: the image ID `docker load` prints.
		err = collector.WriteDockerArchive(img, dest.Path, dest.Ref, b.force)
		if err == nil {
			digest, err = img.ConfigName()
		}
	case "docker":
		var updates chan v1.Update
		if isTerminal(stderr) {
			updates = make(chan v1.Update, 16)
			go showProgress(stderr, updates)
		}
		digest, err = collector.Push(ctx, img, dest.Ref, b.insecure, updates)
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, digest)
	return nil
}

// absInImage is where a FILE argument lands in the image: its absolute path inside the root.
func absInImage(file string, b buildFlags) string {
	if strings.HasPrefix(file, "/") {
		return file
	}
	cwd := b.cwd
	if cwd == "" {
		if filepath.Clean(b.root) == "/" {
			cwd, _ = os.Getwd()
		} else {
			cwd = "/"
		}
	}
	return filepath.ToSlash(filepath.Join(cwd, file))
}

func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%s %q: want K=V", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

// sourceDateEpoch is the time every entry and the image's created field carry: SOURCE_DATE_EPOCH if set
// (reproducible-builds.org), else the Unix epoch, so that the same inputs give the same digest anywhere.
func sourceDateEpoch() (time.Time, error) {
	v := os.Getenv("SOURCE_DATE_EPOCH")
	if v == "" {
		return time.Unix(0, 0).UTC(), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds", v)
	}
	return time.Unix(n, 0).UTC(), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressf prints a progress line on stderr only when stderr is a terminal.
func progressf(stderr io.Writer) func(format string, args ...any) {
	if !isTerminal(stderr) {
		return func(string, ...any) {}
	}
	return func(format string, args ...any) { fmt.Fprintf(stderr, "scratchpack build: "+format+"\n", args...) }
}

func showProgress(w io.Writer, updates <-chan v1.Update) {
	for u := range updates {
		if u.Error != nil {
			return
		}
		if u.Total > 0 {
			fmt.Fprintf(w, "\rpushing: %s of %s", collector.HumanSize(u.Complete), collector.HumanSize(u.Total))
		}
	}
	fmt.Fprintln(w)
}
