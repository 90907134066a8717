package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ErrExists is returned (wrapped) when an output exists, is not empty, and force was not given.
var ErrExists = errors.New("output exists")

// CheckDest fails early, before any work, when dest cannot be written: its parent is missing or not a
// directory, or dest exists non-empty and force is false.
func CheckDest(dest string, force bool) error {
	parent := filepath.Dir(dest)
	st, err := os.Stat(parent)
	if err != nil {
		return fmt.Errorf("output %s: %w", dest, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("output %s: %s is not a directory", dest, parent)
	}
	if !force && nonEmpty(dest) {
		return fmt.Errorf("%s: %w", dest, ErrExists)
	}
	return nil
}

// nonEmpty reports whether p exists and is a non-empty directory or anything else than a directory.
func nonEmpty(p string) bool {
	st, err := os.Lstat(p)
	if err != nil {
		return false
	}
	if !st.IsDir() {
		return true
	}
	f, err := os.Open(p)
	if err != nil {
		return true
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err != io.EOF
}

// replaceAtomically produces dest through write, which gets a temporary path beside dest (same directory,
// so the final rename is atomic) and creates a file or a directory there. Only after write succeeds is dest
// replaced: an existing non-empty dest is refused unless force; with force the old one is moved aside and
// removed after the rename. On any failure nothing is left behind and dest is untouched.
func replaceAtomically(dest string, force bool, write func(tmp string) error) (err error) {
	if err := CheckDest(dest, force); err != nil {
		return err
	}
	dir, base := filepath.Dir(dest), filepath.Base(dest)
	removeStale(dir, base)
	// The temporary's name carries this process's id, so that a later build can tell a dead build's
	// leftovers (after a SIGKILL) from a running one's.
	scratch, err := os.MkdirTemp(dir, fmt.Sprintf(".%s.scratchpack-%d-", base, os.Getpid()))
	if err != nil {
		return fmt.Errorf("output %s: %w", dest, err)
	}
	defer os.RemoveAll(scratch) // whatever is left in it: the new output on failure, the old one on success
	tmp := filepath.Join(scratch, "new")
	if err := write(tmp); err != nil {
		return err
	}
	if !force {
		// Refusing to clobber is one atomic step: rename(2) without replacing (an empty directory, which
		// may be replaced, is removed first; if anything appears there meanwhile, the rename fails).
		if st, err := os.Lstat(dest); err == nil && st.IsDir() && !nonEmpty(dest) {
			os.Remove(dest)
		}
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dest, unix.RENAME_NOREPLACE); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("%s: %w", dest, ErrExists) // it appeared while we worked
			}
			if !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("output %s: %w", dest, err)
			}
			// A file system without RENAME_NOREPLACE: check, then rename.
			if nonEmpty(dest) {
				return fmt.Errorf("%s: %w", dest, ErrExists)
			}
			if err := os.Rename(tmp, dest); err != nil {
				return fmt.Errorf("output %s: %w", dest, err)
			}
		}
		return nil
	}
	if _, err := os.Lstat(dest); err == nil {
		if err := os.Rename(dest, filepath.Join(scratch, "old")); err != nil {
			return fmt.Errorf("output %s: moving the old one aside: %w", dest, err)
		}
	}
	if err := os.Rename(tmp, dest); err != nil {
		// Put the old output back where it was.
		if _, serr := os.Lstat(filepath.Join(scratch, "old")); serr == nil {
			os.Rename(filepath.Join(scratch, "old"), dest)
		}
		return fmt.Errorf("output %s: %w", dest, err)
	}
	return nil
}

// removeStale removes the temporaries a dead build left beside dir/base (".BASE.scratchpack-PID-*" whose PID
// no longer runs): a build killed by SIGKILL cannot clean up after itself.
func removeStale(dir, base string) {
	prefix := "." + base + ".scratchpack-"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || !e.IsDir() {
			continue
		}
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
}

// writeFileAtomically writes a file output through fn.
func writeFileAtomically(dest string, force bool, fn func(w io.Writer) error) error {
	return replaceAtomically(dest, force, func(tmp string) error {
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return fmt.Errorf("output %s: %w", dest, err)
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("output %s: %w", dest, err)
		}
		return f.Close()
	})
}

// WriteTarFile writes the tree as a tarball at dest (see WriteTar).
func WriteTarFile(ctx context.Context, t *Tree, dest string, mtime time.Time, force bool) error {
	return writeFileAtomically(dest, force, func(w io.Writer) error { return WriteTar(ctx, t, w, mtime) })
}
