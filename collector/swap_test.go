package collector

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// TestSwapBetweenPlanAndWrite: a file planned from a directory root or an --add tree and replaced before it
// is written (by a symlink to a secret, or by another file) fails the write, deterministically, with
// rootfs.ErrChanged; no byte of the secret gets out.
func TestSwapBetweenPlanAndWrite(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "shadow")
	const planned = "planned content, not a secret\n"
	if err := os.WriteFile(secret, []byte("root:SECRET-HASH:19000::::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		swap func(t *testing.T, file string)
	}{
		{"symlink to a secret", func(t *testing.T, file string) {
			if err := os.Remove(file); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(secret, file); err != nil {
				t.Fatal(err)
			}
		}},
		{"another file of the same size and time", func(t *testing.T, file string) {
			st, err := os.Stat(file)
			if err != nil {
				t.Fatal(err)
			}
			tmp := file + ".new"
			if err := os.WriteFile(tmp, []byte("root:SECRET-HASH:19000::::::::\n")[:st.Size()], 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(tmp, st.ModTime(), st.ModTime()); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, file); err != nil {
				t.Fatal(err)
			}
		}},
		{"a parent directory replaced by a symlink", func(t *testing.T, file string) {
			dir := filepath.Dir(file)
			if err := os.Rename(dir, dir+".old"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Dir(secret), dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(secret, filepath.Join(filepath.Dir(secret), filepath.Base(file))); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Rename(filepath.Join(filepath.Dir(secret), filepath.Base(file)), secret) })
		}},
	} {
		for _, from := range []string{"root", "add"} {
			t.Run(from+"/"+tc.name, func(t *testing.T) {
				sysroot := t.TempDir()
				file := filepath.Join(sysroot, "etc", "app", "data.conf")
				if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(file, []byte(planned), 0o644); err != nil {
					t.Fatal(err)
				}
				root, err := rootfs.OpenDir(sysroot)
				if err != nil {
					t.Fatal(err)
				}
				defer root.Close()
				p, err := NewPlanner(root)
				if err != nil {
					t.Fatal(err)
				}
				if from == "root" {
					err = p.AddRootPath("/etc/app/data.conf", Origin{Kind: OriginInput, Reason: "test"})
				} else {
					err = p.AddHostPath(filepath.Join(sysroot, "etc"), "/conf", Origin{Kind: OriginAdded, Reason: "test"})
				}
				if err != nil {
					t.Fatal(err)
				}
				tc.swap(t, file)
				var out capture
				err = WriteTar(context.Background(), p.Tree(), &out, time.Unix(0, 0))
				if !errors.Is(err, rootfs.ErrChanged) {
					t.Errorf("WriteTar after the swap: %v, want rootfs.ErrChanged", err)
				}
				if out.saw("SECRET-HASH") {
					t.Error("the secret's bytes were written")
				}
			})
		}
	}
}

// capture is an io.Writer that keeps what was written.
type capture struct{ data []byte }

func (c *capture) Write(p []byte) (int, error) { c.data = append(c.data, p...); return len(p), nil }

func (c *capture) saw(s string) bool {
	return len(s) > 0 && len(c.data) >= len(s) && indexOf(c.data, s) >= 0
}

func indexOf(b []byte, s string) int {
	for i := 0; i+len(s) <= len(b); i++ {
		if string(b[i:i+len(s)]) == s {
			return i
		}
	}
	return -1
}

var _ io.Writer = (*capture)(nil)
