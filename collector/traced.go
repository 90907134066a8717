package collector

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/scratchpack/scratchpack/elfdeps"
	"github.com/scratchpack/scratchpack/internal/trace"
)

// TraceExclude says which traced paths are not added: besides /proc, /sys and /dev (never recorded), the
// build's own output, the workload's scratch space, and secrets.
type TraceExclude struct {
	Prefixes []string // image paths (and everything under them) to leave out
	// Secrets are paths (and everything under them) and path parts ("/.ssh/") that are credentials: what a
	// workload read there never goes into an image from a trace, and the build names what it left out.
	// An --add of the same file puts it in on purpose.
	Secrets []string
	// Generated are files the image's rules write for the image (its accounts, name service, loader cache,
	// time zone link): what the workload read of the root's own is not taken in their place.
	Generated []string
}

// DefaultGenerated are the files a trace does not take from the root: the accounts and nsswitch.conf the
// rules generate, the host's loader cache and configuration (the ldcache rule writes the image's own when it
// needs one) and its time zone (--add /etc/localtime on purpose).
var DefaultGenerated = []string{"/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts", "/etc/ld.so.cache",
	"/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime", "/etc/timezone"}

// DefaultSecrets are the credentials a traced workload may read and an image must not get: shadow and
// sudoers files, SSH host keys, and the usual credential files and directories. Besides these, the hidden
// files of every home directory (/root/.*, /home/USER/.*) are secrets.
var DefaultSecrets = []string{
	"/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/sudoers", "/etc/sudoers.d",
	"/etc/ssh/ssh_host_", "/.ssh/", "/.gnupg/", "/.aws/", "/.azure/", "/.config/gcloud/", "/.kube/", "/.docker/",
	"/.netrc", "/.git-credentials", "/.pgpass", "/.my.cnf", "/.npmrc", "/.pypirc",
}

// DefaultTraceExclude leaves out temporary directories (what a workload writes there is its own scratch)
// and DefaultSecrets.
func DefaultTraceExclude(output string) TraceExclude {
	ex := TraceExclude{Prefixes: []string{"/tmp", "/var/tmp", "/run", "/dev/shm"}, Secrets: slices.Clone(DefaultSecrets),
		Generated: slices.Clone(DefaultGenerated)}
	if output != "" {
		ex.Prefixes = append(ex.Prefixes, output)
	}
	return ex
}

// secret reports whether p is a secret: at or under a secret path, or holding a secret part ("/.ssh/"),
// or a prefix one ("/etc/ssh/ssh_host_" for the host keys).
func (ex TraceExclude) secret(p string) bool {
	if len(ex.Secrets) > 0 && hiddenInHome(p) {
		return true
	}
	return slices.ContainsFunc(ex.Secrets, func(s string) bool {
		switch {
		case strings.HasPrefix(s, "/.") || strings.HasSuffix(s, "/"):
			part := strings.TrimSuffix(s, "/")
			return strings.Contains(p+"/", part+"/") || strings.HasSuffix(p, part)
		case strings.HasSuffix(s, "_"):
			return strings.HasPrefix(p, s)
		}
		return p == s || strings.HasPrefix(p, s+"/")
	})
}

func (ex TraceExclude) excluded(p string) bool {
	return slices.ContainsFunc(ex.Prefixes, func(pre string) bool {
		pre = path.Clean(pre)
		return p == pre || strings.HasPrefix(p, pre+"/")
	})
}

// addTraced adds what a traced workload used: every file it opened, executed or probed successfully that
// still exists in the root (with its links, and its ELF closure), directories it opened, listed or entered
// (as directories, not their whole content). workload names the run in the reasons. It returns one note per
// kind of decision.
func (p *Planner) addTraced(accesses []trace.Access, workload string, ex TraceExclude) ([]string, error) {
	var files, dirs, skipped, gone int
	var secrets, generated []string
	var bytes int64
	before := p.treeFiles()
	for _, a := range accesses {
		if ex.excluded(a.Path) {
			skipped++
			continue
		}
		if slices.ContainsFunc(ex.Generated, func(g string) bool { return a.Path == g || strings.HasPrefix(a.Path, g+"/") }) {
			if !slices.Contains(generated, a.Path) {
				generated = append(generated, a.Path)
			}
			continue
		}
		if ex.secret(a.Path) || ex.secret(p.realPath(a.Path)) {
			if !slices.Contains(secrets, a.Path) {
				secrets = append(secrets, a.Path)
			}
			continue
		}
		l, err := p.resolvers[0].Lookup(a.Path)
		if err != nil {
			gone++ // removed since (a temporary file), or a name that only resolved in the process's view
			continue
		}
		o := Origin{Kind: OriginTraced, RootPath: a.Path,
			Reason: fmt.Sprintf("traced %s by pid %d running %s (workload: %s)", a.Op, a.PID, orUnknown(a.Comm), workload)}
		switch {
		case l.Mode.IsDir():
			if err := p.addRootDir(l, o); err != nil {
				return nil, err
			}
			dirs++
		case l.Mode.IsRegular():
			if a.Op == trace.OpExec || a.Op == trace.OpExe {
				if err := p.addProgram(a.Path, o, 0, own); err != nil {
					return nil, fmt.Errorf("traced %s: %w", a.Path, err)
				}
			} else if err := p.AddRootPath(a.Path, o); err != nil {
				return nil, fmt.Errorf("traced %s: %w", a.Path, err)
			}
			files++
		default:
			skipped++ // sockets, FIFOs, devices
		}
	}
	after := p.treeFiles()
	for f, size := range after {
		if _, ok := before[f]; !ok {
			bytes += size
		}
	}
	notes := []string{fmt.Sprintf("trace of %s: %d files and %d directories used; %d new files (%s) in the image; %d left out (/tmp, the output, special files), %d no longer there",
		workload, files, dirs, len(after)-len(before), HumanSize(bytes), skipped, gone)}
	if len(generated) > 0 {
		slices.Sort(generated)
		notes = append(notes, fmt.Sprintf("trace of %s: kept the image's own %s, not the root's (--add one to use it)",
			workload, strings.Join(generated, ", ")))
	}
	if len(secrets) > 0 {
		slices.Sort(secrets)
		notes = append(notes, fmt.Sprintf("trace of %s: left out what looks like credentials: %s (add one on purpose as a host file if the image needs it)",
			workload, strings.Join(secrets, ", ")))
	}
	if len(p.Problems) > 0 {
		return notes, fmt.Errorf("traced files need libraries that are missing: %v", p.Problems[0])
	}
	return notes, nil
}

// hiddenInHome reports whether p is a hidden file or directory of a home directory (or under one):
// /root/.netrc, /home/ci/.config/...
func hiddenInHome(p string) bool {
	if rest, ok := strings.CutPrefix(p, "/root/"); ok {
		return strings.HasPrefix(rest, ".")
	}
	if rest, ok := strings.CutPrefix(p, "/home/"); ok {
		_, inHome, ok := strings.Cut(rest, "/")
		return ok && strings.HasPrefix(inHome, ".")
	}
	return false
}

// realPath is p with every link resolved inside the root, or p when it does not resolve.
func (p *Planner) realPath(file string) string {
	l, err := p.resolvers[0].Lookup(file)
	if err != nil {
		return file
	}
	return l.RealPath
}

// addRootDir adds a directory of the root (not its content) and the links on the way to it.
func (p *Planner) addRootDir(l elfdeps.Lookup, o Origin) error {
	if err := p.addLinks(l.Path, l.Links); err != nil {
		return err
	}
	if l.RealPath == "/" {
		return nil
	}
	return p.addRootDirEntry(l.RealPath, o)
}

// treeFiles maps every file of the tree to its size.
func (p *Planner) treeFiles() map[string]int64 {
	m := map[string]int64{}
	for path, e := range p.tree.entries {
		if e.Kind == KindFile {
			m[path] = e.Size
		}
	}
	return m
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown program)"
	}
	return s
}

// HumanSize prints a byte count for people (B, KiB, MiB).
func HumanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
