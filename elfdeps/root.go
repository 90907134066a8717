package elfdeps

import (
	"errors"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// maxSymlinks is how many symbolic links one path lookup may follow, as Linux allows (ELOOP past it).
const maxSymlinks = 40

// Link is one symbolic link met while resolving a path: Path (absolute, inside the root) holds Target verbatim.
type Link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// root is a confined, caching view of a file tree. Every absolute path is resolved inside it component by
// component as the kernel would under chroot(2): an absolute symlink target starts again at the root and ".."
// never climbs above it, so nothing outside the tree is ever named. Directory listings and link targets are
// read once and shared by every lookup (and every goroutine).
type root struct {
	fsys fs.FS

	dirs     sync.Map // resolved directory path -> *dirList
	links    sync.Map // resolved link path -> target string
	resolved sync.Map // directory path as asked -> *dirLookup
	files    sync.Map // file path as asked of resolveFile -> *dirLookup (the same answer for every program)
}

// dirLookup is a directory path resolved once: search directories are asked about again and again.
type dirLookup struct {
	once sync.Once
	rp   resolved
	err  error
}

type dirList struct {
	once sync.Once
	ents map[string]fs.FileMode // name -> type bits
	err  error
}

func newRoot(fsys fs.FS) *root {
	return &root{fsys: fsys}
}

// rel turns an absolute, resolved path into an fs.FS name.
func rel(p string) string {
	if p == "/" {
		return "."
	}
	return strings.TrimPrefix(p, "/")
}

// unsortedLister is an fs.FS that can list a directory without sorting it (hostDir).
type unsortedLister interface {
	readDirUnsorted(name string) ([]fs.DirEntry, error)
}

// list returns the entries of the resolved directory dir.
func (r *root) list(dir string) (map[string]fs.FileMode, error) {
	v, ok := r.dirs.Load(dir)
	if !ok {
		v, _ = r.dirs.LoadOrStore(dir, &dirList{})
	}
	d := v.(*dirList)
	d.once.Do(func() {
		var ents []fs.DirEntry
		var err error
		if u, ok := r.fsys.(unsortedLister); ok {
			ents, err = u.readDirUnsorted(rel(dir))
		} else {
			ents, err = fs.ReadDir(r.fsys, rel(dir))
		}
		if err != nil {
			d.err = err
			return
		}
		d.ents = make(map[string]fs.FileMode, len(ents))
		for _, e := range ents {
			d.ents[e.Name()] = e.Type()
		}
	})
	return d.ents, d.err
}

func (r *root) readlink(p string) (string, error) {
	if t, ok := r.links.Load(p); ok {
		return t.(string), nil
	}
	t, err := fs.ReadLink(r.fsys, rel(p))
	if err != nil {
		return "", err
	}
	r.links.Store(p, t)
	return t, nil
}

// resolved is the outcome of a confined lookup.
type resolved struct {
	real  string      // the path with every symlink resolved, absolute inside the root
	mode  fs.FileMode // type bits of the final component
	links []Link      // every symbolic link followed, in order
}

// resolve looks p (absolute) up inside the root, following every symbolic link. Errors are *fs.PathError
// carrying fs.ErrNotExist, syscall.ENOTDIR or syscall.ELOOP as the kernel would report them.
func (r *root) resolve(p string) (resolved, error) {
	var out resolved
	if !strings.HasPrefix(p, "/") {
		return out, &fs.PathError{Op: "lookup", Path: p, Err: fs.ErrInvalid}
	}
	rest := p // what is left to walk; a symlink's target is put in front of it
	cur := "/"
	mode := fs.ModeDir
	nlinks := 0
	for rest != "" {
		var c string
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			c, rest = rest[:i], rest[i+1:]
		} else {
			c, rest = rest, ""
		}
		if c == "" || c == "." {
			continue
		}
		if mode&fs.ModeDir == 0 {
			return out, &fs.PathError{Op: "lookup", Path: p, Err: syscall.ENOTDIR}
		}
		if c == ".." {
			cur = path.Dir(cur)
			continue
		}
		ents, err := r.list(cur)
		if err != nil {
			return out, &fs.PathError{Op: "lookup", Path: p, Err: unwrapErrno(err)}
		}
		m, ok := ents[c]
		if !ok {
			return out, &fs.PathError{Op: "lookup", Path: p, Err: fs.ErrNotExist}
		}
		next := cur + "/" + c
		if cur == "/" {
			next = "/" + c
		}
		if m&fs.ModeSymlink != 0 {
			nlinks++
			if nlinks > maxSymlinks {
				return out, &fs.PathError{Op: "lookup", Path: p, Err: syscall.ELOOP}
			}
			t, err := r.readlink(next)
			if err != nil {
				return out, &fs.PathError{Op: "readlink", Path: next, Err: unwrapErrno(err)}
			}
			out.links = append(out.links, Link{Path: next, Target: t})
			if strings.HasPrefix(t, "/") {
				cur = "/"
			}
			if rest != "" {
				rest = t + "/" + rest
			} else {
				rest = t
			}
			mode = fs.ModeDir
			continue
		}
		mode = m & fs.ModeType
		cur = next
	}
	out.real, out.mode = cur, mode
	return out, nil
}

// resolveFile is resolve for a file in a directory that is asked about often (a search directory): the
// directory part is resolved once, then the name is one lookup in its listing. Only a name that is itself a
// symbolic link takes the full walk.
func (r *root) resolveFile(p string) (resolved, error) {
	v, ok := r.files.Load(p)
	if !ok {
		v, _ = r.files.LoadOrStore(p, &dirLookup{})
	}
	f := v.(*dirLookup)
	f.once.Do(func() {
		f.rp, f.err = r.resolveFileOnce(p)
		f.rp.links = slices.Clip(f.rp.links) // shared by every caller: an append must copy
	})
	return f.rp, f.err
}

func (r *root) resolveFileOnce(p string) (resolved, error) {
	i := strings.LastIndexByte(p, '/')
	dir, name := p[:i], p[i+1:]
	if i < 0 || name == "" || name == "." || name == ".." {
		return r.resolve(p)
	}
	if dir == "" {
		dir = "/"
	}
	d := r.lookupDir(dir)
	if d.err != nil {
		var pe *fs.PathError
		if errors.As(d.err, &pe) {
			return resolved{}, &fs.PathError{Op: pe.Op, Path: p, Err: pe.Err}
		}
		return resolved{}, d.err
	}
	if !d.rp.mode.IsDir() {
		return resolved{}, &fs.PathError{Op: "lookup", Path: p, Err: syscall.ENOTDIR}
	}
	ents, err := r.list(d.rp.real)
	if err != nil {
		return resolved{}, &fs.PathError{Op: "lookup", Path: p, Err: unwrapErrno(err)}
	}
	m, ok := ents[name]
	switch {
	case !ok:
		return resolved{}, &fs.PathError{Op: "lookup", Path: p, Err: fs.ErrNotExist}
	case m&fs.ModeSymlink != 0:
		return r.resolve(p)
	}
	real := d.rp.real + "/" + name
	if d.rp.real == "/" {
		real = "/" + name
	}
	return resolved{real: real, mode: m & fs.ModeType, links: slices.Clip(d.rp.links)}, nil
}

// lookupDir resolves a directory path once per root.
func (r *root) lookupDir(dir string) *dirLookup {
	v, ok := r.resolved.Load(dir)
	if !ok {
		v, _ = r.resolved.LoadOrStore(dir, &dirLookup{})
	}
	d := v.(*dirLookup)
	d.once.Do(func() { d.rp, d.err = r.resolve(dir) })
	return d
}

// isDir reports whether dir names a directory (following symbolic links), as stat(2) and S_ISDIR would.
func (r *root) isDir(dir string) bool {
	d := r.lookupDir(dir)
	return d.err == nil && d.rp.mode.IsDir()
}

// ErrNotRegular is returned (wrapped) for a file that is not a regular file where one is read: a FIFO or a
// device is never opened (opening a FIFO for reading blocks until a writer comes).
var ErrNotRegular = errors.New("not a regular file")

// open opens a resolved regular file for reading. What the directory listing says is not a regular file
// is not opened at all.
func (r *root) open(real string) (fs.File, int64, io.ReaderAt, error) {
	if real != "/" {
		i := strings.LastIndexByte(real, '/')
		dir := real[:i]
		if dir == "" {
			dir = "/"
		}
		if ents, err := r.list(dir); err == nil {
			if m, ok := ents[real[i+1:]]; ok && !m.IsRegular() {
				return nil, 0, nil, &fs.PathError{Op: "open", Path: real, Err: ErrNotRegular}
			}
		}
	}
	f, err := r.fsys.Open(rel(real))
	if err != nil {
		return nil, 0, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	if !st.Mode().IsRegular() { // it changed since it was listed
		f.Close()
		return nil, 0, nil, &fs.PathError{Op: "open", Path: real, Err: ErrNotRegular}
	}
	if ra, ok := f.(io.ReaderAt); ok {
		return f, st.Size(), ra, nil
	}
	data, err := io.ReadAll(f)
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	return f, int64(len(data)), strings.NewReader(string(data)), nil
}

// unwrapErrno reduces an error to the errno-like kind a loader branches on.
func unwrapErrno(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if errors.Is(err, fs.ErrNotExist) {
		return fs.ErrNotExist
	}
	return err
}

// isNotExist reports whether err means "no such file" (ENOENT) or a permission failure (EACCES): the two
// errors after which glibc's open_path goes on to the next directory.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EACCES)
}
