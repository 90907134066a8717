// Package rootfs gives read-only access to a root filesystem, wherever it lives: a directory of this
// machine or an existing image read from its layers. elfdeps resolves inside an FS and the collector copies
// from it; neither ever opens a host path of its own, so a root never leaks what lies outside it.
package rootfs

import (
	"io/fs"
	"time"
)

// FS is a read-only root filesystem. Names are fs.FS names (no leading "/", "." for the root).
//
// Open never follows a symbolic link, in any component: callers resolve links themselves, inside the root,
// as the kernel would under chroot (elfdeps does), and open the real path. A link anywhere in the name is
// an error. ReadDir, ReadLink and Lstat do not follow a final link either.
type FS interface {
	fs.FS
	fs.ReadDirFS
	fs.ReadLinkFS // ReadLink(name) and Lstat(name)
	// String names the root for messages: the directory, or the image reference as given.
	String() string
	// Close releases what the root holds (descriptors, spool files).
	Close() error
}

// Meta is what a root knows of a path besides fs.FileInfo: owners, and for a regular file an identity
// that changes when its content may have (checked again when the file is copied).
type Meta struct {
	UID, GID int
	// Dev, Ino, Size and ModTime identify a directory root's file; Layer (the layer's digest) and Offset
	// an image root's.
	Dev, Ino uint64
	Size     int64
	ModTime  time.Time
	Layer    string
	Offset   int64
	// Xattrs are the extended attributes the root records (an image's PAX SCHILY.xattr records), by name.
	Xattrs map[string]string
}

// MetaOf returns the Meta of a FileInfo from an FS of this package; for any other FileInfo, owners 0:0
// and the size and time it reports.
func MetaOf(fi fs.FileInfo) Meta {
	if m, ok := fi.Sys().(*Meta); ok {
		return *m
	}
	return Meta{Size: fi.Size(), ModTime: fi.ModTime()}
}

// CapabilityXattr is the extended attribute that holds a file's capabilities (struct vfs_cap_data).
const CapabilityXattr = "security.capability"

// Capability returns the file capabilities of the regular file name of a root (fi its Lstat), raw, or ""
// when it has none or they cannot be read: an image's from its PAX record, a directory's from the
// attribute.
func Capability(fsys FS, name string, fi fs.FileInfo) string {
	if !fi.Mode().IsRegular() {
		return ""
	}
	if c, ok := MetaOf(fi).Xattrs[CapabilityXattr]; ok {
		return c
	}
	if d, ok := fsys.(*Dir); ok {
		return d.xattr(name, CapabilityXattr)
	}
	return ""
}
