package rootfs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/scratchpack/scratchpack/elfdeps"
)

var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// tent is one tar entry of a synthetic layer.
type tent struct {
	hdr  tar.Header
	body string
}

func file(name, body string) tent {
	return tent{tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch}, body}
}

func exe(name, body string) tent {
	e := file(name, body)
	e.hdr.Mode = 0o755
	return e
}

func dir(name string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}}
}

func symlink(name, target string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hardlink(name, target string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: epoch}}
}

// whiteout hides name in lower layers.
func whiteout(name string) tent {
	d, b := filepath.Split(name)
	return file(d+whiteoutPrefix+b, "")
}

// opaque hides what lower layers have under dir.
func opaque(dir string) tent { return file(dir+"/"+opaqueWhiteout, "") }

func with(e tent, f func(*tar.Header)) tent {
	f(&e.hdr)
	return e
}

func tarBytes(t testing.TB, ents []tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func rawLayer(t testing.TB, data []byte) v1.Layer {
	t.Helper()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func layerOf(t testing.TB, ents ...tent) v1.Layer { return rawLayer(t, tarBytes(t, ents)) }

// imageOf stacks layers, the first at the bottom.
func imageOf(t testing.TB, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func newTestImage(t testing.TB, img v1.Image) *Image {
	t.Helper()
	im, err := NewImage(img, "test-image", WithSpoolDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { im.Close() })
	return im
}

func digestOf(t testing.TB, l v1.Layer) string {
	t.Helper()
	d, err := l.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// row is one path of a root as a test compares it.
type row struct {
	Path, Mode      string
	UID, GID        int
	Content, Target string
	Xattrs          map[string]string
}

// listing walks a root through ReadDir, Lstat, ReadLink and Open.
func listing(t *testing.T, fsys FS) []row {
	t.Helper()
	var rows []row
	err := fs.WalkDir(fsys, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := fsys.Lstat(p)
		if err != nil {
			return err
		}
		m := MetaOf(fi)
		r := row{Path: p, Mode: fi.Mode().String(), UID: m.UID, GID: m.GID, Xattrs: m.Xattrs}
		switch {
		case fi.Mode().IsRegular():
			data, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			r.Content = string(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			if r.Target, err = fsys.ReadLink(p); err != nil {
				return err
			}
		}
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

var rootRow = row{Path: ".", Mode: "drwxr-xr-x"}

// TestImageMeta checks what Lstat says of each path: which layer provided it, where its content is, and its
// time.
func TestImageMeta(t *testing.T) {
	lower := layerOf(t, dir("etc/"), with(file("etc/os-release", "lower"), func(h *tar.Header) { h.Uid, h.Gid = 1, 2 }), file("etc/hosts", "h"))
	upper := layerOf(t, file("etc/os-release", "upper!"), file("usr/bin/x", "x"))
	im := newTestImage(t, imageOf(t, lower, upper))
	ld, ud := digestOf(t, lower), digestOf(t, upper)
	for _, tc := range []struct {
		name string
		want Meta
	}{
		{"etc", Meta{Size: 0, ModTime: epoch, Layer: ld}},
		{"etc/hosts", Meta{Size: 1, ModTime: epoch, Layer: ld}},
		{"etc/os-release", Meta{Size: 6, ModTime: epoch, Layer: ud}},
		{"usr", Meta{ModTime: time.Unix(0, 0), Layer: ud}},
		{".", Meta{ModTime: time.Unix(0, 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fi, err := im.Lstat(tc.name)
			if err != nil {
				t.Fatal(err)
			}
			got := MetaOf(fi)
			got.Offset = 0 // checked below
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Meta (-want +got):\n%s", diff)
			}
			if fi.Size() != tc.want.Size || !fi.ModTime().Equal(tc.want.ModTime) || fi.Name() != baseName(tc.name) {
				t.Errorf("FileInfo %v", fs.FormatFileInfo(fi))
			}
		})
	}
	// Offsets are distinct places of the spool, read back by ReadAt.
	for name, want := range map[string]string{"etc/os-release": "upper!", "etc/hosts": "h", "usr/bin/x": "x"} {
		f, err := im.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(want))
		if _, err := f.(io.ReaderAt).ReadAt(buf, 0); err != nil || string(buf) != want {
			t.Errorf("%s: ReadAt = %q, %v", name, buf, err)
		}
		if fi, err := f.Stat(); err != nil || MetaOf(fi).Layer == "" {
			t.Errorf("%s: Stat %v, %v", name, fi, err)
		}
		f.Close()
	}
}

// TestImageSpool checks that content goes to an unlinked spool file, not to memory, and only for the
// files that are kept.
func TestImageSpool(t *testing.T) {
	const big = 64 << 20
	// The layer is written as it is read: the test holds no copy of it either.
	bigLayer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: big})
			for i := 0; err == nil && i < big/4096; i++ {
				_, err = tw.Write(bytes.Repeat([]byte{byte(i)}, 4096))
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}, tarball.WithCompressionLevel(gzip.BestSpeed))
	if err != nil {
		t.Fatal(err)
	}
	img := imageOf(t, layerOf(t, file("hidden", strings.Repeat("h", 1000)), file("kept", "kept")), bigLayer,
		layerOf(t, whiteout("hidden")))

	spoolDir := t.TempDir()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	im, err := NewImage(img, "big", WithSpoolDir(spoolDir))
	if err != nil {
		t.Fatal(err)
	}
	defer im.Close()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 8<<20 {
		t.Errorf("the heap grew by %d bytes reading a %d-byte layer", grown, big)
	}
	if ents, err := os.ReadDir(spoolDir); err != nil || len(ents) != 0 {
		t.Errorf("the spool directory holds %v (%v): want the spool file unlinked", ents, err)
	}
	st, err := im.spool.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(big + len("kept")); st.Size() != want {
		t.Errorf("the spool holds %d bytes, want %d (the kept files only)", st.Size(), want)
	}
	f, err := im.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 2)
	if _, err := f.(io.ReaderAt).ReadAt(buf, big-4097); err != nil || buf[0] != byte((big/4096-2)%256) || buf[1] != byte((big/4096-1)%256) {
		t.Errorf("ReadAt near the end: %v, %v", buf, err)
	}
	if n, err := f.(io.Seeker).Seek(0, io.SeekEnd); err != nil || n != big {
		t.Errorf("Seek(0, End) = %d, %v", n, err)
	}
}

func TestImageClose(t *testing.T) {
	im, err := NewImage(imageOf(t, layerOf(t, file("a", "a"))), "x", WithSpoolDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	f, err := im.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := im.Open("a"); !errors.Is(err, fs.ErrClosed) {
		t.Errorf("Open after Close: %v, want fs.ErrClosed", err)
	}
	if _, err := io.ReadAll(f); err == nil {
		t.Error("reading a file after Close: no error")
	}
	if err := im.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// imageOfDir makes a one-layer image of a directory tree, as docker build would.
func imageOfDir(t *testing.T, root string) v1.Image {
	t.Helper()
	var ents []tent
	err := filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		h, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		h.Name = filepath.ToSlash(rel)
		e := tent{hdr: *h}
		if fi.Mode().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.body = string(data)
		}
		ents = append(ents, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return imageOf(t, layerOf(t, ents...))
}

// sysrootLayers are a glibc-like root in two layers: ld.so and libfoo below (in usr/lib64, lib64 a link to
// it), programs above.
func sysrootLayers(t *testing.T) (lower, upper v1.Layer) {
	const interp = "/lib64/ld-linux-x86-64.so.2"
	ldso := synthELF("", nil, "ld-linux-x86-64.so.2", "\x00/lib64/\x00/usr/lib64/\x00")
	lower = layerOf(t, dir("usr/"), dir("usr/lib64/"), symlink("lib64", "usr/lib64"),
		exe("usr/lib64/ld-linux-x86-64.so.2", string(ldso)),
		exe("usr/lib64/libfoo.so.1.2", string(synthELF("", nil, "libfoo.so.1", ""))),
		symlink("usr/lib64/libfoo.so.1", "libfoo.so.1.2"))
	var progs []tent
	for _, p := range []string{"a", "b", "c", "d"} {
		progs = append(progs, exe("usr/bin/"+p, string(synthELF(interp, []string{"libfoo.so.1"}, "", p))))
	}
	return lower, layerOf(t, progs...)
}

// TestImageElfdeps resolves programs inside an image: a library from a lower layer is found through a
// link of that layer; once an upper layer whites it out, it is not.
func TestImageElfdeps(t *testing.T) {
	lower, upper := sysrootLayers(t)
	inputs := []string{"/usr/bin/a", "/usr/bin/b", "/usr/bin/c", "/usr/bin/d"}

	r, err := elfdeps.New(newTestImage(t, imageOf(t, lower, upper)))
	if err != nil {
		t.Fatal(err)
	}
	results, errs := r.ResolveAll(inputs) // in parallel: the image is shared by every goroutine
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("%s: %v", inputs[i], errs[i])
		}
		if err := res.Err(); err != nil {
			t.Errorf("%s: %v", inputs[i], err)
		}
		if diff := cmp.Diff([]string{"/lib64/ld-linux-x86-64.so.2", "/lib64/libfoo.so.1"}, res.Paths()); diff != "" {
			t.Errorf("%s: Paths (-want +got):\n%s", inputs[i], diff)
		}
		for _, o := range res.Objects {
			if o.Path == "/lib64/libfoo.so.1" && o.RealPath != "/usr/lib64/libfoo.so.1.2" {
				t.Errorf("%s: libfoo's real path %s", inputs[i], o.RealPath)
			}
		}
	}

	removed := layerOf(t, whiteout("usr/lib64/libfoo.so.1.2"))
	r, err = elfdeps.New(newTestImage(t, imageOf(t, lower, upper, removed)))
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Resolve("/usr/bin/a")
	if err != nil {
		t.Fatal(err)
	}
	var nf *elfdeps.NotFoundError
	if !errors.As(res.Err(), &nf) || nf.Name != "libfoo.so.1" {
		t.Errorf("with libfoo whited out: %v, want an *elfdeps.NotFoundError for libfoo.so.1", res.Err())
	}
}

// TestImageConcurrent reads one image from many goroutines (run with -race).
func TestImageConcurrent(t *testing.T) {
	lower, upper := sysrootLayers(t)
	im := newTestImage(t, imageOf(t, lower, upper))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range []string{"usr/bin/a", "usr/lib64/libfoo.so.1.2"} {
				if _, err := fs.ReadFile(im, p); err != nil {
					t.Error(err)
				}
			}
			if _, err := im.ReadDir("usr/lib64"); err != nil {
				t.Error(err)
			}
			if _, err := im.Open("lib64/libfoo.so.1"); !errors.Is(err, syscall.ELOOP) {
				t.Errorf("Open through a link: %v, want ELOOP", err)
			}
		}()
	}
	wg.Wait()
}

// TestImageLimits: a small layer that expands to a huge file (a decompression bomb), or to more paths than
// the index may hold, is refused with an error naming the layer and the entry, before it fills the spool
// or memory (issue 9 #19).
func TestImageLimits(t *testing.T) {
	bomb, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			const size = 1 << 30 // 1 GiB of zeros: a MiB compressed
			if err := tw.WriteHeader(&tar.Header{Name: "zeros", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}); err != nil {
				pw.CloseWithError(err)
				return
			}
			zero := make([]byte, 1<<20)
			for n := int64(0); n < size; n += int64(len(zero)) {
				if _, err := tw.Write(zero); err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.CloseWithError(tw.Close())
		}()
		return pr, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var many []tent
	for i := range 50 {
		many = append(many, file(fmt.Sprintf("f%02d", i), "x"))
	}
	for _, tc := range []struct {
		name string
		img  v1.Image
		opts []ImageOption
		want string
	}{
		{"a decompression bomb", imageOf(t, bomb), []ImageOption{WithLimits(0, 64<<20)}, "spooling zeros (1073741824 bytes): too large"},
		{"too many paths", imageOf(t, layerOf(t, many...)), []ImageOption{WithLimits(20, 0)}, "too large: more than 20 paths"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			im, err := NewImage(tc.img, "test-image", append(tc.opts, WithSpoolDir(t.TempDir()))...)
			if err == nil {
				im.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "layer sha256:") {
				t.Errorf("NewImage: %v, want ErrTooLarge naming the layer and %q", err, tc.want)
			}
		})
	}
}
