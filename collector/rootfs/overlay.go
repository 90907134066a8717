package rootfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"time"
)

// WithHostFiles returns base with host files shown at root paths: files maps an absolute path inside the
// root ("/svc") to a regular file of this machine. It lets a program built outside a root (a cross-compiled
// service) be resolved inside the root as it will sit in the image: its $ORIGIN is its place there.
//
// A path's directories are resolved inside base as the kernel would (a /lib that links to usr/lib puts a
// /lib/svc at /usr/lib/svc); those base lacks appear as directories holding only what is put there. A host
// file hides whatever base has at its path. The host files are opened without following a final link; the
// caller names them as it found them. Closing the result closes base.
func WithHostFiles(base FS, files map[string]string) (FS, error) {
	o := &overlay{FS: base, files: map[string]string{}, dirs: map[string]map[string]fs.FileMode{}}
	for _, p := range slices.Sorted(maps.Keys(files)) {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return nil, fmt.Errorf("putting %s in the root %s: not a clean absolute file path", files[p], base)
		}
		dir, err := resolveDir(base, path.Dir(p))
		if err != nil {
			return nil, fmt.Errorf("putting %s at %s in the root %s: %w", files[p], p, base, err)
		}
		name := joinName(dir, path.Base(p))
		if prev, ok := o.files[name]; ok && prev != files[p] {
			return nil, fmt.Errorf("putting %s in the root %s: %s already holds %s", files[p], base, p, prev)
		}
		if _, ok := o.dirs[name]; ok {
			return nil, fmt.Errorf("putting %s in the root %s: %s is a directory of another file put there", files[p], base, p)
		}
		o.files[name] = files[p]
		child, typ := name, fs.FileMode(0)
		for child != "." {
			parent := path.Dir(child)
			if o.dirs[parent] == nil {
				o.dirs[parent] = map[string]fs.FileMode{}
			}
			o.dirs[parent][path.Base(child)] = typ
			if _, isFile := o.files[parent]; isFile {
				return nil, fmt.Errorf("putting %s in the root %s: %s is a file put there", files[p], base, parent)
			}
			child, typ = parent, fs.ModeDir
		}
	}
	return o, nil
}

// resolveDir resolves the absolute directory path p inside root as chroot(2) would, returning its fs.FS
// name: links are followed (at most maxLinks), ".." stops at the root, and once a component is missing the
// rest is taken as it is. A component that is a file is an error.
func resolveDir(root FS, p string) (string, error) {
	const maxLinks = 40
	todo := strings.Split(strings.Trim(p, "/"), "/")
	cur, links, missing := ".", 0, false
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if cur != "." {
				cur = path.Dir(cur)
			}
			continue
		}
		next := joinName(cur, c)
		if missing {
			cur = next
			continue
		}
		fi, err := root.Lstat(next)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing, cur = true, next
		case err != nil:
			return "", err
		case fi.Mode()&fs.ModeSymlink != 0:
			if links++; links > maxLinks {
				return "", &fs.PathError{Op: "resolve", Path: "/" + next, Err: syscall.ELOOP}
			}
			t, err := root.ReadLink(next)
			if err != nil {
				return "", err
			}
			if strings.HasPrefix(t, "/") {
				cur = "."
			}
			todo = append(strings.Split(t, "/"), todo...)
		case fi.IsDir():
			cur = next
		default:
			return "", &fs.PathError{Op: "resolve", Path: "/" + next, Err: syscall.ENOTDIR}
		}
	}
	return cur, nil
}

// overlay is WithHostFiles' FS: files by fs.FS name, and the entries it adds to each directory.
type overlay struct {
	FS
	files map[string]string
	dirs  map[string]map[string]fs.FileMode
}

func (o *overlay) Open(name string) (fs.File, error) {
	if err := checkName("open", name); err != nil {
		return nil, err
	}
	if host, ok := o.files[name]; ok {
		f, err := os.OpenFile(host, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
		if err != nil {
			return nil, err
		}
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("%s (put at /%s): not a regular file", host, name)
		}
		return f, nil
	}
	if _, ok := o.dirs[name]; ok {
		info, err := o.Lstat(name)
		if err != nil {
			return nil, err
		}
		ents, err := o.ReadDir(name)
		if err != nil {
			return nil, err
		}
		return &overlayDir{info: info, ents: ents}, nil
	}
	return o.FS.Open(name)
}

func (o *overlay) baseHas(name string) bool {
	_, err := o.FS.Lstat(name)
	return err == nil
}

func (o *overlay) ReadDir(name string) ([]fs.DirEntry, error) {
	extra, ok := o.dirs[name]
	if !ok {
		return o.FS.ReadDir(name)
	}
	var out []fs.DirEntry
	if o.baseHas(name) {
		ents, err := o.FS.ReadDir(name)
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if _, hidden := extra[e.Name()]; !hidden {
				out = append(out, e)
			}
		}
	}
	for n := range extra {
		full := joinName(name, n)
		info, err := o.Lstat(full)
		if err != nil {
			return nil, err
		}
		out = append(out, fs.FileInfoToDirEntry(info))
	}
	slices.SortFunc(out, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return out, nil
}

func (o *overlay) Lstat(name string) (fs.FileInfo, error) {
	if host, ok := o.files[name]; ok {
		return os.Lstat(host)
	}
	if _, ok := o.dirs[name]; ok && !o.baseHas(name) {
		return syntheticDir(name), nil
	}
	return o.FS.Lstat(name)
}

func (o *overlay) ReadLink(name string) (string, error) {
	if _, ok := o.files[name]; ok {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: syscall.EINVAL}
	}
	if _, ok := o.dirs[name]; ok && !o.baseHas(name) {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: syscall.EINVAL}
	}
	return o.FS.ReadLink(name)
}

func syntheticDir(name string) *fileInfo {
	return &fileInfo{name: baseName(name), mode: fs.ModeDir | 0o755, mtime: time.Unix(0, 0), meta: &Meta{}}
}

// overlayDir is an open directory the overlay adds entries to.
type overlayDir struct {
	info fs.FileInfo
	ents []fs.DirEntry
	off  int
}

func (d *overlayDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *overlayDir) Close() error               { return nil }
func (d *overlayDir) Read([]byte) (int, error) {
	return 0, pathErr("read", d.info.Name(), syscall.EISDIR)
}

func (d *overlayDir) ReadDir(n int) ([]fs.DirEntry, error) {
	rest := d.ents[d.off:]
	if n <= 0 {
		d.off = len(d.ents)
		return rest, nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.off += n
	return rest[:n], nil
}
