package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"time"
)

// ErrChanged reports that a path no longer holds the file that was looked at when planning: it was
// replaced, rewritten, removed, or a symbolic link now stands in its way.
var ErrChanged = errors.New("is no longer the file that was planned")

// OpenVerified opens name in fsys (following no link) and checks, on the opened file itself, that it is
// still the regular file want describes (Lstat's Meta when planning): the same Dev, Ino, Size and ModTime
// for a directory root, the same Layer, Offset and Size for an image root. Otherwise the error wraps
// ErrChanged, and, when the open itself failed, the open's error (fs.ErrNotExist, syscall.ELOOP...).
//
// The file returned is the one checked, so bytes swapped in after planning are never read through it; a
// rewrite in place that keeps size and modification time is beyond what a stat can see.
func OpenVerified(fsys FS, name string, want Meta) (fs.File, error) {
	f, err := fsys.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ELOOP) || errors.Is(err, syscall.ENOTDIR) {
			return nil, fmt.Errorf("%q in %s %w: %w", name, fsys, ErrChanged, err)
		}
		return nil, fmt.Errorf("opening %q in %s: %w", name, fsys, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening %q in %s: %w", name, fsys, err)
	}
	if what := changes(fi, want); what != "" {
		f.Close()
		return nil, fmt.Errorf("%q in %s %w: %s", name, fsys, ErrChanged, what)
	}
	return f, nil
}

// changes says how an opened file differs from the Meta it was planned with, or "".
func changes(fi fs.FileInfo, want Meta) string {
	if !fi.Mode().IsRegular() {
		return "it is now " + kindOf(fi.Mode())
	}
	got := MetaOf(fi)
	var diffs []string
	image := want.Layer != "" || got.Layer != ""
	if image {
		if got.Layer != want.Layer {
			diffs = append(diffs, fmt.Sprintf("layer %s, was %s", got.Layer, want.Layer))
		}
		if got.Offset != want.Offset {
			diffs = append(diffs, fmt.Sprintf("offset %d, was %d", got.Offset, want.Offset))
		}
	} else if got.Dev != want.Dev || got.Ino != want.Ino {
		diffs = append(diffs, fmt.Sprintf("inode %d on device %#x, was %d on %#x", got.Ino, got.Dev, want.Ino, want.Dev))
	}
	if got.Size != want.Size {
		diffs = append(diffs, fmt.Sprintf("size %d, was %d", got.Size, want.Size))
	}
	if !image && !got.ModTime.Equal(want.ModTime) {
		diffs = append(diffs, fmt.Sprintf("modified %s, was %s",
			got.ModTime.UTC().Format(time.RFC3339Nano), want.ModTime.UTC().Format(time.RFC3339Nano)))
	}
	return strings.Join(diffs, ", ")
}

// kindOf names a file type for messages.
func kindOf(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}
