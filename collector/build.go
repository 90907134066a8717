package collector

import (
	"cmp"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/scratchpack/scratchpack/collector/rootfs"
	"github.com/scratchpack/scratchpack/elfdeps"
	"github.com/scratchpack/scratchpack/internal/trace"
)

// Spec is one build: what to take from which root, what to add, and where to write it. Build runs it.
type Spec struct {
	// Root is where programs and their closures are read from (a directory or an image).
	Root rootfs.FS
	// Platforms, instead of Root, build one image per platform, each from its own root with Adds and the
	// platform's own adds, concurrently, published as one image index (OCI layout or registry: see
	// IndexSink). Each program's ELF machine must be its platform's. One platform builds its image alone.
	Platforms []PlatformRoot
	// declaredPlatform: Image.Platform is the platform root's, which the programs must match.
	declaredPlatform bool
	// Programs are the ELF programs or #! scripts to put in.
	Programs []Program
	// Adds are host files or trees to put in.
	Adds []Add
	// RootPaths are paths of the root put in at their own place, with what they hold (a directory's tree)
	// and their closures (slim keeps an image's working directory and volumes this way).
	RootPaths []string
	// Scripts are files of the root an interpreter of the image runs, given on its command line (python3
	// app.py): each is kept, and the interpreter's rule follows what it imports as for a #! script.
	Scripts []Script
	// Resolve are options for every resolver (library path, working directory); CPUs the CPU choices
	// whose union goes in (default AllCPUVariants).
	Resolve []elfdeps.Option
	CPUs    []func(elf.Machine, elf.Class) elfdeps.CPU
	// Workloads are commands run under ptrace, and TraceLogs strace logs read, whose files are added.
	Workloads []Workload
	TraceLogs []TraceLog
	// TraceExclude leaves paths out of what traces add (DefaultTraceExclude when zero).
	TraceExclude TraceExclude
	// KeepSetuid keeps regular files' setuid, setgid and sticky bits and file capabilities (removed by default).
	KeepSetuid bool
	// Rules tunes the run-time rules.
	Rules RuleOptions
	// WorkDir, if set, is made as a directory in the image (and is the config's working directory).
	WorkDir string
	// Image is the image config (for image outputs). An unset Entrypoint is the first program's path; an
	// unset platform comes from the first program's ELF header.
	Image ImageConfig
	// Base, if set, is the base image's reference (oci:..., docker-archive:..., docker://...), loaded for the
	// image's platform; Insecure allows a plain-HTTP registry for it.
	Base     string
	Insecure bool
	// RegistryTimeout bounds each registry request of the base's pull (0: the default).
	RegistryTimeout time.Duration
	// CredentialHelpers lets the base's pull use the Docker config's credential helpers.
	CredentialHelpers bool
	// SBOM says which software bill of materials to write, into the image and beside it.
	SBOM SBOMSpec
	// Sink is where the result goes; nil with Explain.
	Sink Sink
	// Explain, if set, receives every path's chain of reasons and nothing is written.
	Explain io.Writer
	// Log receives notes (Info: what rules and traces added, what runs) and each file added (Debug).
	Log *slog.Logger
}

// Program is an ELF program or #! script of the root (Path: relative paths are against the resolver's
// working directory), put at Dest in the image, or at its own path when Dest is "".
type Program struct {
	Path, Dest string
}

// Add is a host file or tree put at Dest in the image.
type Add struct {
	Src, Dest string
}

// Workload is a command run under ptrace (inside the root when it is a directory other than "/").
type Workload struct {
	Argv    []string
	Env     []string      // its whole environment
	Dir     string        // its working directory on the host, with the root "/"
	Timeout time.Duration // 0: no limit
	Stdout  io.Writer     // nil: discarded
	Stderr  io.Writer
	Stdin   *os.File // nil: /dev/null
	// User, if set, is who the workload runs as: NAME, UID, NAME:GROUP or UID:GID, looked up in the root's
	// /etc/passwd and /etc/group (a number needs no entry).
	User string
	// RunRoot, if set, is the host directory the workload runs in instead of the spec's root, which may then
	// be any root (an image): a copy of it, as Unpack writes it. Dir is then inside it.
	RunRoot string
	// Sandbox runs the workload in its own user, mount, PID, network, IPC and UTS namespaces, its ids
	// 0..SandboxIDs-1 being host ids SandboxHostID..: RunRoot must be unpacked with that shift. For a
	// workload that is not trusted (an image's own program).
	Sandbox bool
	// Probe, if set, is a host command run once the workload listens on a socket, in the workload's
	// network namespace (so it reaches the workload's 127.0.0.1); when it ends the workload is stopped. Its
	// failure fails the build. For servers, which never exit by themselves.
	Probe []string
}

// Where a sandboxed workload's ids are on the host: ids no account has, so that what the workload is
// root of in its namespace owns nothing outside it.
const (
	SandboxHostID = 1 << 30
	SandboxIDs    = 1 << 16
)

// TraceLog is an `strace -f` log to read: Cwd is the directory strace ran in, for relative paths.
type TraceLog struct {
	Path, Cwd string
}

// Result is what a build made.
type Result struct {
	Tree     *Tree
	Notes    []string
	Output   string      // what the sink returned: the path written or the image digest (one line per sink)
	Platform v1.Platform // the image's, or the first program's (zero when unknown)
	// Children are a multi-platform build's results, one per platform in the index's order (each with its
	// tree, notes and platform; Output the child image's digest). Tree is then nil.
	Children []*Result
}

// Build runs the pipeline: plan the programs' closures in the root, add the host files and what traces
// used, apply the rules, then make the image if the sink wants one and publish. Every input is checked
// before anything runs or is written.
func Build(ctx context.Context, s Spec) (*Result, error) {
	if s.Root == nil && len(s.Platforms) == 0 {
		return nil, errors.New("no root to build from")
	}
	if err := s.Check(); err != nil {
		return nil, err
	}
	if len(s.Platforms) > 0 {
		return buildPlatforms(ctx, s)
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := &Result{}
	note := func(n string) {
		res.Notes = append(res.Notes, n)
		log.Info(n)
	}
	popts := []PlanOption{WithResolverOptions(s.Resolve...), WithPlanLogger(log), WithKeepSetuid(s.KeepSetuid)}
	if len(s.CPUs) > 0 {
		popts = append(popts, WithCPUs(s.CPUs...))
	}
	if hp := hostPrograms(s.Root, s.Adds); len(hp) > 0 {
		popts = append(popts, WithHostPrograms(hp))
	}
	p, err := NewPlanner(s.Root, popts...)
	if err != nil {
		return nil, err
	}
	for _, prog := range s.Programs {
		if err := p.AddProgramAt(prog.Path, prog.Dest); err != nil {
			return nil, err
		}
	}
	for _, a := range s.Adds {
		if err := p.AddHostPath(a.Src, a.Dest, Origin{Kind: OriginAdded, RootPath: a.Src, Reason: "added from " + a.Src}); err != nil {
			return nil, err
		}
	}
	for _, sc := range s.Scripts {
		if err := p.AddRootPath(sc.Path, Origin{Kind: OriginAdded, Reason: "run by " + sc.Interp}); err != nil {
			return nil, fmt.Errorf("keeping %s: %w", sc.Path, err)
		}
		p.scripts = append(p.scripts, sc)
	}
	for _, rp := range s.RootPaths {
		if err := p.AddRootPath(rp, Origin{Kind: OriginAdded, Reason: "kept from the root"}); err != nil {
			return nil, fmt.Errorf("keeping %s: %w", rp, err)
		}
	}
	if s.declaredPlatform {
		if err := p.checkPlatformMatch(s.Image.Platform); err != nil {
			return nil, err
		}
	}
	for _, w := range p.Warnings {
		note("warning: " + w)
	}
	if err := p.addTraces(ctx, s, note); err != nil {
		return nil, err
	}
	notes, err := p.ApplyRules(s.Rules)
	if err != nil {
		return nil, err
	}
	if len(p.Problems) > 0 {
		return nil, fmt.Errorf("nothing written: the closure is incomplete:\n  %v", errors.Join(p.Problems...))
	}
	if s.WorkDir != "" {
		// Owned by the image's user, who works there.
		var uid, gid int
		if u, ok := LookupUser(p, s.Rules.Base.User); ok {
			uid, gid = u.UID, u.GID
		}
		if err := p.AddDir(s.WorkDir, 0o755, uid, gid, Origin{Kind: OriginConfig, Reason: "working directory"}); err != nil {
			return nil, err
		}
	}
	for _, n := range notes {
		note(n)
	}
	var sbomDoc []byte
	if s.Explain == nil {
		name := "image"
		if len(s.Programs) > 0 {
			name = path.Base(s.Programs[0].Path)
		}
		n, doc, err := p.writeSBOM(s, name)
		if err != nil {
			return nil, err
		}
		sbomDoc = doc
		if n != "" {
			note(n)
		}
	}
	res.Tree = p.Tree()
	if s.Explain != nil {
		return res, p.Tree().Explain(s.Explain)
	}
	a := Artifact{Tree: p.Tree(), MTime: s.Image.Created, SBOM: sbomDoc, SBOMFormat: s.SBOM.Format}
	res.Platform, _ = p.platform() // a tree output has none to say when no program tells it
	if s.Sink.WantsImage() {
		if a.Image, err = p.image(ctx, s); err != nil {
			return nil, err
		}
		if cf, err := a.Image.ConfigFile(); err == nil {
			res.Platform = v1.Platform{OS: cf.OS, Architecture: cf.Architecture, Variant: cf.Variant}
		}
	}
	if res.Output, err = s.Sink.Publish(ctx, a); err != nil {
		return nil, err
	}
	return res, nil
}

// Check validates everything in the spec but the root, before any work: Build calls it first, and a
// caller may call it before it opens the root (an image root is read whole when opened).
func (s Spec) Check() error {
	if len(s.Programs) == 0 && len(s.Adds) == 0 && len(s.RootPaths) == 0 {
		return errors.New("nothing to put in the image: no program and no file")
	}
	if s.Sink == nil && s.Explain == nil {
		return errors.New("no output")
	}
	for _, d := range s.Rules.Disabled {
		if !HasRule(d) {
			return fmt.Errorf("no rule named %q (see `scratchpack rules`)", d)
		}
	}
	if err := CheckUser(s.Rules.Base.User); err != nil {
		return err
	}
	if err := CheckUser(s.Image.User); err != nil {
		return err
	}
	switch s.Rules.Base.Certs {
	case "", "auto", "always", "never":
	default:
		return fmt.Errorf("certificates %q: want auto, always or never", s.Rules.Base.Certs)
	}
	if err := CheckLayering(s.Image.Layering, s.Image.MaxLayers); err != nil {
		return err
	}
	switch s.Image.Compression {
	case "", "gzip", "zstd":
	default:
		return fmt.Errorf("layer compression %q: want gzip or zstd", s.Image.Compression)
	}
	if s.WorkDir != "" && !strings.HasPrefix(s.WorkDir, "/") {
		return fmt.Errorf("working directory %q is not absolute", s.WorkDir)
	}
	for _, kv := range s.Image.Env {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return fmt.Errorf("environment variable %q: want K=V", kv)
		}
	}
	for _, a := range s.Adds {
		if _, err := cleanPath(a.Dest); err != nil {
			return fmt.Errorf("adding %s: %w", a.Src, err)
		}
	}
	for _, prog := range s.Programs {
		if prog.Dest != "" {
			if _, err := cleanPath(prog.Dest); err != nil {
				return fmt.Errorf("placing %s: %w", prog.Path, err)
			}
		}
	}
	ownRoots := !slices.ContainsFunc(s.Workloads, func(w Workload) bool { return w.RunRoot == "" })
	if (len(s.Workloads) > 0 && !ownRoots || len(s.TraceLogs) > 0) && s.Root != nil && hostDir(s.Root) == "" {
		return fmt.Errorf("tracing a run needs a directory root; %s is an image", s.Root)
	}
	if s.Sink != nil && s.Explain == nil {
		if err := s.Sink.Check(); err != nil {
			return err
		}
	}
	if len(s.Platforms) > 0 {
		return s.checkPlatforms()
	}
	return nil
}

// hostDir is the absolute host directory of a directory root, or "".
func hostDir(root rootfs.FS) string {
	d, ok := root.(*rootfs.Dir)
	if !ok {
		return ""
	}
	abs, err := filepath.Abs(d.String())
	if err != nil {
		return ""
	}
	return abs
}

// rootCredential resolves a user (NAME, UID, NAME:GROUP, UID:GID) in the root's own account files.
func (p *Planner) rootCredential(user string) (*syscall.Credential, error) {
	name, group, hasGroup := strings.Cut(user, ":")
	field := func(file string, key string, idx int) (int, bool) {
		data, err := p.ReadRootFile(file)
		if err != nil {
			return 0, false
		}
		f := firstLine(data, func(f []string) bool { return len(f) > idx && f[0] == key })
		if f == nil {
			return 0, false
		}
		n, err := strconv.Atoi(f[idx])
		return n, err == nil
	}
	uid, err := strconv.Atoi(name)
	gid := uid
	if err != nil {
		var ok bool
		if uid, ok = field("/etc/passwd", name, 2); !ok {
			return nil, fmt.Errorf("no user %q in the root's /etc/passwd", name)
		}
		gid, _ = field("/etc/passwd", name, 3)
	}
	if hasGroup {
		if gid, err = strconv.Atoi(group); err != nil {
			var ok bool
			if gid, ok = field("/etc/group", group, 2); !ok {
				return nil, fmt.Errorf("no group %q in the root's /etc/group", group)
			}
		}
	}
	if uid < 0 || gid < 0 {
		return nil, fmt.Errorf("bad ids %d:%d", uid, gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// addTraces runs each workload under ptrace (inside the root when it is not "/"), reads each strace log,
// and adds what they used.
func (p *Planner) addTraces(ctx context.Context, s Spec, note func(string)) error {
	ex := s.TraceExclude
	if len(ex.Prefixes) == 0 {
		ex = DefaultTraceExclude("")
	}
	root := hostDir(s.Root)
	for _, w := range s.Workloads {
		name := strings.Join(w.Argv, " ")
		note(fmt.Sprintf("running %q under ptrace (the only mode of scratchpack that runs anything)", name))
		opts := trace.Options{Stdout: w.Stdout, Stderr: w.Stderr, Stdin: w.Stdin, Timeout: w.Timeout, Env: w.Env}
		if w.User != "" {
			cred, err := p.rootCredential(w.User)
			if err != nil {
				return fmt.Errorf("tracing %q as %s: %w", name, w.User, err)
			}
			opts.Credential = cred
		}
		if opts.Stdout == nil {
			opts.Stdout = io.Discard
		}
		if opts.Stderr == nil {
			opts.Stderr = io.Discard
		}
		switch {
		case w.RunRoot != "":
			opts.Root, opts.Dir = w.RunRoot, w.Dir
		case root != "/":
			opts.Root = root
		default:
			opts.Dir = w.Dir
		}
		if w.Sandbox {
			opts.Sandbox = &trace.Sandbox{HostID: SandboxHostID, Size: SandboxIDs}
		}
		if len(w.Probe) > 0 {
			opts.Probe = func(ctx context.Context, pid int) error {
				if err := trace.WaitListening(ctx, pid); err != nil {
					return fmt.Errorf("waiting for %q to listen: %w", name, err)
				}
				note(fmt.Sprintf("%q listens: running the probe %q", name, strings.Join(w.Probe, " ")))
				cmd := exec.CommandContext(ctx, w.Probe[0], w.Probe[1:]...)
				cmd.Stdout, cmd.Stderr = opts.Stderr, opts.Stderr
				if err := trace.InNetNS(pid, cmd); err != nil {
					return fmt.Errorf("the probe %q: %w", strings.Join(w.Probe, " "), err)
				}
				return nil
			}
		}
		accesses, code, err := trace.Run(ctx, w.Argv, opts)
		if err != nil {
			return fmt.Errorf("tracing %q: %w", name, err)
		}
		if code != 0 && len(w.Probe) == 0 {
			note(fmt.Sprintf("warning: %q exited with status %d; its files are added anyway", name, code))
		}
		notes, err := p.addTraced(accesses, name, ex)
		if err != nil {
			return err
		}
		for _, n := range notes {
			note(n)
		}
	}
	for _, l := range s.TraceLogs {
		f, err := os.Open(l.Path)
		if err != nil {
			return fmt.Errorf("reading the strace log: %w", err)
		}
		accesses, err := trace.ParseStrace(f, l.Cwd)
		f.Close()
		if err != nil {
			return fmt.Errorf("reading the strace log %s: %w", l.Path, err)
		}
		notes, err := p.addTraced(accesses, "strace log "+l.Path, ex)
		if err != nil {
			return err
		}
		for _, n := range notes {
			note(n)
		}
	}
	return nil
}

// platform is the OCI platform of the first program's ELF header.
func (p *Planner) platform() (v1.Platform, error) {
	f := p.FirstProgram()
	if f == nil {
		return v1.Platform{}, errors.New("the image platform is unknown: no program to take it from; name it")
	}
	return PlatformFor(f.Machine, f.Class, f.Data, f.Flags)
}

// image makes the image of the planned tree with the spec's config.
func (p *Planner) image(ctx context.Context, s Spec) (img v1.Image, err error) {
	cfg := s.Image
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = s.WorkDir
	}
	if cfg.Entrypoint == nil && cfg.FromConfig == nil {
		if first := slices.Concat(p.programImages, p.addedPrograms); len(first) > 0 {
			cfg.Entrypoint = first[:1]
		}
	}
	if cfg.Platform.Architecture == "" {
		if cfg.Platform, err = p.platform(); err != nil {
			return nil, err
		}
	}
	if s.Base != "" && cfg.Base == nil {
		if cfg.Base, err = rootfs.LoadImage(ctx, s.Base, rootfs.WithPlatform(cfg.Platform), rootfs.WithInsecure(s.Insecure),
			rootfs.WithRequestTimeout(s.RegistryTimeout), rootfs.WithCredentialHelpers(s.CredentialHelpers)); err != nil {
			return nil, fmt.Errorf("base %s: %w", s.Base, err)
		}
		cfg.BaseName = cmp.Or(cfg.BaseName, strings.TrimPrefix(s.Base, "docker://"))
	}
	if cfg.CreatedBy == "" {
		// What went in, by image path: a host path would make the digest depend on the checkout.
		cfg.CreatedBy = strings.TrimSpace(createdBy + " " + strings.Join(p.programImages, " "))
	}
	cfg.Author = cmp.Or(cfg.Author, "scratchpack")
	if cfg.SpoolDir == "" {
		cfg.SpoolDir = spoolDir(s.Sink)
	}
	if cfg.Layering == LayeringPackage && cfg.Layers == nil {
		if cfg.Layers, err = p.packageLayers(cfg.MaxLayers, cfg.CreatedBy); err != nil {
			return nil, err
		}
	}
	return BuildImage(ctx, p.Tree(), cfg)
}

// spoolDir is where an image's compressed layer is kept while it is written: beside the first output that
// is a file or a directory (the same file system, so its space is the output's), else the system's
// temporary directory (a push).
func spoolDir(s Sink) string {
	switch s := s.(type) {
	case *LayoutSink:
		return filepath.Dir(s.Path)
	case *ArchiveSink:
		return filepath.Dir(s.Path)
	case *captureSink:
		return s.spool
	case multiSink:
		for _, one := range s {
			if d := spoolDir(one); d != "" {
				return d
			}
		}
	}
	return ""
}
