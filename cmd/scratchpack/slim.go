package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/pflag"

	"github.com/scratchpack/scratchpack/collector"
	"github.com/scratchpack/scratchpack/collector/rootfs"
)

const slimAbout = `Slims an existing image without running it: the programs its entrypoint, command and healthcheck
run (looked up on its PATH; "sh -c LINE" keeps the shell and the programs LINE names; a shell entrypoint
script is read the same way), their closures, every rule build applies, its working directory and volumes,
and --keep paths stay; the config stays whole but its layers and history. --trace also runs a workload in
the unpacked image, sandboxed (its own user, mount, PID and network namespaces, as the image's User), and
keeps what it used. SRC is oci:PATH[:TAG], docker-archive:PATH[:REF] or docker://REF, and is never
changed; a multi-platform SRC slims into an index of every platform (or --platform's alone). DEST is any
output of build.`

type slimFlags struct {
	outputs, keeps                    []string
	traces                            []string
	traceProbe                        string
	traceTimeout                      time.Duration
	platform, compression, layering   string
	certs                             string
	force, insecure, explain, verbose bool
	credHelpers                       bool
}

func slimFlagSet() (*pflag.FlagSet, *slimFlags) {
	fl := pflag.NewFlagSet("slim", pflag.ContinueOnError)
	f := &slimFlags{}
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "where to write the slim image (as build's -o; required); repeatable")
	fl.StringArrayVar(&f.keeps, "keep", nil, "keep this path of the image too, with what it holds (a glob: /usr/share/nginx/html, /etc/app/*.conf); repeatable")
	fl.StringVar(&f.platform, "platform", "", "the platform to take from a multi-platform source (default: this machine's)")
	fl.StringVar(&f.compression, "compression", "gzip", "layer compression: gzip or zstd")
	fl.StringVar(&f.layering, "layering", "single", "single or package (see build --help)")
	fl.StringVar(&f.certs, "certs", "auto", "CA certificates: auto (when a TLS library is in), always or never")
	fl.BoolVar(&f.force, "force", false, "replace an existing output")
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain HTTP registries (loopback ones are always allowed)")
	fl.BoolVar(&f.credHelpers, "cred-helpers", false, "let the Docker config's credential helpers run for registry credentials")
	fl.StringArrayVar(&f.traces, "trace", nil, "also run a workload in the unpacked image (as its User, with its Env and WorkingDir, in user, mount, PID and network namespaces of its own) and keep every file it uses: --trace alone runs the image's Entrypoint and Cmd, or the command after --; --trace=\"CMD ARGS\"; repeatable")
	fl.Lookup("trace").NoOptDefVal = traceAfterDash
	fl.StringVar(&f.traceProbe, "trace-probe", "", "for a server: once the traced workload listens, run this host command (sh -c) in its network namespace (127.0.0.1 is the workload's), then stop the workload")
	fl.DurationVar(&f.traceTimeout, "trace-timeout", time.Minute, "stop a traced workload after this long (its files are kept; a server with no --trace-probe ends so)")
	fl.BoolVar(&f.explain, "explain", false, "print why each file stays, and write nothing")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "list every file that stays and why (on stderr)")
	return fl, f
}

func runSlim(args []string, stdout, stderr io.Writer) error {
	fl, f := slimFlagSet()
	if help, err := parseFlags(fl, args, stdout); help || err != nil {
		return err
	}
	stderr = quoteWriter{stderr}
	args, afterDash := fl.Args(), []string(nil)
	if n := fl.ArgsLenAtDash(); n >= 0 {
		args, afterDash = fl.Args()[:n], fl.Args()[n:]
	}
	if len(args) != 1 {
		return &exitError{code: 2, err: errors.New("give one source image: scratchpack slim SRC -o DEST (see --help)")}
	}
	src := args[0]
	var traces []collector.SlimTrace
	for _, v := range f.traces {
		t := collector.SlimTrace{Timeout: f.traceTimeout, Stdout: stderr, Stderr: stderr}
		switch {
		case v == traceAfterDash && len(afterDash) > 0:
			t.Argv = afterDash
		case v != traceAfterDash:
			argv, err := splitCommand(v)
			if err != nil || len(argv) == 0 {
				return &exitError{code: 2, err: fmt.Errorf("--trace=%q: not a command (%v)", v, err)}
			}
			t.Argv = argv
		}
		if f.traceProbe != "" {
			t.Probe = []string{"/bin/sh", "-c", f.traceProbe}
		}
		traces = append(traces, t)
	}
	if len(afterDash) > 0 && !slices.Contains(f.traces, traceAfterDash) {
		return &exitError{code: 2, err: fmt.Errorf("a command after -- is only used with --trace: %q", strings.Join(afterDash, " "))}
	}
	if f.traceProbe != "" && len(traces) == 0 {
		return &exitError{code: 2, err: errors.New("--trace-probe probes a traced workload: give --trace too")}
	}
	if !rootfs.IsImageRef(src) {
		return &exitError{code: 2, err: fmt.Errorf("%q is not an image reference: want oci:PATH[:TAG], docker-archive:PATH[:REF] or docker://REF", src)}
	}
	if len(f.outputs) == 0 && !f.explain {
		return &exitError{code: 2, err: errors.New("no output given: -o DEST")}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	spec := collector.Spec{Rules: collector.RuleOptions{Base: collector.BaseFiles{Certs: f.certs}},
		Log: slog.New(&noteHandler{w: stderr, verbose: f.verbose})}
	spec.Image = collector.ImageConfig{Compression: f.compression, Layering: f.layering}
	var err error
	if spec.Image.Created, err = sourceDateEpoch(); err != nil {
		return &exitError{code: 2, err: err}
	}
	if f.explain {
		spec.Explain = stdout
	} else {
		dests, err := parseOutputs(f.outputs)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		o := collector.SinkOptions{Force: f.force, Insecure: f.insecure, CredentialHelpers: f.credHelpers}
		if spec.Sink, err = outputSink(dests, o, stderr); err != nil {
			return &exitError{code: 2, err: err}
		}
		if err := spec.Sink.Check(); err != nil {
			return withHint(err)
		}
	}
	lopts := []rootfs.LoadOption{rootfs.WithInsecure(f.insecure), rootfs.WithCredentialHelpers(f.credHelpers)}
	var platforms []v1.Platform
	var index v1.Hash
	if f.platform != "" {
		p, err := collector.ParsePlatform(f.platform)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		lopts = append(lopts, rootfs.WithPlatform(p))
	} else if platforms, index, err = rootfs.Platforms(ctx, src, lopts...); err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	if len(platforms) == 0 {
		platforms = []v1.Platform{{}} // the one image src names (or --platform picks)
	}
	var sources []*slimSource
	defer func() {
		for _, s := range sources {
			s.root.Close()
		}
	}()
	var specs []collector.SlimSpec
	for _, p := range platforms {
		opts := lopts
		if p.OS != "" {
			opts = append(slices.Clone(lopts), rootfs.WithPlatform(p))
		}
		s, err := openSlimSource(ctx, src, opts)
		if err != nil {
			return err
		}
		sources = append(sources, s)
		one := spec
		one.Root = s.root
		specs = append(specs, collector.SlimSpec{Spec: one, Config: s.config, Source: src, Digest: s.digest, Keep: f.keeps, Traces: traces})
	}
	if len(specs) > 1 && len(traces) > 0 {
		return &exitError{code: 2, err: fmt.Errorf("--trace runs the image, and %s has %d platforms: pick one with --platform", src, len(specs))}
	}
	var res *collector.Result
	var plans []collector.SlimPlan
	if len(specs) == 1 {
		var plan collector.SlimPlan
		res, plan, err = collector.Slim(ctx, specs[0])
		plans = []collector.SlimPlan{plan}
	} else {
		res, plans, err = collector.SlimIndex(ctx, specs, index)
	}
	for i, plan := range plans {
		for _, n := range plan.Notes {
			fmt.Fprintf(stderr, "scratchpack slim: %snote: %s\n", sources[i].prefix(len(plans)), n)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return &exitError{code: 130, err: errors.New("interrupted: nothing was written")}
		}
		return withHint(err)
	}
	if f.explain {
		return nil
	}
	children := []*collector.Result{res}
	if len(res.Children) > 0 {
		children = res.Children
	}
	for i, child := range children { // in the sources' order
		if err := sources[i].report(stderr, len(children), child, plans[i], f.verbose); err != nil {
			return err
		}
	}
	fmt.Fprintln(stdout, res.Output)
	return nil
}

// slimSource is one image of the source: its config, manifest digest, files, and their sizes by layer.
type slimSource struct {
	name   string
	img    v1.Image
	config *v1.ConfigFile
	digest v1.Hash
	root   *rootfs.Image
	before map[string]*sizes
}

func openSlimSource(ctx context.Context, src string, opts []rootfs.LoadOption) (*slimSource, error) {
	img, err := rootfs.LoadImage(ctx, src, opts...)
	if err != nil {
		if !strings.Contains(err.Error(), src) {
			err = fmt.Errorf("reading %s: %w", src, err)
		}
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("reading the config of %s: %w", src, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", src, err)
	}
	root, err := rootfs.NewImage(img, src)
	if err != nil {
		return nil, fmt.Errorf("reading the layers of %s: %w", src, err)
	}
	return &slimSource{name: src, img: img, config: cf, digest: digest, root: root, before: layerSizes(root)}, nil
}

// prefix names the source's platform in messages when the source has several.
func (s *slimSource) prefix(platforms int) string {
	if platforms < 2 {
		return ""
	}
	return v1.Platform{OS: s.config.OS, Architecture: s.config.Architecture, Variant: s.config.Variant}.String() + ": "
}

// report prints what the slim image kept of each of the source's layers and in all.
func (s *slimSource) report(w io.Writer, platforms int, res *collector.Result, plan collector.SlimPlan, verbose bool) error {
	pre := "scratchpack slim: " + s.prefix(platforms)
	after := map[string]*sizes{}
	var kept sizes
	for _, e := range res.Tree.Entries() {
		if e.Kind == collector.KindFile {
			kept.add(e.Size)
			l := e.RootLayer() // "" for files the rules wrote
			if after[l] == nil {
				after[l] = &sizes{}
			}
			after[l].add(e.Size)
		}
		if verbose && len(e.Origins) > 0 {
			fmt.Fprintf(w, "  %s%-60s %s\n", s.prefix(platforms), e.Path, strings.Join(e.Why(), "; "))
		}
	}
	layers, err := s.img.Layers()
	if err != nil {
		return fmt.Errorf("reading %s: %w", s.name, err)
	}
	var total sizes
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("reading %s: %w", s.name, err)
		}
		b, a := s.before[d.String()], after[d.String()]
		if b == nil {
			b = &sizes{}
		}
		if a == nil {
			a = &sizes{}
		}
		total.files, total.bytes = total.files+b.files, total.bytes+b.bytes
		fmt.Fprintf(w, "%slayer %d/%d %.19s: kept %s\n", pre, i+1, len(layers), d, a.of(b))
	}
	if g := after[""]; g != nil {
		fmt.Fprintf(w, "%swritten by the rules: %d files, %s\n", pre, g.files, collector.HumanSize(g.bytes))
	}
	fmt.Fprintf(w, "%skept %s: %s\n", pre, strings.Join(plan.Programs, " "), kept.of(&total))
	return nil
}

// sizes counts regular files and their bytes.
type sizes struct {
	files int
	bytes int64
}

func (s *sizes) add(n int64) { s.files, s.bytes = s.files+1, s.bytes+n }

// of says s as a part of whole: "12 of 340 files, 1.2 MB of 80.0 MB (1.5%)".
func (s *sizes) of(whole *sizes) string {
	return fmt.Sprintf("%d of %d files, %s of %s (%.1f%%)", s.files, whole.files, collector.HumanSize(s.bytes),
		collector.HumanSize(whole.bytes), 100*float64(s.bytes)/float64(max(whole.bytes, 1)))
}

// layerSizes counts the regular files an image root shows and their bytes, by the layer each comes from
// (what upper layers replace or delete is not counted).
func layerSizes(root rootfs.FS) map[string]*sizes {
	out := map[string]*sizes{}
	fs.WalkDir(root, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				l := rootfs.MetaOf(fi).Layer
				if out[l] == nil {
					out[l] = &sizes{}
				}
				out[l].add(fi.Size())
			}
		}
		return nil
	})
	return out
}
