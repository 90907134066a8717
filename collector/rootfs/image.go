package rootfs

import (
	"archive/tar"
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"golang.org/x/sys/unix"
)

// Whiteout names, as the OCI image spec and overlayfs-based runtimes write them.
const (
	whiteoutPrefix     = ".wh."
	whiteoutMetaPrefix = ".wh..wh."
	opaqueWhiteout     = ".wh..wh..opq"
)

// Image is the root filesystem of an image: its layers applied bottom to top as a runtime would, whiteouts
// and opaque directories honoured. NewImage reads every layer once, keeping an index of the paths in
// memory and the content of the regular files that survive in a spool file, so that memory grows with the
// number of paths, not with their size. An Image is read-only and safe for concurrent use.
type Image struct {
	name    string
	entries map[string]*entry // fs.FS name -> what the uppermost layer holding it says
	spool   *os.File
	closed  atomic.Bool
}

var _ FS = (*Image)(nil)

// entry is one path of an Image.
type entry struct {
	mode     fs.FileMode
	target   string   // a symbolic link's, verbatim
	children []string // a directory's entry names, sorted
	meta     Meta     // Size, and for a regular file Offset in the spool
	layer    int      // the layer that provided it, counted from the top (0); -1 for the implicit root
	implicit bool     // a directory no layer has an entry for, made for the entries under it
}

// ImageOption configures NewImage.
type ImageOption func(*imageOptions) error

type imageOptions struct {
	maxSpool   int64 // 0: the default (see spoolLimit)
	maxEntries int
	spoolDir   string
}

// WithSpoolDir puts the spool file, which holds the content of every regular file of the image (unlinked as
// soon as it is created), in dir rather than in os.TempDir().
func WithSpoolDir(dir string) ImageOption {
	return func(o *imageOptions) error {
		if dir == "" {
			return errors.New("empty spool directory")
		}
		o.spoolDir = dir
		return nil
	}
}

// NewImage reads img's layers (each uncompressed stream once, the top layer first, as mutate.Extract does)
// into a root filesystem that name identifies in messages.
//
// For each path the uppermost layer's entry is kept. A whiteout (.wh.NAME) hides NAME and everything under
// it in lower layers; an opaque marker (.wh..wh..opq) in DIR hides what lower layers have under DIR; a
// non-directory hides what lower layers have under its path. A hard link has the content of the entry it
// names in its layer. Directories a layer implies without an entry ("usr/bin/x" alone) are 0755 and owned
// by 0:0, unless a lower layer has one. Names lose a "./" prefix and leading '/'; a name that climbs out
// of the root ("../x") is an error. Every error names the layer's digest and the entry.
func NewImage(img v1.Image, name string, opts ...ImageOption) (*Image, error) {
	o := imageOptions{spoolDir: os.TempDir()}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, fmt.Errorf("reading the layers of %s: %w", name, err)
	}
	spool, err := os.CreateTemp(o.spoolDir, "scratchpack-rootfs-*")
	if err != nil {
		return nil, fmt.Errorf("creating the spool file of %s: %w", name, err)
	}
	if err := os.Remove(spool.Name()); err != nil {
		spool.Close()
		return nil, fmt.Errorf("creating the spool file of %s: %w", name, err)
	}
	b := &builder{
		entries:    map[string]*entry{".": implicitDir(-1, "")},
		hidden:     map[string]bool{},
		opaque:     map[string]bool{},
		spool:      &spoolWriter{f: spool, limit: spoolLimit(o.spoolDir, o.maxSpool)},
		maxEntries: cmp.Or(o.maxEntries, DefaultMaxEntries),
	}
	for i := len(layers) - 1; i >= 0; i-- {
		if err := b.layer(layers[i], len(layers)-1-i); err != nil {
			spool.Close()
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
	}
	b.link()
	return &Image{name: name, entries: b.entries, spool: spool}, nil
}

// String returns the name given to NewImage.
func (im *Image) String() string { return im.name }

// Close releases the spool file; files opened from the image can no longer be read.
func (im *Image) Close() error {
	if im.closed.Swap(true) {
		return nil
	}
	if err := im.spool.Close(); err != nil {
		return fmt.Errorf("closing the spool file of %s: %w", im.name, err)
	}
	return nil
}

// lookup finds name, following no link: a link or a non-directory above it is ELOOP or ENOTDIR.
func (im *Image) lookup(op, name string) (*entry, error) {
	if err := checkName(op, name); err != nil {
		return nil, err
	}
	if im.closed.Load() {
		return nil, pathErr(op, name, fs.ErrClosed)
	}
	for _, a := range ancestors(name) {
		e := im.entries[a]
		switch {
		case e == nil:
			return nil, pathErr(op, name, fs.ErrNotExist)
		case e.mode&fs.ModeSymlink != 0:
			return nil, pathErr(op, name, syscall.ELOOP)
		case !e.mode.IsDir():
			return nil, pathErr(op, name, syscall.ENOTDIR)
		}
	}
	e := im.entries[name]
	if e == nil {
		return nil, pathErr(op, name, fs.ErrNotExist)
	}
	return e, nil
}

// Open opens name without following a link. A regular file is an io.ReaderAt and io.Seeker over the spool,
// a directory an fs.ReadDirFile; any other file can only be looked at.
func (im *Image) Open(name string) (fs.File, error) {
	e, err := im.lookup("open", name)
	if err != nil {
		return nil, err
	}
	info := e.info(name)
	switch {
	case e.mode&fs.ModeSymlink != 0:
		return nil, pathErr("open", name, syscall.ELOOP)
	case e.mode.IsRegular():
		return &imageFile{SectionReader: io.NewSectionReader(im.spool, e.meta.Offset, e.meta.Size), info: info}, nil
	case e.mode.IsDir():
		return &imageDir{name: name, info: info, ents: &dirEntries{ents: im.list(name, e)}}, nil
	}
	return &specialFile{name: name, info: info}, nil
}

// ReadDir lists the directory name (not following a link), sorted by name.
func (im *Image) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := im.lookup("readdir", name)
	if err != nil {
		return nil, err
	}
	switch {
	case e.mode&fs.ModeSymlink != 0:
		return nil, pathErr("readdir", name, syscall.ELOOP)
	case !e.mode.IsDir():
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	return im.list(name, e), nil
}

func (im *Image) list(name string, dir *entry) []fs.DirEntry {
	ents := make([]fs.DirEntry, 0, len(dir.children))
	for _, c := range dir.children {
		p := joinName(name, c)
		ents = append(ents, fs.FileInfoToDirEntry(im.entries[p].info(p)))
	}
	return ents
}

// ReadLink returns the target of the symbolic link name, verbatim.
func (im *Image) ReadLink(name string) (string, error) {
	e, err := im.lookup("readlink", name)
	if err != nil {
		return "", err
	}
	if e.mode&fs.ModeSymlink == 0 {
		return "", pathErr("readlink", name, syscall.EINVAL)
	}
	return e.target, nil
}

// Lstat describes name without following a final link; Sys() is a *Meta.
func (im *Image) Lstat(name string) (fs.FileInfo, error) {
	e, err := im.lookup("lstat", name)
	if err != nil {
		return nil, err
	}
	return e.info(name), nil
}

func (e *entry) info(name string) *fileInfo {
	m := e.meta
	m.Xattrs = maps.Clone(m.Xattrs)
	return &fileInfo{name: baseName(name), mode: e.mode, size: m.Size, mtime: m.ModTime, meta: &m}
}

func implicitDir(layer int, digest string) *entry {
	return &entry{mode: fs.ModeDir | 0o755, layer: layer, implicit: true,
		meta: Meta{ModTime: time.Unix(0, 0).UTC(), Layer: digest}}
}

type imageFile struct {
	*io.SectionReader
	info *fileInfo
}

func (f *imageFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *imageFile) Close() error               { return nil }

type imageDir struct {
	name string
	info *fileInfo
	ents *dirEntries
}

func (f *imageDir) Stat() (fs.FileInfo, error)           { return f.info, nil }
func (f *imageDir) Close() error                         { return nil }
func (f *imageDir) Read([]byte) (int, error)             { return 0, pathErr("read", f.name, syscall.EISDIR) }
func (f *imageDir) ReadDir(n int) ([]fs.DirEntry, error) { return f.ents.next(n) }

// builder applies layers, top first.
type builder struct {
	entries    map[string]*entry
	hidden     map[string]bool // whited out by an upper layer, with everything under
	opaque     map[string]bool // directories whose lower-layer content an upper layer hides
	spool      *spoolWriter
	maxEntries int
}

// Limits of an image root, against layers made to exhaust memory or disk (a decompression bomb, a tar of
// millions of names): at most DefaultMaxEntries paths in the index, and at most DefaultMaxSpool bytes of
// visible files in the spool, or what the spool's file system has free less DefaultSpoolReserve.
const (
	DefaultMaxEntries   = 2_000_000
	DefaultMaxSpool     = 64 << 30
	DefaultSpoolReserve = 512 << 20
)

// ErrTooLarge is returned (wrapped) when an image goes past a limit.
var ErrTooLarge = errors.New("too large")

// WithLimits sets the most paths an image may have and the most bytes its visible files may take in the
// spool (0 keeps a default).
func WithLimits(maxEntries int, maxSpool int64) ImageOption {
	return func(o *imageOptions) error {
		o.maxEntries, o.maxSpool = maxEntries, maxSpool
		return nil
	}
}

// spoolLimit is maxSpool (DefaultMaxSpool when 0), lowered to what dir's file system has free less
// DefaultSpoolReserve: a layer must not fill the disk.
func spoolLimit(dir string, maxSpool int64) int64 {
	limit := cmp.Or(maxSpool, DefaultMaxSpool)
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err == nil {
		free := int64(st.Bavail)*int64(st.Bsize) - DefaultSpoolReserve
		limit = min(limit, max(free, 0))
	}
	return limit
}

// visible reports whether layer li may provide name: no upper layer has it (but for a directory an upper
// layer only implied), whited it out, made it or a directory above it opaque, or holds a non-directory above.
func (b *builder) visible(name string, li int, isDir bool) bool {
	if b.hidden[name] {
		return false
	}
	if name != "." {
		if b.opaque["."] {
			return false
		}
		for _, a := range ancestors(name) {
			if b.hidden[a] || b.opaque[a] {
				return false
			}
			if e := b.entries[a]; e != nil && e.layer < li && !e.mode.IsDir() {
				return false
			}
		}
	}
	e := b.entries[name]
	return e == nil || e.layer >= li || (e.implicit && isDir)
}

// keep records name as layer li's, with the directories above it that it implies.
func (b *builder) keep(name string, e *entry, li int) {
	if name != "." {
		for _, a := range ancestors(name) {
			if b.entries[a] == nil {
				b.entries[a] = implicitDir(li, e.meta.Layer)
			}
		}
	}
	b.entries[name] = e
}

// full reports whether the index is at its limit.
func (b *builder) full() bool { return len(b.entries) >= b.maxEntries }

// link drops what a layer put under one of its own non-directories, which no lookup could reach, and
// gives each directory its sorted list of names.
func (b *builder) link() {
	names := slices.Sorted(maps.Keys(b.entries)) // a parent sorts before its children
	for _, n := range names {
		if n == "." {
			continue
		}
		parent := path.Dir(n)
		p := b.entries[parent]
		if p == nil || !p.mode.IsDir() {
			delete(b.entries, n)
			continue
		}
		p.children = append(p.children, path.Base(n))
	}
}

// spoolWriter appends to the spool file, remembering where it is and whether writing failed.
type spoolWriter struct {
	f     *os.File
	off   int64
	err   error
	limit int64 // how many bytes the spool may hold
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.off += int64(n)
	if err != nil {
		w.err = err
	}
	return n, err
}

// copyFrom appends the next size bytes of r and returns where they start.
func (w *spoolWriter) copyFrom(r io.Reader, size int64, name string) (int64, error) {
	off := w.off
	if size > w.limit-off {
		return 0, fmt.Errorf("spooling %s (%d bytes): %w: the image's visible files would need more than %d bytes here", name, size, ErrTooLarge, w.limit)
	}
	if _, err := io.CopyN(w, r, size); err != nil {
		if w.err != nil {
			return 0, fmt.Errorf("writing %s to the spool file: %w", name, err)
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("reading %s: %w", name, err)
	}
	return off, nil
}

// cleanName turns a tar name into an fs.FS name: "./usr/bin/", "/usr/bin" and "usr/bin" are "usr/bin".
func cleanName(name string) (string, error) {
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") || !fs.ValidPath(c) {
		return "", fmt.Errorf("entry %q: the name leaves the root", name)
	}
	return c, nil
}

// xattrsOf returns the extended attributes a PAX header records.
func xattrsOf(h *tar.Header) map[string]string {
	var x map[string]string
	for k, v := range h.PAXRecords {
		if n, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if x == nil {
				x = map[string]string{}
			}
			x[n] = v
		}
	}
	return x
}
