package elfdeps

import (
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"
)

// hostDir is the fs.FS NewDir reads a directory of this machine through: os.DirFS's names and listings, but
// a regular file is a bare descriptor read with pread(2). os.Open registers every file with the runtime's
// poller (four fcntl and a failing epoll_ctl for a regular file), which is most of the system calls a
// resolution makes; a file opened here costs open, fstat, its reads and close. Names are what root
// resolved: every symbolic link already followed inside the root, so the kernel follows none.
type hostDir string

var (
	_ fs.ReadDirFS  = hostDir("")
	_ fs.ReadLinkFS = hostDir("")
)

func (d hostDir) join(op, name string) (string, error) {
	if !fs.ValidPath(name) {
		return "", &fs.PathError{Op: op, Path: name, Err: fs.ErrInvalid}
	}
	if name == "." {
		return string(d), nil
	}
	return path.Join(string(d), name), nil
}

// Open opens name. A regular file is an *fdFile; anything else is opened by os.DirFS. O_NONBLOCK keeps a
// FIFO put where a library was listed from blocking the open.
func (d hostDir) Open(name string) (fs.File, error) {
	p, err := d.join("open", name)
	if err != nil {
		return nil, err
	}
	var fd int
	for {
		fd, err = syscall.Open(p, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOCTTY|syscall.O_NONBLOCK, 0)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	f := &fdFile{fd: fd, name: name}
	if err := syscall.Fstat(fd, &f.st); err != nil {
		syscall.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	if f.st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		syscall.Close(fd)
		return os.DirFS(string(d)).Open(name)
	}
	return f, nil
}

func (d hostDir) ReadDir(name string) ([]fs.DirEntry, error) {
	p, err := d.join("readdir", name)
	if err != nil {
		return nil, err
	}
	return os.ReadDir(p)
}

// readDirUnsorted lists a directory in the order the kernel gives: root.list wants a set, and sorting
// /usr/lib/TRIPLET's thousands of names is most of listing it.
func (d hostDir) readDirUnsorted(name string) ([]fs.DirEntry, error) {
	p, err := d.join("readdir", name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

func (d hostDir) ReadLink(name string) (string, error) {
	p, err := d.join("readlink", name)
	if err != nil {
		return "", err
	}
	return os.Readlink(p)
}

func (d hostDir) Lstat(name string) (fs.FileInfo, error) {
	p, err := d.join("lstat", name)
	if err != nil {
		return nil, err
	}
	return os.Lstat(p)
}

// fdFile is a regular file of a hostDir: its descriptor and the fstat taken when it was opened.
type fdFile struct {
	fd   int
	name string
	st   syscall.Stat_t
	off  int64
}

func (f *fdFile) Stat() (fs.FileInfo, error) { return fdInfo{f}, nil }

func (f *fdFile) Read(p []byte) (int, error) {
	n, err := f.ReadAt(p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt reads len(p) bytes at off, as io.ReaderAt asks: short only at the end of the file (io.EOF).
func (f *fdFile) ReadAt(p []byte, off int64) (int, error) {
	done := 0
	for done < len(p) {
		n, err := syscall.Pread(f.fd, p[done:], off+int64(done))
		switch {
		case err == syscall.EINTR:
			continue
		case err != nil:
			return done, &fs.PathError{Op: "read", Path: f.name, Err: err}
		case n == 0:
			return done, io.EOF
		}
		done += n
	}
	return done, nil
}

func (f *fdFile) Close() error {
	if f.fd < 0 {
		return fs.ErrClosed
	}
	err := syscall.Close(f.fd)
	f.fd = -1
	return err
}

// fdInfo is an fdFile's fs.FileInfo; Sys is its *syscall.Stat_t, as os gives it.
type fdInfo struct{ f *fdFile }

func (i fdInfo) Name() string { return path.Base(i.f.name) }
func (i fdInfo) Size() int64  { return i.f.st.Size }
func (i fdInfo) Mode() fs.FileMode {
	m := fs.FileMode(i.f.st.Mode & 0o777)
	if i.f.st.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if i.f.st.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if i.f.st.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}
func (i fdInfo) ModTime() time.Time { return time.Unix(i.f.st.Mtim.Unix()) }
func (i fdInfo) IsDir() bool        { return false }
func (i fdInfo) Sys() any           { return &i.f.st }
