package collector

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"slices"
	"time"
)

// FS returns the tree as the read-only file system the image will have, for scanning it as a program in
// the image would (the ld.so.cache rule runs ldconfig's scan over it). Open follows the tree's symbolic
// links; ReadDir and ReadLink (fs.ReadDirFS, fs.ReadLinkFS) do not. A file's content is read from its
// source, checked as a writer checks it. The tree must not change while the FS is used.
func (t *Tree) FS() fs.FS {
	children := map[string][]string{}
	for p := range t.entries {
		if p != "/" {
			d := path.Dir(p)
			children[d] = append(children[d], path.Base(p))
		}
	}
	for _, names := range children {
		slices.Sort(names)
	}
	return &treeFS{t: t, children: children}
}

type treeFS struct {
	t        *Tree
	children map[string][]string
}

// entry returns the entry named name (an fs.FS name), following links when follow is set.
func (f *treeFS) entry(op, name string, follow bool) (*Entry, error) {
	if !fs.ValidPath(name) {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	p := path.Join("/", name)
	var e *Entry
	if follow {
		e = f.t.Resolve(p)
	} else if dir := f.t.Resolve(path.Dir(p)); dir != nil && dir.Kind == KindDir {
		e = f.t.entries[path.Join(dir.Path, path.Base(p))]
		if p == "/" {
			e = dir
		}
	}
	if e == nil {
		return nil, &fs.PathError{Op: op, Path: name, Err: fs.ErrNotExist}
	}
	return e, nil
}

func (f *treeFS) Open(name string) (fs.File, error) {
	e, err := f.entry("open", name, true)
	if err != nil {
		return nil, err
	}
	info := &treeInfo{e: e}
	switch e.Kind {
	case KindDir:
		return &treeDir{f: f, info: info}, nil
	case KindFile:
		if e.Source == nil {
			r := bytes.NewReader(e.Data)
			return &treeFileAt{treeFile{Reader: r, info: info}, r}, nil
		}
		rc, err := e.Open()
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: name, Err: err}
		}
		if ra, ok := rc.(io.ReaderAt); ok {
			return &treeFileAt{treeFile{Reader: rc, closer: rc, info: info}, ra}, nil
		}
		return &treeFile{Reader: rc, closer: rc, info: info}, nil
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrInvalid}
}

func (f *treeFS) ReadDir(name string) ([]fs.DirEntry, error) {
	e, err := f.entry("readdir", name, true)
	if err != nil {
		return nil, err
	}
	if e.Kind != KindDir {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrInvalid}
	}
	var out []fs.DirEntry
	for _, n := range f.children[e.Path] {
		out = append(out, fs.FileInfoToDirEntry(&treeInfo{e: f.t.entries[path.Join(e.Path, n)]}))
	}
	return out, nil
}

func (f *treeFS) ReadLink(name string) (string, error) {
	e, err := f.entry("readlink", name, false)
	if err != nil {
		return "", err
	}
	if e.Kind != KindSymlink {
		return "", &fs.PathError{Op: "readlink", Path: name, Err: fs.ErrInvalid}
	}
	return e.Target, nil
}

func (f *treeFS) Lstat(name string) (fs.FileInfo, error) {
	e, err := f.entry("lstat", name, false)
	if err != nil {
		return nil, err
	}
	return &treeInfo{e: e}, nil
}

// treeInfo is an entry as fs.FileInfo.
type treeInfo struct{ e *Entry }

func (i *treeInfo) Name() string {
	if i.e.Path == "/" {
		return "."
	}
	return path.Base(i.e.Path)
}

func (i *treeInfo) Size() int64 {
	switch {
	case i.e.Kind != KindFile:
		return 0
	case i.e.Source == nil:
		return int64(len(i.e.Data))
	case i.e.Size != 0:
		return i.e.Size
	}
	return i.e.Source.Size()
}

func (i *treeInfo) Mode() fs.FileMode {
	switch i.e.Kind {
	case KindDir:
		return fs.ModeDir | i.e.Mode
	case KindSymlink:
		return fs.ModeSymlink | 0o777
	}
	return i.e.Mode
}

func (i *treeInfo) ModTime() time.Time { return time.Time{} }
func (i *treeInfo) IsDir() bool        { return i.e.Kind == KindDir }
func (i *treeInfo) Sys() any           { return nil }

// treeFile is an open file of the tree.
type treeFile struct {
	io.Reader
	closer io.Closer
	info   *treeInfo
}

// treeFileAt is a treeFile whose source reads at offsets too.
type treeFileAt struct {
	treeFile
	io.ReaderAt
}

func (f *treeFile) Stat() (fs.FileInfo, error) { return f.info, nil }

func (f *treeFile) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

// treeDir is an open directory of the tree.
type treeDir struct {
	f    *treeFS
	info *treeInfo
	read int
}

func (d *treeDir) Stat() (fs.FileInfo, error) { return d.info, nil }
func (d *treeDir) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: d.info.e.Path, Err: fs.ErrInvalid}
}
func (d *treeDir) Close() error { return nil }

func (d *treeDir) ReadDir(n int) ([]fs.DirEntry, error) {
	all, err := d.f.ReadDir(fsName(d.info.e.Path))
	if err != nil {
		return nil, err
	}
	rest := all[d.read:]
	if n > 0 {
		if len(rest) == 0 {
			return nil, io.EOF
		}
		rest = rest[:min(n, len(rest))]
	}
	d.read += len(rest)
	return rest, nil
}
