package rootfs

import (
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// fileInfo is the fs.FileInfo of both roots; Sys() is its *Meta.
type fileInfo struct {
	name  string
	mode  fs.FileMode
	size  int64
	mtime time.Time
	meta  *Meta
}

func (fi *fileInfo) Name() string       { return fi.name }
func (fi *fileInfo) Size() int64        { return fi.size }
func (fi *fileInfo) Mode() fs.FileMode  { return fi.mode }
func (fi *fileInfo) ModTime() time.Time { return fi.mtime }
func (fi *fileInfo) IsDir() bool        { return fi.mode.IsDir() }
func (fi *fileInfo) Sys() any           { return fi.meta }
func (fi *fileInfo) String() string     { return fs.FormatFileInfo(fi) }

// baseName is the FileInfo name of an fs.FS name: its last element, "." for the root.
func baseName(name string) string {
	if name == "." {
		return "."
	}
	return path.Base(name)
}

// checkName refuses what fs.ValidPath refuses, as every fs.FS must.
func checkName(op, name string) error {
	if !fs.ValidPath(name) {
		return &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	return nil
}

// joinName is path.Join for fs.FS names, where "." is the root.
func joinName(dir, name string) string {
	if dir == "." {
		return name
	}
	return dir + "/" + name
}

// ancestors returns the directories above an fs.FS name, outermost first, the root excluded: "a/b/c" gives
// "a", "a/b".
func ancestors(name string) []string {
	var out []string
	for i := 0; i < len(name); i++ {
		if name[i] == '/' {
			out = append(out, name[:i])
		}
	}
	return out
}

// specialFile is an opened entry that is neither a regular file nor a directory (a device, a FIFO, a socket):
// it can be looked at, never read, so that opening one never blocks and never reaches a driver.
type specialFile struct {
	name string
	info fs.FileInfo
}

func (f *specialFile) Stat() (fs.FileInfo, error) { return f.info, nil }
func (f *specialFile) Close() error               { return nil }
func (f *specialFile) Read([]byte) (int, error) {
	return 0, &fs.PathError{Op: "read", Path: f.name, Err: fs.ErrInvalid}
}

// dirEntries serves fs.ReadDirFile.ReadDir(n) out of a complete, sorted listing.
type dirEntries struct {
	ents []fs.DirEntry
	pos  int
}

func (d *dirEntries) next(n int) ([]fs.DirEntry, error) {
	rest := d.ents[d.pos:]
	if n <= 0 {
		d.pos = len(d.ents)
		return slices.Clip(rest), nil
	}
	if len(rest) == 0 {
		return nil, io.EOF
	}
	n = min(n, len(rest))
	d.pos += n
	return slices.Clip(rest[:n]), nil
}

func sortEntries(ents []fs.DirEntry) {
	slices.SortFunc(ents, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
}
