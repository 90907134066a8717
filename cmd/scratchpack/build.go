package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/scratchpack/scratchpack/collector"
	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/elfdeps"
	"github.com/scratchpack/scratchpack/internal/registry"
)

type buildFlags struct {
	roots                            []string
	libPath, cpu, cwd                string
	outputs                          []string
	adds                             []string
	entrypoint, cmd, env             []string
	user, workdir                    string
	labels, annotations              []string
	platform, base, compression      string
	layering, layerCache             string
	maxLayers                        int
	certs                            string
	force, tzdata, insecure, verbose bool
	literalBudget                    string
	packageMetadata                  bool
	sbomFormat, sbomFile             string
	keepSetuid                       bool
	registryTimeout                  time.Duration
	credHelpers                      bool
	explain                          bool
	noRules, locales                 []string
	gconv                            string
	traces, traceFiles               []string
	traceFileCwd                     string
	traceTimeout                     time.Duration
	traceEnv                         []string
	traceInheritEnv                  bool
	traceUser                        string
	stdin                            *os.File // passed to the traced workloads
	format                           string
}

// buildAbout is what build's help says above its flags.
func buildAbout() string {
	var s strings.Builder
	s.WriteString("Builds a minimal root filesystem or FROM-scratch image holding each FILE and exactly what it needs.\n" +
		"Nothing is run. A FILE is SRC (put at its own path) or SRC:DEST (put at DEST, an absolute path; what SRC\n" +
		"finds through $ORIGIN moves with it). The last ':' splits; a SRC whose name holds ':' is given as SRC:\n" +
		"or SRC:DEST. With --root OS/ARCH=ROOT for each platform, every FILE is taken from every root, and the\n" +
		"images make one image index. DEST is one of:\n")
	for _, t := range collector.Transports {
		fmt.Fprintf(&s, "  %-27s %s\n", t.Form, t.What)
	}
	return strings.TrimSuffix(s.String(), "\n")
}

// buildFlagSet defines build's flags (for parsing, help and completion).
func buildFlagSet() (*pflag.FlagSet, *buildFlags) {
	fl := pflag.NewFlagSet("build", pflag.ContinueOnError)
	b := &buildFlags{}
	fl.StringArrayVarP(&b.outputs, "output", "o", nil, "where to write the result (see above; required); repeatable: one build, several outputs, one result line each")
	fl.StringArrayVar(&b.roots, "root", nil, "take FILEs and their libraries from this root: a directory (a sysroot), or an image: oci:PATH[:TAG], docker-archive:PATH[:REF], docker://REF (default /); "+
		"OS/ARCH[/VARIANT]=ROOT, repeatable, builds that platform's image from ROOT: several make one image index (oci: or docker:// outputs)")
	fl.StringVar(&b.libPath, "library-path", "", "resolve as if LD_LIBRARY_PATH were set to this value")
	fl.StringVar(&b.cpu, "cpu", "all", "which CPU variants to include: all (every glibc-hwcaps and legacy hwcap variant the loader could pick on any CPU of the architecture), host or baseline")
	fl.StringVar(&b.cwd, "cwd", "", "working directory inside the root for relative names (default: the current directory with --root /, else /)")
	fl.StringArrayVar(&b.adds, "add", nil, "add a host file or tree: SRC[:DEST] (DEST defaults to SRC's absolute path); ELF files get their closure from the root, found from DEST; "+
		"OS/ARCH[/VARIANT]=SRC[:DEST] adds it to that platform's image only (a program cross-built for it); repeatable")
	fl.StringArrayVar(&b.entrypoint, "entrypoint", nil, "image entrypoint, one argument per flag (default: where the first FILE is in the image)")
	fl.StringArrayVar(&b.cmd, "cmd", nil, "image command (arguments to the entrypoint), one argument per flag")
	fl.StringArrayVar(&b.env, "env", nil, "image environment variable K=V; repeatable")
	fl.StringVar(&b.user, "user", "", "user to run as: NAME, UID, NAME:GROUP or UID:GID (a NAME gets passwd/group lines: the root's ids for it, else 65532; and a home directory it owns)")
	fl.StringVar(&b.workdir, "workdir", "", "image working directory (created in the image, owned by --user)")
	fl.StringArrayVar(&b.labels, "label", nil, "image config label K=V; repeatable")
	fl.StringArrayVar(&b.annotations, "annotation", nil, "image manifest annotation K=V; repeatable")
	fl.StringVar(&b.platform, "platform", "", "image platform os/arch[/variant] (default: from the ELF machine of the first FILE); also the platform picked from a multi-platform --root or --base, "+
		"and with OS/ARCH=ROOT roots the one to build alone")
	fl.StringVar(&b.base, "base", "", "base image to add the layer to: oci:PATH[:TAG], docker-archive:PATH[:REF] or docker://REF (default: empty, FROM scratch)")
	fl.StringVar(&b.compression, "compression", "gzip", "layer compression: gzip or zstd")
	fl.StringVar(&b.layering, "layering", "single", "how files are split into layers: single (one layer) or package (a layer per Debian package of the root, the most depended-on lowest, then one for the rest: images from one root share their common packages' layers)")
	fl.StringVar(&b.layerCache, "layer-cache", "", "keep compressed layers in this directory, by content: an unchanged layer (a package's, with --layering package) is not compressed again by the next build (nothing is evicted)")
	fl.IntVar(&b.maxLayers, "max-layers", collector.DefaultMaxLayers, "with --layering package, at most this many layers (the smallest packages share one)")
	fl.StringVar(&b.certs, "certs", "auto", "CA certificates: auto (when a TLS library is in), always or never")
	fl.BoolVar(&b.tzdata, "tzdata", false, "add the root's /usr/share/zoneinfo")
	fl.BoolVar(&b.force, "force", false, "replace an existing output")
	fl.BoolVar(&b.keepSetuid, "keep-setuid", false, "keep files' setuid, setgid and sticky bits and file capabilities (removed by default: a user's setuid file must not become root's)")
	fl.BoolVar(&b.insecure, "insecure", false, "allow plain HTTP registries (loopback ones are always allowed)")
	fl.BoolVar(&b.credHelpers, "cred-helpers", false, "let the Docker config's credsStore/credHelpers run their docker-credential-NAME program for registry credentials (off: only the config's own auths are used, and nothing is run)")
	fl.DurationVar(&b.registryTimeout, "registry-timeout", registry.DefaultRequestTimeout, "give up a registry request (a layer's upload or download included) after this long; a connection that moves nothing for 2m is dropped anyway")
	fl.BoolVarP(&b.verbose, "verbose", "v", false, "list every file of the result and why it is in (on stderr)")
	fl.BoolVar(&b.explain, "explain", false, "print, for every file the image would hold, why (the chain of reasons) on stdout, and write nothing (-o not needed)")
	fl.StringArrayVar(&b.noRules, "no-rule", nil, "do not apply this run-time rule (see 'scratchpack rules'); repeatable")
	fl.StringVar(&b.gconv, "gconv", "auto", "gconv modules when iconv_open is imported: auto (common ones), all, or a comma-separated list (UTF-16,ISO8859-2)")
	fl.StringVar(&b.sbomFormat, "sbom", "", "write a software bill of materials into the image: spdx (SPDX 2.3 JSON, at "+collector.SBOMPath("spdx")+") or cyclonedx (CycloneDX 1.5 JSON, at "+collector.SBOMPath("cyclonedx")+")")
	fl.StringVar(&b.sbomFile, "sbom-file", "", "also write the SBOM to this file (format: --sbom, spdx when not given; replaced only with --force)")
	fl.BoolVar(&b.packageMetadata, "package-metadata", true, "write Debian package metadata for scanners (/var/lib/dpkg/status.d) when the root has a dpkg database")
	fl.StringVar(&b.literalBudget, "literal-budget", "256MiB", "fail when the literals rule (paths programs name in their data) would add more than this: bytes, or with KiB, MiB, GiB")
	fl.StringArrayVar(&b.locales, "locale", nil, "add this locale's data (C.UTF-8, de_DE.UTF-8...); repeatable")
	fl.StringArrayVar(&b.traces, "trace", nil, "run a workload under ptrace and add every file it uses: --trace=\"CMD ARGS\", or --trace alone with the command after --; "+
		"repeatable (the only mode that runs anything; inside --root when set)")
	fl.Lookup("trace").NoOptDefVal = traceAfterDash
	fl.StringArrayVar(&b.traceFiles, "trace-file", nil, "add the files an 'strace -f -e trace=file,process -o LOG' log shows were used; repeatable")
	fl.StringVar(&b.traceFileCwd, "trace-file-cwd", "", "the directory strace ran in, for relative paths in --trace-file logs (default: the current directory)")
	fl.DurationVar(&b.traceTimeout, "trace-timeout", 5*time.Minute, "kill a traced workload after this long")
	fl.StringArrayVar(&b.traceEnv, "trace-env", nil, "set K=V in the traced workload's environment only (not in the image's); repeatable")
	fl.BoolVar(&b.traceInheritEnv, "trace-inherit-env", false, "start the traced workload's environment from this command's own (default: only the image's --env, a PATH, HOME and LANG)")
	fl.StringVar(&b.traceUser, "trace-user", "", "run the traced workload as this user of the root (NAME, UID, NAME:GROUP or UID:GID), e.g. for programs that refuse root")
	fl.StringVar(&b.format, "format", "text", "what stdout says: text (one line per output: the path or the digest) or json (one object: outputs, platform, files, bytes)")
	return fl, b
}

func runBuild(args []string, stdout, stderr io.Writer) error {
	fl, bp := buildFlagSet()
	if help, err := parseFlags(fl, args, stdout); help || err != nil {
		return err
	}
	stderr = quoteWriter{stderr}
	b := *bp
	b.stdin = os.Stdin
	imageOnly := changedFlags(fl, "entrypoint", "cmd", "env", "label", "annotation", "base", "compression", "layering", "max-layers", "layer-cache")
	files := fl.Args()
	var afterDash []string
	if n := fl.ArgsLenAtDash(); n >= 0 {
		files, afterDash = fl.Args()[:n], fl.Args()[n:]
	}
	workloads, err := traceWorkloads(b.traces, afterDash)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if len(files) == 0 && len(b.adds) == 0 {
		return &exitError{code: 2, err: errors.New("no FILE given (see 'scratchpack build --help')")}
	}
	switch b.format {
	case "text", "json":
	default:
		return &exitError{code: 2, err: fmt.Errorf("unknown --format %q (want text or json)", b.format)}
	}
	if len(b.outputs) == 0 && !b.explain {
		return &exitError{code: 2, err: errors.New("no output given: -o DEST (for example -o dir:out or -o oci:image:latest)")}
	}
	dests, err := parseOutputs(b.outputs)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if !slices.ContainsFunc(dests, collector.Dest.IsImage) && len(imageOnly) > 0 && !b.explain {
		fmt.Fprintf(stderr, "scratchpack build: warning: %s only apply to images (oci:, docker-archive:, docker://): a %s output has no image config\n",
			strings.Join(imageOnly, ", "), dests[0].Transport)
	}
	// INT, TERM and HUP cancel the build: everything stops, nothing is left, the exit status is 130.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	spec, cleanup, err := b.spec(ctx, files, workloads, dests, stdout, stderr)
	if err != nil {
		return err
	}
	defer cleanup()
	res, err := collector.Build(ctx, spec)
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: 130, err: errors.New("interrupted: nothing was written")}
		}
		return withHint(err)
	}
	var stripped []string
	for _, one := range platformResults(res) {
		prefix := ""
		if len(res.Children) > 0 {
			prefix = one.Platform.String() + ":"
		}
		for _, e := range one.Tree.Entries() {
			if (e.Stripped != 0 || e.CapabilityStripped) && !slices.Contains(stripped, e.Path) {
				stripped = append(stripped, e.Path)
			}
			if b.verbose && len(e.Origins) > 0 {
				fmt.Fprintf(stderr, "  %s%-60s %s\n", prefix, e.Path, strings.Join(e.Why(), "; "))
			}
		}
	}
	if len(stripped) > 0 {
		fmt.Fprintf(stderr, "scratchpack build: removed setuid/setgid/sticky bits or file capabilities from %s (--keep-setuid keeps them)\n", strings.Join(stripped, ", "))
	}
	if b.explain {
		return nil
	}
	if b.format == "json" {
		return writeBuildJSON(stdout, res, dests)
	}
	fmt.Fprintln(stdout, res.Output)
	return nil
}

// platformResults are a build's results with a tree: its children for an index, else itself.
func platformResults(res *collector.Result) []*collector.Result {
	if len(res.Children) > 0 {
		return res.Children
	}
	return []*collector.Result{res}
}

// buildJSON is what build --format json prints: the first output's path, reference and digest at the top
// (the usual case is one output), every output in outputs, and what went in.
type buildJSON struct {
	Path      string       `json:"path,omitempty"`
	Reference string       `json:"reference,omitempty"`
	Digest    string       `json:"digest,omitempty"`
	Platform  string       `json:"platform,omitempty"`
	Files     int          `json:"files"`
	Bytes     int64        `json:"bytes"`
	Outputs   []outputJSON `json:"outputs"`
	// Platforms are an image index's children (the top-level digest is then the index's).
	Platforms []platformJSON `json:"platforms,omitempty"`
}

type platformJSON struct {
	Platform string `json:"platform"`
	Digest   string `json:"digest"`
	Files    int    `json:"files"`
	Bytes    int64  `json:"bytes"`
}

type outputJSON struct {
	Output    string `json:"output"` // as given to -o
	Transport string `json:"transport"`
	Path      string `json:"path,omitempty"`
	Reference string `json:"reference,omitempty"`
	Digest    string `json:"digest,omitempty"` // images: the manifest digest (docker-archive: the config digest, the image ID)
}

func writeBuildJSON(w io.Writer, res *collector.Result, dests []collector.Dest) error {
	out := buildJSON{Outputs: []outputJSON{}}
	if res.Platform.Architecture != "" {
		out.Platform = res.Platform.String()
	}
	for _, one := range platformResults(res) {
		pj := platformJSON{Platform: one.Platform.String(), Digest: one.Output}
		for _, e := range one.Tree.Entries() {
			if e.Kind == collector.KindFile {
				pj.Files++
				pj.Bytes += e.Size
			}
		}
		out.Files += pj.Files
		out.Bytes += pj.Bytes
		if len(res.Children) > 0 {
			out.Platforms = append(out.Platforms, pj)
		}
	}
	lines := strings.Split(res.Output, "\n")
	for i, d := range dests {
		o := outputJSON{Output: d.String(), Transport: d.Transport, Path: d.Path, Reference: d.Ref}
		if d.Transport == "docker-archive" && o.Reference == "" {
			o.Reference = collector.DefaultArchiveRef
		}
		if d.IsImage() && i < len(lines) {
			o.Digest = lines[i]
		}
		out.Outputs = append(out.Outputs, o)
	}
	if len(out.Outputs) > 0 {
		out.Path, out.Reference, out.Digest = out.Outputs[0].Path, out.Outputs[0].Reference, out.Outputs[0].Digest
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// spec maps the flags to a build spec; usage errors exit 2. cleanup closes the root.
func (b buildFlags) spec(ctx context.Context, files []string, workloads [][]string, dests []collector.Dest, stdout, stderr io.Writer) (collector.Spec, func(), error) {
	usage := func(err error) (collector.Spec, func(), error) {
		return collector.Spec{}, nil, &exitError{code: 2, err: err}
	}
	s := collector.Spec{
		Base: b.base, Insecure: b.insecure, WorkDir: b.workdir, KeepSetuid: b.keepSetuid, RegistryTimeout: b.registryTimeout, CredentialHelpers: b.credHelpers,
		Rules: collector.RuleOptions{
			Disabled: b.noRules, Gconv: b.gconv, Locales: b.locales,
			Base: collector.BaseFiles{User: b.user, Certs: b.certs, TZData: b.tzdata},
		},
		Log: slog.New(&noteHandler{w: stderr, verbose: b.verbose}),
	}
	if err := collector.CheckUser(b.user); err != nil {
		return usage(fmt.Errorf("--user: %w", err))
	}
	if err := collector.CheckUser(b.traceUser); err != nil {
		return usage(fmt.Errorf("--trace-user: %w", err))
	}
	for _, kv := range b.traceEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return usage(fmt.Errorf("--trace-env %q: want K=V", kv))
		}
	}
	budget, err := parseSize(b.literalBudget)
	if err != nil {
		return usage(fmt.Errorf("--literal-budget: %w", err))
	}
	s.Rules.LiteralBudget = budget
	s.Rules.NoPackageMetadata = !b.packageMetadata
	if err := collector.CheckSBOMFormat(b.sbomFormat); err != nil {
		return usage(fmt.Errorf("--sbom: %w", err))
	}
	s.SBOM = collector.SBOMSpec{Format: b.sbomFormat, InImage: b.sbomFormat != "", File: b.sbomFile, Force: b.force, Tool: version()}
	if s.SBOM.File != "" && s.SBOM.Format == "" {
		s.SBOM.Format = "spdx"
	}
	s.Image = collector.ImageConfig{Entrypoint: b.entrypoint, Cmd: b.cmd, Env: b.env, User: b.user, Compression: b.compression,
		Layering: b.layering, MaxLayers: b.maxLayers}
	if b.layerCache != "" {
		s.Image.LayerCache = &collector.LayerCache{Dir: b.layerCache}
	}
	if s.Image.Labels, err = keyValues("--label", b.labels); err != nil {
		return usage(err)
	}
	if s.Image.Annotations, err = keyValues("--annotation", b.annotations); err != nil {
		return usage(err)
	}
	var platform *v1.Platform
	if b.platform != "" {
		if s.Image.Platform, err = collector.ParsePlatform(b.platform); err != nil {
			return usage(err)
		}
		platform = &s.Image.Platform
	}
	if s.Image.Created, err = sourceDateEpoch(); err != nil {
		return usage(err)
	}
	switch b.cpu {
	case "all":
	case "host":
		s.CPUs = append(s.CPUs, elfdeps.HostCPU)
	case "baseline":
		s.CPUs = append(s.CPUs, elfdeps.BaselineCPU)
	default:
		return usage(fmt.Errorf("unknown --cpu %q (want all, host or baseline)", b.cpu))
	}
	// The planner sets each resolver's CPU choice itself (after these options, so it wins).
	roots, err := parseRoots(b.roots)
	if err != nil {
		return usage(err)
	}
	if s.Resolve, err = resolverOptions(roots.plain, b.libPath, "host", "", "", b.cwd, b.libPath != ""); err != nil {
		return usage(err)
	}
	for _, f := range files {
		src, dst, err := splitPlacement(f)
		if err != nil {
			return usage(err)
		}
		s.Programs = append(s.Programs, collector.Program{Path: src, Dest: dst})
	}
	var perPlatform []platformAdd
	for _, a := range b.adds {
		plat, value, forOne, err := splitPlatform(a)
		if err != nil {
			return usage(fmt.Errorf("--add %q: %w", a, err))
		}
		src, dst, err := splitPlacement(value)
		if err != nil {
			return usage(fmt.Errorf("--add: %w", err))
		}
		if dst == "" {
			abs, err := filepath.Abs(src)
			if err != nil {
				return usage(err)
			}
			dst = filepath.ToSlash(abs)
		}
		if forOne {
			perPlatform = append(perPlatform, platformAdd{plat, collector.Add{Src: src, Dest: dst}})
		} else {
			s.Adds = append(s.Adds, collector.Add{Src: src, Dest: dst})
		}
	}
	if platform != nil && len(roots.platforms) > 0 {
		if err := roots.pick(*platform); err != nil {
			return usage(err)
		}
	}
	shared, own, err := roots.sortAdds(perPlatform, platform)
	if err != nil {
		return usage(err)
	}
	s.Adds = append(s.Adds, shared...)
	for i, pr := range roots.platforms {
		s.Platforms = append(s.Platforms, collector.PlatformRoot{Platform: pr.platform, Adds: own[i]})
	}
	// The one root traces run in: the plain one, or the platform --platform picked.
	traceRoot := roots.plain
	if len(roots.platforms) == 1 {
		traceRoot = roots.platforms[0].root
	}
	hostRoot := roots.plain != "" && !rootfs.IsImageRef(roots.plain) && filepath.Clean(roots.plain) == "/"
	for _, argv := range workloads {
		var base []string
		if b.traceInheritEnv {
			base = os.Environ()
		}
		w := collector.Workload{Argv: argv, Env: traceEnv(base, b.env, b.traceEnv), Timeout: b.traceTimeout,
			Stdout: stderr, Stderr: stderr, Stdin: b.stdin, User: b.traceUser}
		if hostRoot {
			w.Dir = b.cwd
		}
		s.Workloads = append(s.Workloads, w)
	}
	for _, f := range b.traceFiles {
		cwd := b.traceFileCwd
		if cwd == "" {
			cwd, _ = os.Getwd()
		}
		s.TraceLogs = append(s.TraceLogs, collector.TraceLog{Path: f, Cwd: cwd})
	}
	s.TraceExclude = collector.DefaultTraceExclude("")
	for _, d := range dests {
		if d.Path != "" && hostRoot { // an output outside the root cannot be traced inside it
			abs, _ := filepath.Abs(d.Path)
			s.TraceExclude.Prefixes = append(s.TraceExclude.Prefixes, abs)
		}
	}
	if b.explain {
		s.Explain = stdout
	} else {
		o := collector.SinkOptions{Force: b.force, Insecure: b.insecure, Timeout: b.registryTimeout, CredentialHelpers: b.credHelpers,
			LayerCache: s.Image.LayerCache}
		if s.Sink, err = outputSink(dests, o, stderr); err != nil {
			return usage(err)
		}
	}
	if rootfs.IsImageRef(traceRoot) && (len(s.Workloads) > 0 || len(s.TraceLogs) > 0) {
		return usage(fmt.Errorf("--trace and --trace-file need a directory --root; %s is an image", traceRoot))
	}
	// Everything is checked before the root is opened: an image root is read whole.
	if err := s.Check(); err != nil {
		return collector.Spec{}, nil, withHint(err)
	}
	ropts := []rootfs.LoadOption{rootfs.WithInsecure(b.insecure), rootfs.WithRequestTimeout(b.registryTimeout), rootfs.WithCredentialHelpers(b.credHelpers)}
	if len(roots.platforms) > 0 {
		opened, err := openPlatformRoots(ctx, roots.platforms, ropts)
		if err != nil {
			return collector.Spec{}, nil, err
		}
		for i := range opened {
			s.Platforms[i].Root = opened[i]
		}
		return s, func() {
			for _, r := range opened {
				r.Close()
			}
		}, nil
	}
	if platform != nil {
		ropts = append(ropts, rootfs.WithPlatform(*platform))
	}
	if s.Root, err = rootfs.Open(ctx, roots.plain, ropts...); err != nil {
		return collector.Spec{}, nil, fmt.Errorf("opening the root: %w", err)
	}
	return s, func() { s.Root.Close() }, nil
}

// parseOutputs parses -o values, refusing two that write the same place.
func parseOutputs(outputs []string) ([]collector.Dest, error) {
	var dests []collector.Dest
	seen := map[string]string{}
	for _, o := range outputs {
		d, err := collector.ParseDest(o)
		if err != nil {
			return nil, err
		}
		key := "docker://" + d.Ref
		if d.Path != "" {
			key, _ = filepath.Abs(d.Path)
		}
		if prev, ok := seen[key]; ok {
			return nil, fmt.Errorf("-o %s and -o %s write the same place", prev, o)
		}
		seen[key] = o
		dests = append(dests, d)
	}
	return dests, nil
}

// outputSink is the sink writing to every dest (one, or Multi), a push showing its progress on a terminal.
func outputSink(dests []collector.Dest, o collector.SinkOptions, stderr io.Writer) (collector.Sink, error) {
	var sinks []collector.Sink
	for _, d := range dests {
		do := o
		if d.Transport == "docker" && isTerminal(stderr) {
			updates := make(chan v1.Update, 16)
			go showProgress(stderr, updates)
			do.Progress = updates
		}
		sink, err := collector.NewSink(d, do)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, sink)
	}
	if len(sinks) == 1 {
		return sinks[0], nil
	}
	return collector.Multi(sinks...), nil
}

// changedFlags lists, as --name, those of names given on the command line.
func changedFlags(fl *pflag.FlagSet, names ...string) []string {
	var out []string
	for _, n := range names {
		if fl.Changed(n) {
			out = append(out, "--"+n)
		}
	}
	return out
}

// splitPlacement splits SRC[:DEST] at its last ':'. DEST must be absolute; "SRC:" (nothing after the last
// ':') is SRC at its own path, which is how a SRC whose name holds a ':' is given.
func splitPlacement(arg string) (src, dest string, err error) {
	i := strings.LastIndexByte(arg, ':')
	if i < 0 {
		return arg, "", nil
	}
	src, dest = arg[:i], arg[i+1:]
	switch {
	case src == "":
		return "", "", fmt.Errorf("%q: no SRC before the ':'", arg)
	case dest == "":
		return src, "", nil
	case !strings.HasPrefix(dest, "/"):
		return "", "", fmt.Errorf("%q: DEST %q is not absolute (a SRC whose name holds ':' is given as SRC: or SRC:DEST)", arg, dest)
	}
	return src, dest, nil
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
	if q, ok := w.(quoteWriter); ok {
		w = q.w
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
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

// withHint adds the flag that would help to a library error.
func withHint(err error) error {
	switch {
	case errors.Is(err, collector.ErrExists):
		return fmt.Errorf("%w (use --force to replace it)", err)
	case errors.Is(err, collector.ErrNoCABundle):
		return fmt.Errorf("%w (or pass --certs never)", err)
	case errors.Is(err, collector.ErrSeveralPlatforms):
		return fmt.Errorf("%w (--platform OS/ARCH builds that one)", err)
	case errors.Is(err, registry.ErrNotHTTPS):
		return fmt.Errorf("%w (pass --insecure to allow plain HTTP)", err)
	}
	return err
}

// noteHandler prints a build's notes (Info and above) on stderr as "scratchpack build: NOTE", and with
// verbose each file added (Debug) as "add PATH: WHY".
type noteHandler struct {
	w       io.Writer
	verbose bool
	attrs   []slog.Attr
}

func (h *noteHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.verbose
}

func (h *noteHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		_, err := fmt.Fprintf(h.w, "scratchpack build: %s\n", r.Message)
		return err
	}
	var b strings.Builder
	b.WriteString("scratchpack build: " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	_, err := fmt.Fprintln(h.w, b.String())
	return err
}

func (h *noteHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &noteHandler{w: h.w, verbose: h.verbose, attrs: append(slices.Clone(h.attrs), attrs...)}
}

func (h *noteHandler) WithGroup(string) slog.Handler { return h }

// parseSize reads a byte count: a number, optionally followed by KiB, MiB or GiB (or K, M, G).
func parseSize(v string) (int64, error) {
	num, mult := strings.TrimSpace(v), int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if n, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("%q is not a size (e.g. 512MiB)", v)
	}
	return n * mult, nil
}
