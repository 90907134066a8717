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
	"strings"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/scratchpack/scratchpack/collector"
	"github.com/scratchpack/scratchpack/collector/rootfs"
)

const slimAbout = `Slims an existing image without running it: the programs its entrypoint, command and healthcheck
run (looked up on its PATH; "sh -c LINE" keeps the shell and the programs LINE names; a shell entrypoint
script is read the same way), their closures, every rule build applies, its working directory and volumes,
and --keep paths stay; the config stays whole but its layers and history. SRC is oci:PATH[:TAG],
docker-archive:PATH[:REF] or docker://REF, and is never changed. DEST is any output of build.`

type slimFlags struct {
	outputs, keeps                    []string
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
	if fl.NArg() != 1 {
		return &exitError{code: 2, err: errors.New("give one source image: scratchpack slim SRC -o DEST (see --help)")}
	}
	src := fl.Arg(0)
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
	if f.platform != "" {
		p, err := collector.ParsePlatform(f.platform)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		lopts = append(lopts, rootfs.WithPlatform(p))
	}
	img, err := rootfs.LoadImage(ctx, src, lopts...)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading the config of %s: %w", src, err)
	}
	digest, err := img.Digest()
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	root, err := rootfs.NewImage(img, src)
	if err != nil {
		return fmt.Errorf("reading the layers of %s: %w", src, err)
	}
	defer root.Close()
	spec.Root = root
	before := layerSizes(root)
	res, plan, err := collector.Slim(ctx, collector.SlimSpec{Spec: spec, Config: cf, Source: src, Digest: digest, Keep: f.keeps})
	for _, n := range plan.Notes {
		fmt.Fprintf(stderr, "scratchpack slim: note: %s\n", n)
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
		if f.verbose && len(e.Origins) > 0 {
			fmt.Fprintf(stderr, "  %-60s %s\n", e.Path, strings.Join(e.Why(), "; "))
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	var total sizes
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return fmt.Errorf("reading %s: %w", src, err)
		}
		b, a := before[d.String()], after[d.String()]
		if b == nil {
			b = &sizes{}
		}
		if a == nil {
			a = &sizes{}
		}
		total.files, total.bytes = total.files+b.files, total.bytes+b.bytes
		fmt.Fprintf(stderr, "scratchpack slim: layer %d/%d %.19s: kept %s\n", i+1, len(layers), d, a.of(b))
	}
	if g := after[""]; g != nil {
		fmt.Fprintf(stderr, "scratchpack slim: written by the rules: %d files, %s\n", g.files, collector.HumanSize(g.bytes))
	}
	fmt.Fprintf(stderr, "scratchpack slim: kept %s: %s\n", strings.Join(plan.Programs, " "), kept.of(&total))
	fmt.Fprintln(stdout, res.Output)
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
