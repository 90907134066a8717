package collector

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"golang.org/x/sys/unix"

	"github.com/scratchpack/scratchpack/collector/rootfs"
)

// capNetRaw is a version-2 vfs_cap_data granting cap_net_raw (bit 13) permitted and effective, as
// `setcap cap_net_raw=ep` writes it.
var capNetRaw = string([]byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})

// capImage is an image whose /bin/ping has file capabilities in its layer's PAX records.
func capImage(t *testing.T) *rootfs.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "bin/ping", Typeflag: tar.TypeReg, Mode: 0o755, Size: 4, Uid: 0, Gid: 0,
			PAXRecords: map[string]string{"SCHILY.xattr." + CapabilityXattr: capNetRaw}},
		{Name: "bin/plain", Typeflag: tar.TypeReg, Mode: 0o755, Size: 4},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte("data"))
		}
	}
	tw.Close()
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.NewImage(img, "capimage")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

func planCaps(t *testing.T, root rootfs.FS, keep bool) *Tree {
	t.Helper()
	p, err := NewPlanner(root, WithKeepSetuid(keep))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"/bin/ping", "/bin/plain"} {
		if err := p.AddRootPath(f, Origin{Kind: OriginInput, Reason: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	return p.Tree()
}

// File capabilities of a root's file reach the image's layer and a written directory when setuid bits
// are kept, and are reported as removed when not.
func TestFileCapabilities(t *testing.T) {
	tr := planCaps(t, capImage(t), true)
	ping, plain := tr.Get("/bin/ping"), tr.Get("/bin/plain")
	if ping == nil || ping.Capability != capNetRaw || plain == nil || plain.Capability != "" {
		t.Fatalf("planned capabilities: ping %+v, plain %+v", ping, plain)
	}
	var buf bytes.Buffer
	if err := WriteTar(context.Background(), tr, &buf, time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	tr2 := tar.NewReader(&buf)
	found := map[string]string{}
	for {
		h, err := tr2.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		found[h.Name] = h.PAXRecords["SCHILY.xattr."+CapabilityXattr]
	}
	if found["bin/ping"] != capNetRaw || found["bin/plain"] != "" {
		t.Errorf("the tar's capability records: %q", found)
	}

	stripped := planCaps(t, capImage(t), false).Get("/bin/ping")
	if stripped.Capability != "" || !stripped.CapabilityStripped {
		t.Errorf("without keeping setuid: capability %q, stripped %v", stripped.Capability, stripped.CapabilityStripped)
	}

	if os.Geteuid() != 0 {
		t.Skip("writing capabilities to a directory needs root")
	}
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteDir(context.Background(), tr, dir, time.Unix(0, 0), false); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	n, err := unix.Getxattr(filepath.Join(dir, "bin/ping"), CapabilityXattr, b)
	if err != nil || string(b[:n]) != capNetRaw {
		t.Fatalf("the written file's capabilities: %q, %v", b[:max(n, 0)], err)
	}
	// And a directory root reads them back.
	d, err := rootfs.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := planCaps(t, d, true).Get("/bin/ping"); got.Capability != capNetRaw {
		t.Errorf("capabilities read from a directory root: %q", got.Capability)
	}
}

// Unpack writes an image root as a runtime would, owners shifted by the user namespace's base.
func TestUnpackShifted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("unpacking with other owners needs root")
	}
	dest := filepath.Join(t.TempDir(), "root")
	const shift = 1 << 30
	if err := Unpack(context.Background(), capImage(t), dest, shift); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "bin", "bin/ping", "bin/plain"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dest, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != shift || st.Gid != shift {
			t.Errorf("%s: owners %d:%d, want %d:%d", p, st.Uid, st.Gid, shift, shift)
		}
		if p == "bin/ping" && st.Mode&0o7777 != 0o755 {
			t.Errorf("%s: mode %o", p, st.Mode&0o7777)
		}
	}
	b := make([]byte, 64)
	if n, err := unix.Getxattr(filepath.Join(dest, "bin/ping"), CapabilityXattr, b); err != nil || string(b[:n]) != capNetRaw {
		t.Errorf("the unpacked file's capabilities: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(dest, "bin/plain")); err != nil || string(data) != "data" {
		t.Errorf("bin/plain: %q, %v", data, err)
	}
	if err := Unpack(context.Background(), capImage(t), dest, shift); err == nil {
		t.Error("unpacking onto an existing directory worked")
	}
}
