package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// Kind is what an entry of the image's file tree is.
type Kind uint8

const (
	KindDir Kind = iota + 1
	KindFile
	KindSymlink
)

func (k Kind) String() string {
	switch k {
	case KindDir:
		return "dir"
	case KindFile:
		return "file"
	case KindSymlink:
		return "symlink"
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Entry is one path of the image: where it goes (Path), what it is, and where its bytes come from (Source
// or Data), kept apart so that a file can be placed anywhere whatever root it is read from.
type Entry struct {
	Path     string      // absolute and clean, inside the image
	Kind     Kind        //
	Mode     fs.FileMode // permission bits, with setuid/setgid/sticky where they apply; no type bits
	UID, GID int         // owners in the image
	Source   Source      // KindFile: where the content is read from when written; nil when Data holds it
	Data     []byte      // KindFile: generated content, when Source is nil
	Size     int64       // KindFile: the size in bytes (taken from Source or Data when 0)
	Target   string      // KindSymlink: the link's target, verbatim
	Stripped fs.FileMode // setuid, setgid or sticky bits the source had and the image does not
	// Capability is a KindFile's file capabilities: its security.capability extended attribute, raw (kept
	// with the setuid bits); CapabilityStripped says the source had some and the image does not.
	Capability         string
	CapabilityStripped bool
	// Origins says why the path is in the image, each reason once, in the order they were found.
	Origins []Origin

	implied bool // a parent directory made by Tree.Add, not asked for
}

// Why returns the reasons of Origins as text, for people, each once (two origins may differ only in the
// root path they were asked for by).
func (e *Entry) Why() []string {
	var out []string
	for _, o := range e.Origins {
		if !slices.Contains(out, o.Reason) {
			out = append(out, o.Reason)
		}
	}
	return out
}

// RootPath is the path in the root a file entry's content is read from, or "" (generated content, a host
// file, a link or a directory).
func (e *Entry) RootPath() string {
	if s, ok := e.Source.(*rootFile); ok {
		return "/" + s.name
	}
	return ""
}

// RootLayer is the digest of the image layer a file entry's content is read from, or "" (not from an
// image root).
func (e *Entry) RootLayer() string {
	if s, ok := e.Source.(*rootFile); ok {
		return s.meta.Layer
	}
	return ""
}

// Open returns the content of a file entry, checked to be what was planned.
func (e *Entry) Open() (io.ReadCloser, error) {
	if e.Kind != KindFile {
		return nil, fmt.Errorf("%s: not a file", e.Path)
	}
	if e.Source == nil {
		return io.NopCloser(bytes.NewReader(e.Data)), nil
	}
	rc, err := e.Source.Open()
	if err != nil {
		return nil, fmt.Errorf("reading %s for %s: %w", e.Source, e.Path, err)
	}
	return rc, nil
}

// OriginKind is the kind of reason a path is in the image.
type OriginKind string

const (
	OriginInput       OriginKind = "input"       // a program or path asked for
	OriginNeeded      OriginKind = "needed"      // a library the loader maps (DT_NEEDED)
	OriginInterpreter OriginKind = "interpreter" // an ELF interpreter (PT_INTERP) or a #! interpreter
	OriginRule        OriginKind = "rule"        // added by a run-time rule
	OriginTraced      OriginKind = "traced"      // used by a traced run
	OriginAdded       OriginKind = "added"       // added from the host (--add)
	OriginLink        OriginKind = "link"        // a symbolic link on the way to another path
	OriginConfig      OriginKind = "config"      // asked for by the image config (the working directory)
)

// Origin is one reason a path is in the image, structured so that --explain, package metadata and SBOMs
// all read the same record.
type Origin struct {
	Kind     OriginKind `json:"kind"`
	RootPath string     `json:"root_path,omitempty"` // the path in the root (or on the host) it came from, as asked
	By       string     `json:"by,omitempty"`        // the image path of what pulled it in
	Rule     string     `json:"rule,omitempty"`      // the rule's name, for OriginRule
	Reason   string     `json:"reason"`              // the reason in words
	Package  string     `json:"package,omitempty"`   // the package that owns the file, when known
	Digest   string     `json:"digest,omitempty"`    // the content's digest, when known
}

// Source is where a file's bytes come from.
type Source interface {
	// Open returns the content, failing if the file is no longer the one planned.
	Open() (io.ReadCloser, error)
	// Size is the planned size.
	Size() int64
	// String names the source for messages.
	String() string
}

// rootFile is a regular file of a root, remembered by its identity at planning time.
type rootFile struct {
	fsys rootfs.FS
	name string // fs.FS name of the resolved path
	meta rootfs.Meta
}

func (s *rootFile) Open() (io.ReadCloser, error) {
	f, err := rootfs.OpenVerified(s.fsys, s.name, s.meta)
	if err != nil {
		return nil, err
	}
	return f, nil
}

func (s *rootFile) Size() int64 { return s.meta.Size }

func (s *rootFile) String() string { return "/" + s.name + " of " + s.fsys.String() }

// hostFile is a file of this machine given by the user (--add), remembered by its identity: it is opened
// without following a final symbolic link and must still be the same inode, size and time when copied.
type hostFile struct {
	path    string
	dev     uint64
	ino     uint64
	size    int64
	modTime time.Time
}

// HostFile is a regular file of this machine as a Source. Its identity is taken now; copying it later fails
// if it has changed or been replaced since.
func HostFile(path string) (Source, error) {
	st, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return newHostFile(path, st), nil
}

func newHostFile(path string, st fs.FileInfo) *hostFile {
	h := &hostFile{path: path, size: st.Size(), modTime: st.ModTime()}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		h.dev, h.ino = uint64(sys.Dev), sys.Ino
	}
	return h
}

func (s *hostFile) Open() (io.ReadCloser, error) {
	f, err := os.OpenFile(s.path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %w: %w", s.path, rootfs.ErrChanged, err) // replaced by a link, or removed
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	now := newHostFile(s.path, st)
	if !st.Mode().IsRegular() || *now != *s {
		f.Close()
		return nil, fmt.Errorf("%s %w (size %d, was %d)", s.path, rootfs.ErrChanged, now.size, s.size)
	}
	return f, nil
}

func (s *hostFile) Size() int64 { return s.size }

func (s *hostFile) String() string { return s.path }

// sameSource reports whether two sources read the same file.
func sameSource(a, b Source) bool {
	switch a := a.(type) {
	case *rootFile:
		b, ok := b.(*rootFile)
		return ok && a.fsys == b.fsys && a.name == b.name
	case *hostFile:
		b, ok := b.(*hostFile)
		return ok && a.dev == b.dev && a.ino == b.ino && a.path == b.path
	}
	return a == b
}

// CapabilityXattr is the extended attribute that holds a file's capabilities.
const CapabilityXattr = rootfs.CapabilityXattr
