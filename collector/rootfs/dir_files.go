package rootfs

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// list reads an opened directory, sorted by name. Entries whose type the file system does not report are
// looked at with fstatat.
func (d *Dir) list(fd int, name string) ([]fs.DirEntry, error) {
	var ents []fs.DirEntry
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, pathErr("readdir", name, err)
		}
		if n <= 0 {
			break
		}
		// struct linux_dirent64 { u64 d_ino; s64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(binary.NativeEndian.Uint16(b[16:]))
			if reclen < 19 || reclen > len(b) {
				return nil, pathErr("readdir", name, unix.EIO)
			}
			rec := b[:reclen]
			b = b[reclen:]
			nm := rec[19:]
			if i := bytes.IndexByte(nm, 0); i >= 0 {
				nm = nm[:i]
			}
			entName := string(nm)
			if entName == "." || entName == ".." || entName == "" {
				continue
			}
			typ, ok := direntType(rec[18])
			if !ok {
				var st unix.Stat_t
				if err := unix.Fstatat(fd, entName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					if err == unix.ENOENT {
						continue // removed since it was listed
					}
					return nil, pathErr("lstat", joinName(name, entName), err)
				}
				typ = modeOf(st.Mode).Type()
			}
			ents = append(ents, &dirEntry{d: d, dir: name, name: entName, typ: typ})
		}
	}
	sortEntries(ents)
	return ents, nil
}

func direntType(t uint8) (fs.FileMode, bool) {
	switch t {
	case unix.DT_REG:
		return 0, true
	case unix.DT_DIR:
		return fs.ModeDir, true
	case unix.DT_LNK:
		return fs.ModeSymlink, true
	case unix.DT_FIFO:
		return fs.ModeNamedPipe, true
	case unix.DT_SOCK:
		return fs.ModeSocket, true
	case unix.DT_CHR:
		return fs.ModeDevice | fs.ModeCharDevice, true
	case unix.DT_BLK:
		return fs.ModeDevice, true
	}
	return 0, false
}

// dirEntry is one entry of a Dir's listing; Info looks it up again from the root.
type dirEntry struct {
	d         *Dir
	dir, name string
	typ       fs.FileMode
}

func (e *dirEntry) Name() string               { return e.name }
func (e *dirEntry) IsDir() bool                { return e.typ.IsDir() }
func (e *dirEntry) Type() fs.FileMode          { return e.typ }
func (e *dirEntry) Info() (fs.FileInfo, error) { return e.d.Lstat(joinName(e.dir, e.name)) }
func (e *dirEntry) String() string             { return fs.FormatDirEntry(e) }

// regularFile is an opened regular file of a Dir: an *os.File whose Stat carries a *Meta.
type regularFile struct {
	*os.File
	name string
}

func (f *regularFile) Stat() (fs.FileInfo, error) {
	var st unix.Stat_t
	var serr error
	rc, err := f.File.SyscallConn()
	if err == nil {
		err = rc.Control(func(fd uintptr) { serr = unix.Fstat(int(fd), &st) })
	}
	if err == nil {
		err = serr
	}
	if err != nil {
		return nil, pathErr("stat", f.name, err)
	}
	return infoOf(f.name, &st), nil
}

// dirFile is an opened directory of a Dir.
type dirFile struct {
	d    *Dir
	name string
	fd   int
	ents *dirEntries // read whole on the first ReadDir
}

func (f *dirFile) Stat() (fs.FileInfo, error) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return nil, pathErr("stat", f.name, err)
	}
	return infoOf(f.name, &st), nil
}

func (f *dirFile) Read([]byte) (int, error) { return 0, pathErr("read", f.name, unix.EISDIR) }

func (f *dirFile) ReadDir(n int) ([]fs.DirEntry, error) {
	if f.fd < 0 {
		return nil, pathErr("readdir", f.name, fs.ErrClosed)
	}
	if f.ents == nil {
		ents, err := f.d.list(f.fd, f.name)
		if err != nil {
			return nil, err
		}
		f.ents = &dirEntries{ents: ents}
	}
	return f.ents.next(n)
}

func (f *dirFile) Close() error {
	if f.fd < 0 {
		return pathErr("close", f.name, fs.ErrClosed)
	}
	err := unix.Close(f.fd)
	f.fd = -1
	if err != nil {
		return pathErr("close", f.name, err)
	}
	return nil
}
