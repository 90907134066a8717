package rootfs

import (
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Dir is a root over a directory of this machine. It holds an O_PATH descriptor of the directory and
// resolves every name relative to it, never following a symbolic link (openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS, or an openat(O_NOFOLLOW) walk on kernels older than 5.6): a link anywhere in a name is
// ELOOP, and nothing outside the directory is ever reached, whatever the tree holds or becomes meanwhile.
//
// A Dir is safe for concurrent use.
type Dir struct {
	path string

	mu sync.RWMutex // held for writing by Close only: no lookup ever runs on a closed (or reused) descriptor
	fd int          // O_PATH|O_DIRECTORY; -1 once closed

	noOpenat2 atomic.Bool // openat2 is missing (ENOSYS): walk instead; tests set it to exercise the walk
	// noProc makes Open reopen a regular file by name, as it must when /proc is not mounted (tests set it).
	noProc bool
}

var _ FS = (*Dir)(nil)

// OpenDir opens the directory at path as a root.
func OpenDir(path string) (*Dir, error) {
	fd, err := retry(func() (int, error) {
		return unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, fmt.Errorf("opening the root %s: %w", path, err)
	}
	return &Dir{path: path, fd: fd}, nil
}

// String returns the directory's path, as given to OpenDir.
func (d *Dir) String() string { return d.path }

// Close releases the directory's descriptor. Files already opened stay usable.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd < 0 {
		return nil
	}
	err := unix.Close(d.fd)
	d.fd = -1
	if err != nil {
		return fmt.Errorf("closing the root %s: %w", d.path, err)
	}
	return nil
}

// Open opens name without following a link. A regular file is an *os.File (io.ReaderAt, io.Seeker) whose
// Stat carries a *Meta; a directory supports ReadDir; any other file (a device, a FIFO) can only be
// looked at: it is never opened for reading, so a FIFO never blocks and a device driver never runs.
func (d *Dir) Open(name string) (fs.File, error) {
	if err := checkName("open", name); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	fd, err := d.openat(name, unix.O_PATH)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, pathErr("stat", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		f, err := d.reopen(fd, name, &st)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		return &regularFile{File: f, name: name}, nil
	case unix.S_IFDIR:
		dfd, err := retry(func() (int, error) {
			return unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		})
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		return &dirFile{d: d, name: name, fd: dfd}, nil
	}
	return &specialFile{name: name, info: infoOf(name, &st)}, nil
}

// reopen opens for reading the regular file an O_PATH descriptor refers to: through /proc/self/fd, the
// same inode whatever its name now leads to; without /proc, by name again, checking it is the same file.
func (d *Dir) reopen(pathfd int, name string, st *unix.Stat_t) (*os.File, error) {
	if !d.noProc {
		fd, err := retry(func() (int, error) {
			return unix.Open(fmt.Sprintf("/proc/self/fd/%d", pathfd), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
		})
		if err == nil {
			return os.NewFile(uintptr(fd), name), nil
		}
		if err != unix.ENOENT {
			return nil, err
		}
	}
	// O_NONBLOCK: if a FIFO was put there meanwhile, opening it must not block.
	fd, err := d.openat(name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return nil, err
	}
	var again unix.Stat_t
	if err := unix.Fstat(fd, &again); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if again.Dev != st.Dev || again.Ino != st.Ino {
		unix.Close(fd)
		return nil, fmt.Errorf("%w: replaced while being opened", ErrChanged)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// ReadDir lists the directory name (not following a link), sorted by name.
func (d *Dir) ReadDir(name string) ([]fs.DirEntry, error) {
	if err := checkName("readdir", name); err != nil {
		return nil, err
	}
	d.mu.RLock()
	fd, err := d.openat(name, unix.O_RDONLY|unix.O_DIRECTORY)
	d.mu.RUnlock()
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	defer unix.Close(fd)
	return d.list(fd, name)
}

// ReadLink returns the target of the symbolic link name, verbatim.
func (d *Dir) ReadLink(name string) (string, error) {
	if err := checkName("readlink", name); err != nil {
		return "", err
	}
	if name == "." {
		return "", pathErr("readlink", name, unix.EINVAL)
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	dir, base := path.Split(name)
	pfd, err := d.openat(strings.TrimSuffix(dir, "/"), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	defer unix.Close(pfd)
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(pfd, base, buf)
		if err != nil {
			return "", pathErr("readlink", name, err)
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// Lstat describes name without following a final link; Sys() is a *Meta.
func (d *Dir) Lstat(name string) (fs.FileInfo, error) {
	if err := checkName("lstat", name); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	var st unix.Stat_t
	if name == "." {
		if d.fd < 0 {
			return nil, pathErr("lstat", name, fs.ErrClosed)
		}
		if err := unix.Fstat(d.fd, &st); err != nil {
			return nil, pathErr("lstat", name, err)
		}
		return infoOf(name, &st), nil
	}
	dir, base := path.Split(name)
	pfd, err := d.openat(strings.TrimSuffix(dir, "/"), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, pathErr("lstat", name, err)
	}
	defer unix.Close(pfd)
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, pathErr("lstat", name, err)
	}
	return infoOf(name, &st), nil
}

// openat opens name ("" or "." for the root) relative to the root's descriptor, following no link.
// d.mu must be held.
func (d *Dir) openat(name string, flags int) (int, error) {
	if d.fd < 0 {
		return -1, fs.ErrClosed
	}
	flags |= unix.O_CLOEXEC
	if name == "" || name == "." {
		return retry(func() (int, error) { return unix.Openat(d.fd, ".", flags, 0) })
	}
	if !d.noOpenat2.Load() {
		how := unix.OpenHow{
			Flags:   uint64(flags),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		}
		for try := 0; ; try++ {
			fd, err := retry(func() (int, error) { return unix.Openat2(d.fd, name, &how) })
			if err == unix.EAGAIN && try < 8 {
				continue // a rename raced with the lookup: the kernel asks to try again
			}
			if err != unix.ENOSYS {
				return fd, err
			}
			break
		}
		d.noOpenat2.Store(true)
	}
	return d.walk(name, flags)
}

// walk is openat2's RESOLVE_NO_SYMLINKS done by hand: each component is opened O_PATH|O_NOFOLLOW and
// checked with fstat before the next is looked up in it.
func (d *Dir) walk(name string, flags int) (int, error) {
	cur := d.fd
	release := func() {
		if cur != d.fd {
			unix.Close(cur)
		}
	}
	for rest := name; ; {
		c, more, found := strings.Cut(rest, "/")
		rest = more
		if !found && flags&(unix.O_PATH|unix.O_DIRECTORY) == 0 {
			// The last component, opened for real: O_NOFOLLOW makes a link ELOOP. (With O_DIRECTORY a link
			// would be ENOTDIR: directories are looked at first, below.)
			fd, err := retry(func() (int, error) { return unix.Openat(cur, c, flags|unix.O_NOFOLLOW, 0) })
			release()
			return fd, err
		}
		fd, err := retry(func() (int, error) {
			return unix.Openat(cur, c, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		})
		release()
		if err != nil {
			return -1, err
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return -1, err
		}
		typ := st.Mode & unix.S_IFMT
		switch {
		case typ == unix.S_IFLNK:
			unix.Close(fd)
			return -1, unix.ELOOP
		case typ != unix.S_IFDIR && (found || flags&unix.O_DIRECTORY != 0):
			unix.Close(fd)
			return -1, unix.ENOTDIR
		}
		if !found {
			if flags&unix.O_PATH != 0 {
				return fd, nil
			}
			dfd, err := retry(func() (int, error) { return unix.Openat(fd, ".", flags, 0) })
			unix.Close(fd)
			return dfd, err
		}
		cur = fd
	}
}

// infoOf turns a stat into a FileInfo carrying a *Meta.
func infoOf(name string, st *unix.Stat_t) *fileInfo {
	sec, nsec := st.Mtim.Unix()
	mtime := time.Unix(sec, nsec)
	return &fileInfo{
		name:  baseName(name),
		mode:  modeOf(st.Mode),
		size:  st.Size,
		mtime: mtime,
		meta: &Meta{UID: int(st.Uid), GID: int(st.Gid), Dev: uint64(st.Dev), Ino: uint64(st.Ino),
			Size: st.Size, ModTime: mtime},
	}
}

// modeOf converts st_mode as package os does.
func modeOf(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// retry calls an open until it is not interrupted by a signal.
func retry(open func() (int, error)) (int, error) {
	for {
		fd, err := open()
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// xattr returns the extended attribute attr of name (not following a final link), or "".
func (d *Dir) xattr(name, attr string) string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	fd, err := d.openat(name, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return ""
	}
	defer unix.Close(fd)
	// An O_PATH descriptor takes no fgetxattr; its /proc/self/fd link reaches the same file.
	buf := make([]byte, 256)
	n, err := unix.Getxattr(fmt.Sprintf("/proc/self/fd/%d", fd), attr, buf)
	if err != nil || n <= 0 {
		return ""
	}
	return string(buf[:n])
}
