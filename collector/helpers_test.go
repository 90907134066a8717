package collector

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// hostRoot is this machine's "/" as a root, closed when t ends.
func hostRoot(t *testing.T) rootfs.FS {
	t.Helper()
	d, err := rootfs.OpenDir("/")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// origins are input origins with these reasons.
func origins(reasons ...string) []Origin {
	var out []Origin
	for _, r := range reasons {
		out = append(out, Origin{Kind: OriginInput, Reason: r})
	}
	return out
}

// hostSource is a host file as a Source.
func hostSource(t *testing.T, path string) Source {
	t.Helper()
	s, err := HostFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goneSource is a Source whose file was planned, then removed.
func goneSource(t *testing.T, dir, name string) Source {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := hostSource(t, p)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	return s
}

// changedSource is a Source whose file was planned with content before, then rewritten with after.
func changedSource(t *testing.T, path, before, after string) Source {
	t.Helper()
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	s := hostSource(t, path)
	if err := os.WriteFile(path, []byte(after), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}
