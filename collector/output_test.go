package collector

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestNoClobberIsAtomic: an output that appears while a build writes (another build finishing first) is
// not replaced without force, and the first one's content stays (issue 9 #11).
func TestNoClobberIsAtomic(t *testing.T) {
	for _, existing := range []string{"file", "non-empty directory"} {
		t.Run(existing, func(t *testing.T) {
			dest := filepath.Join(t.TempDir(), "out")
			err := replaceAtomically(dest, false, func(tmp string) error {
				if err := os.WriteFile(tmp, []byte("second"), 0o644); err != nil {
					return err
				}
				// The other build renames its output into place now, after our check.
				if existing == "file" {
					return os.WriteFile(dest, []byte("first"), 0o644)
				}
				if err := os.Mkdir(dest, 0o755); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(dest, "f"), []byte("first"), 0o644)
			})
			if !errors.Is(err, ErrExists) {
				t.Errorf("replaceAtomically: %v, want ErrExists", err)
			}
			got := filepath.Join(dest, "f")
			if existing == "file" {
				got = dest
			}
			if b, _ := os.ReadFile(got); string(b) != "first" {
				t.Errorf("the first build's output holds %q", b)
			}
			checkNoLeftovers(t, filepath.Dir(dest), "out")
		})
	}
}

// TestStaleTemporariesRemoved: a dead build's temporaries beside the output are removed by the next build to
// it; a live build's are not (issue 9 #10).
func TestStaleTemporariesRemoved(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	dead := cmd.Process.Pid
	dir := t.TempDir()
	stale := filepath.Join(dir, fmt.Sprintf(".out.tar.scratchpack-%d-123", dead))
	live := filepath.Join(dir, fmt.Sprintf(".out.tar.scratchpack-%d-456", os.Getppid()))
	other := filepath.Join(dir, fmt.Sprintf(".other.scratchpack-%d-789", dead))
	for _, d := range []string{stale, live, other} {
		if err := os.MkdirAll(filepath.Join(d, "new"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := WriteTarFile(context.Background(), NewTree(), filepath.Join(dir, "out.tar"), time.Unix(0, 0), false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the dead build's %s is still there (%v)", stale, err)
	}
	for _, d := range []string{live, other} {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("%s was removed: %v", d, err)
		}
	}
}

// TestCancelledWrite: a build cancelled while writing stops, returns the context's error, and leaves
// nothing (issue 9 #9).
func TestCancelledWrite(t *testing.T) {
	tr := sampleTree(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	parent := t.TempDir()
	for name, write := range map[string]func() error{
		"dir":  func() error { return WriteDir(ctx, tr, filepath.Join(parent, "dir"), time.Unix(0, 0), false) },
		"tar":  func() error { return WriteTarFile(ctx, tr, filepath.Join(parent, "tar"), time.Unix(0, 0), false) },
		"cpio": func() error { return WriteCPIOFile(ctx, tr, filepath.Join(parent, "cpio"), time.Unix(0, 0), false) },
	} {
		if err := write(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: %v, want context.Canceled", name, err)
		}
	}
	if ents, _ := os.ReadDir(parent); len(ents) != 0 {
		t.Errorf("a cancelled build left %v", ents)
	}
}

// TestLayoutHonoursUmask: under umask 077 the OCI layout's files are 0600 and its directories 0700, as the
// tar and cpio outputs are (issue 9 #16): an added secret must not become world-readable on disk.
func TestLayoutHonoursUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	img, err := BuildImage(context.Background(), sampleTree(t), ImageConfig{Platform: amd64})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	if err := WriteOCILayout(img, dir, "v1", false); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if st.IsDir() {
			want = fs.ModeDir | 0o700
		}
		if st.Mode() != want {
			t.Errorf("%s: mode %v, want %v under umask 077", p, st.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
