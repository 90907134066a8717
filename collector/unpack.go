package collector

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// Unpack writes every directory, regular file and symbolic link of root under dest (which must not exist),
// as a runtime unpacks an image: owners are the root's plus shift (the host ids a user namespace maps the
// image's 0.. to; needs root unless 0 and the files are the caller's), modes with setuid bits, file
// capabilities. Device nodes, fifos and sockets are left out: a workload gets its own /dev. Nothing of the
// root can write outside dest: paths come from the root's own listing, and each file is created O_EXCL|
// O_NOFOLLOW in a directory this function made.
func Unpack(ctx context.Context, root rootfs.FS, dest string, shift int) error {
	if err := os.Mkdir(dest, 0o700); err != nil {
		return fmt.Errorf("unpacking %s: %w", root, err)
	}
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	var dirs []dirMode // chmod last, so that a read-only directory is still filled
	err := fs.WalkDir(root, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := root.Lstat(name)
		if err != nil {
			return err
		}
		m := rootfs.MetaOf(fi)
		p := filepath.Join(dest, filepath.FromSlash(name))
		switch {
		case fi.IsDir():
			if name != "." {
				if err := os.Mkdir(p, 0o700); err != nil {
					return err
				}
			}
			dirs = append(dirs, dirMode{p, fi.Mode()})
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := root.ReadLink(name)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, p); err != nil {
				return err
			}
		case fi.Mode().IsRegular():
			if err := unpackFile(root, name, p); err != nil {
				return err
			}
		default:
			return nil
		}
		if err := os.Lchown(p, m.UID+shift, m.GID+shift); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			// After chown, which clears setuid bits and capabilities.
			if err := os.Chmod(p, fileMode(fi.Mode())); err != nil {
				return err
			}
			if c := rootfs.Capability(root, name, fi); c != "" {
				if err := unix.Lsetxattr(p, CapabilityXattr, []byte(c), 0); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		for i := len(dirs) - 1; i >= 0; i-- {
			if err = os.Chmod(dirs[i].path, fileMode(dirs[i].mode)); err != nil {
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("unpacking %s into %s: %w", root, dest, err)
	}
	return nil
}

func unpackFile(root rootfs.FS, name, p string) error {
	in, err := root.Open(name)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
