package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// WriteDir writes the tree as a root filesystem directory at dest (see replaceAtomically for the rules on an
// existing dest). Files are created with O_EXCL|O_NOFOLLOW under directories this function made itself, so
// nothing is ever written through a symbolic link. Owners are the entries' when run as root (otherwise the caller's);
// every mtime is mtime.
func WriteDir(ctx context.Context, t *Tree, dest string, mtime time.Time, force bool) error {
	return replaceAtomically(dest, force, func(tmp string) error { return writeTree(ctx, t, tmp, mtime) })
}

func writeTree(ctx context.Context, t *Tree, top string, mtime time.Time) error {
	entries := t.Entries()
	var dirs []*Entry
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := filepath.Join(top, filepath.FromSlash(e.Path))
		switch e.Kind {
		case KindDir:
			// Made writable for now; the tree's mode is set once everything inside exists.
			if err := os.Mkdir(p, 0o700); err != nil && !(e.Path == "/" && os.IsExist(err)) {
				return fmt.Errorf("output: %w", err)
			}
			dirs = append(dirs, e)
		case KindSymlink:
			if err := os.Symlink(e.Target, p); err != nil {
				return fmt.Errorf("output: %w", err)
			}
			if err := chown(p, e); err != nil {
				return err
			}
			if err := lchtimes(p, mtime); err != nil {
				return err
			}
		case KindFile:
			if err := writeFile(ctx, e, p, mtime); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s: cannot write a %s", e.Path, e.Kind)
		}
	}
	// Deepest first, so a read-only directory is closed only after its children are done.
	slices.Reverse(dirs)
	for _, e := range dirs {
		p := filepath.Join(top, filepath.FromSlash(e.Path))
		if err := chown(p, e); err != nil {
			return err
		}
		if err := os.Chmod(p, fileMode(e.Mode)); err != nil {
			return fmt.Errorf("output: %w", err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			return fmt.Errorf("output: %w", err)
		}
	}
	return nil
}

func writeFile(ctx context.Context, e *Entry, p string, mtime time.Time) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if err := copyEntry(ctx, f, e); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	if err := chown(p, e); err != nil {
		return err
	}
	// Chmod after writing and chown: setuid/setgid bits would be cleared by a write, and 0600 kept it private meanwhile.
	if err := os.Chmod(p, fileMode(e.Mode)); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	// After chown, which clears them; only root may set them.
	if e.Capability != "" && os.Geteuid() == 0 {
		if err := unix.Lsetxattr(p, CapabilityXattr, []byte(e.Capability), 0); err != nil {
			return fmt.Errorf("output: setting the file capabilities of %s: %w", p, err)
		}
	}
	return os.Chtimes(p, mtime, mtime)
}

// chown gives a written path the entry's owners when this process may (as root); otherwise what it writes
// stays the caller's.
func chown(p string, e *Entry) error {
	if os.Geteuid() != 0 {
		return nil
	}
	if err := os.Lchown(p, e.UID, e.GID); err != nil {
		return fmt.Errorf("output: %w", err)
	}
	return nil
}

// lchtimes sets a symbolic link's own times.
func lchtimes(p string, t time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("output: setting times of %s: %w", p, err)
	}
	return nil
}
