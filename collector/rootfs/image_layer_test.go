package rootfs

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

func TestImageLayers(t *testing.T) {
	tests := []struct {
		name    string
		layers  [][]tent // bottom first
		want    []row
		wantErr string
	}{
		{
			name: "one layer",
			layers: [][]tent{{
				dir("bin/"), exe("bin/sh", "shell"),
				with(exe("bin/su", "su"), func(h *tar.Header) { h.Mode = 0o4755 }),
				with(dir("home/"), func(h *tar.Header) { h.Uid, h.Gid, h.Mode = 1000, 100, 0o1777 }),
				symlink("bin/bash", "sh"), symlink("abs", "/etc/../bin/sh"),
				{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
				{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "fifo", Mode: 0o600}},
			}},
			want: []row{rootRow,
				{Path: "abs", Mode: "Lrwxrwxrwx", Target: "/etc/../bin/sh"},
				{Path: "bin", Mode: "drwxr-xr-x"},
				{Path: "bin/bash", Mode: "Lrwxrwxrwx", Target: "sh"},
				{Path: "bin/sh", Mode: "-rwxr-xr-x", Content: "shell"},
				{Path: "bin/su", Mode: "urwxr-xr-x", Content: "su"},
				{Path: "fifo", Mode: "prw-------"},
				{Path: "home", Mode: "dtrwxrwxrwx", UID: 1000, GID: 100},
				{Path: "null", Mode: "Dcrw-rw-rw-"},
			},
		},
		{
			name:   "an upper file replaces a lower one",
			layers: [][]tent{{file("a", "lower"), file("b", "b")}, {file("a", "upper")}},
			want:   []row{rootRow, {Path: "a", Mode: "-rw-r--r--", Content: "upper"}, {Path: "b", Mode: "-rw-r--r--", Content: "b"}},
		},
		{
			name:   "a whiteout hides a file",
			layers: [][]tent{{file("a", "a"), file("b", "b")}, {whiteout("a")}},
			want:   []row{rootRow, {Path: "b", Mode: "-rw-r--r--", Content: "b"}},
		},
		{
			name:   "a whiteout hides a directory and all under it",
			layers: [][]tent{{dir("d/"), file("d/x", "x"), dir("d/e/"), file("d/e/y", "y"), file("keep", "k")}, {whiteout("d")}},
			want:   []row{rootRow, {Path: "keep", Mode: "-rw-r--r--", Content: "k"}},
		},
		{
			name: "a whiteout hides lower layers only",
			layers: [][]tent{
				{dir("d/"), file("d/old", "old")},
				{whiteout("d"), with(dir("d/"), func(h *tar.Header) { h.Mode = 0o700 }), file("d/new", "new")},
			},
			want: []row{rootRow, {Path: "d", Mode: "drwx------"}, {Path: "d/new", Mode: "-rw-r--r--", Content: "new"}},
		},
		{
			name: "an opaque directory hides lower content, not its own",
			layers: [][]tent{
				{dir("d/"), file("d/x", "x"), dir("d/sub/"), file("d/sub/y", "y"), file("top", "t")},
				{with(dir("d/"), func(h *tar.Header) { h.Uid = 7 }), opaque("d"), file("d/z", "z")},
			},
			want: []row{rootRow,
				{Path: "d", Mode: "drwxr-xr-x", UID: 7},
				{Path: "d/z", Mode: "-rw-r--r--", Content: "z"},
				{Path: "top", Mode: "-rw-r--r--", Content: "t"},
			},
		},
		{
			name: "an opaque marker alone keeps the lower directory",
			layers: [][]tent{
				{with(dir("d/"), func(h *tar.Header) { h.Mode = 0o750 }), file("d/x", "x")},
				{opaque("d")},
			},
			want: []row{rootRow, {Path: "d", Mode: "drwxr-x---"}},
		},
		{
			name: "an opaque root",
			layers: [][]tent{
				{file("a", "a"), dir("d/"), file("d/x", "x")},
				{file(opaqueWhiteout, ""), file("b", "b")},
			},
			want: []row{rootRow, {Path: "b", Mode: "-rw-r--r--", Content: "b"}},
		},
		{
			name:   "an upper file hides a lower directory",
			layers: [][]tent{{dir("d/"), file("d/x", "x")}, {file("d", "file")}},
			want:   []row{rootRow, {Path: "d", Mode: "-rw-r--r--", Content: "file"}},
		},
		{
			name:   "an upper symbolic link hides a lower directory",
			layers: [][]tent{{dir("lib/"), file("lib/x", "x"), dir("usr/lib/")}, {symlink("lib", "usr/lib")}},
			want: []row{rootRow, {Path: "lib", Mode: "Lrwxrwxrwx", Target: "usr/lib"},
				{Path: "usr", Mode: "drwxr-xr-x"}, {Path: "usr/lib", Mode: "drwxr-xr-x"}},
		},
		{
			name:   "an upper directory over a lower file",
			layers: [][]tent{{file("d", "file")}, {dir("d/"), file("d/x", "x")}},
			want:   []row{rootRow, {Path: "d", Mode: "drwxr-xr-x"}, {Path: "d/x", Mode: "-rw-r--r--", Content: "x"}},
		},
		{
			name:   "an implied directory hides a lower file",
			layers: [][]tent{{file("d", "file")}, {file("d/x", "x")}},
			want:   []row{rootRow, {Path: "d", Mode: "drwxr-xr-x"}, {Path: "d/x", Mode: "-rw-r--r--", Content: "x"}},
		},
		{
			name:   "implicit parent directories",
			layers: [][]tent{{exe("usr/bin/x", "x")}},
			want: []row{rootRow, {Path: "usr", Mode: "drwxr-xr-x"}, {Path: "usr/bin", Mode: "drwxr-xr-x"},
				{Path: "usr/bin/x", Mode: "-rwxr-xr-x", Content: "x"}},
		},
		{
			name: "an implied directory takes a lower layer's",
			layers: [][]tent{
				{with(dir("usr/"), func(h *tar.Header) { h.Mode, h.Uid, h.Gid = 0o700, 5, 6 })},
				{exe("usr/bin/x", "x")},
			},
			want: []row{rootRow, {Path: "usr", Mode: "drwx------", UID: 5, GID: 6}, {Path: "usr/bin", Mode: "drwxr-xr-x"},
				{Path: "usr/bin/x", Mode: "-rwxr-xr-x", Content: "x"}},
		},
		{
			name: "names with ./ and /",
			layers: [][]tent{{
				with(dir("./"), func(h *tar.Header) { h.Mode = 0o700 }),
				dir("./etc/"), file("/etc/passwd", "root"), file("//etc//group", "g"), file("./etc/./hosts", "h"),
			}},
			want: []row{{Path: ".", Mode: "drwx------"}, {Path: "etc", Mode: "drwxr-xr-x"},
				{Path: "etc/group", Mode: "-rw-r--r--", Content: "g"},
				{Path: "etc/hosts", Mode: "-rw-r--r--", Content: "h"},
				{Path: "etc/passwd", Mode: "-rw-r--r--", Content: "root"}},
		},
		{
			name:   "the uppermost root entry wins",
			layers: [][]tent{{with(dir("./"), func(h *tar.Header) { h.Mode = 0o700 })}, {with(dir("/"), func(h *tar.Header) { h.Mode = 0o750 })}},
			want:   []row{{Path: ".", Mode: "drwxr-x---"}},
		},
		{
			name: "hard links",
			layers: [][]tent{{
				exe("bin/a", "content"), hardlink("bin/b", "bin/a"), hardlink("./bin/c", "./bin/b"),
				symlink("s", "bin/a"), hardlink("t", "s"),
			}},
			want: []row{rootRow, {Path: "bin", Mode: "drwxr-xr-x"},
				{Path: "bin/a", Mode: "-rwxr-xr-x", Content: "content"},
				{Path: "bin/b", Mode: "-rw-r--r--", Content: "content"},
				{Path: "bin/c", Mode: "-rw-r--r--", Content: "content"},
				{Path: "s", Mode: "Lrwxrwxrwx", Target: "bin/a"},
				{Path: "t", Mode: "Lrw-r--r--", Target: "bin/a"}},
		},
		{
			name:   "a hard link to a file an upper layer removed",
			layers: [][]tent{{file("a", "old"), file("pad", "pad"), hardlink("b", "a")}, {whiteout("a")}},
			want:   []row{rootRow, {Path: "b", Mode: "-rw-r--r--", Content: "old"}, {Path: "pad", Mode: "-rw-r--r--", Content: "pad"}},
		},
		{
			name:   "a hard link to a file an upper layer replaced",
			layers: [][]tent{{file("a", "old"), hardlink("b", "a")}, {file("a", "new")}},
			want:   []row{rootRow, {Path: "a", Mode: "-rw-r--r--", Content: "new"}, {Path: "b", Mode: "-rw-r--r--", Content: "old"}},
		},
		{
			name: "aufs metadata, and hard links to its link directory",
			layers: [][]tent{{
				file(".wh..wh.aufs", ""), dir(".wh..wh.plnk/"), file(".wh..wh.plnk/1.2", "shared"),
				hardlink("bin/a", ".wh..wh.plnk/1.2"), hardlink("bin/b", ".wh..wh.plnk/1.2"),
			}},
			want: []row{rootRow, {Path: "bin", Mode: "drwxr-xr-x"},
				{Path: "bin/a", Mode: "-rw-r--r--", Content: "shared"},
				{Path: "bin/b", Mode: "-rw-r--r--", Content: "shared"}},
		},
		{
			name:   "in one layer the last entry wins",
			layers: [][]tent{{file("a", "first"), file("a", "second"), file("b", "b"), dir("b/")}},
			want:   []row{rootRow, {Path: "a", Mode: "-rw-r--r--", Content: "second"}, {Path: "b", Mode: "drwxr-xr-x"}},
		},
		{
			name:   "entries under a non-directory of the same layer are dropped",
			layers: [][]tent{{file("d/x", "x"), file("d", "d")}},
			want:   []row{rootRow, {Path: "d", Mode: "-rw-r--r--", Content: "d"}},
		},
		{
			name: "xattrs",
			layers: [][]tent{{with(exe("bin/ping", "p"), func(h *tar.Header) {
				h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "\x01\x00\x00\x02", "comment": "x"}
			})}},
			want: []row{rootRow, {Path: "bin", Mode: "drwxr-xr-x"},
				{Path: "bin/ping", Mode: "-rwxr-xr-x", Content: "p", Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02"}}},
		},
		{name: "a name out of the root", layers: [][]tent{{file("../etc/passwd", "x")}}, wantErr: `entry "../etc/passwd": the name leaves the root`},
		{name: "a name climbing out", layers: [][]tent{{file("a/../../x", "x")}}, wantErr: "leaves the root"},
		{name: "a missing hard link target", layers: [][]tent{{file("a", "a"), hardlink("b", "c")}}, wantErr: "hard link b: its target c is not a file of the layer"},
		{name: "a hard link to a directory", layers: [][]tent{{dir("d/"), hardlink("b", "d")}}, wantErr: "hard link b: its target d"},
		{name: "a root that is a file", layers: [][]tent{{file(".", "x")}}, wantErr: "the root is not a directory"},
		{name: "an empty whiteout", layers: [][]tent{{file("d/.wh.", "")}}, wantErr: "a whiteout that names nothing"},
		{name: "an unknown entry type", layers: [][]tent{{{hdr: tar.Header{Typeflag: 'Z', Name: "z"}}}}, wantErr: "entry z: unsupported type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var layers []v1.Layer
			for _, ents := range tc.layers {
				layers = append(layers, layerOf(t, ents...))
			}
			im, err := NewImage(imageOf(t, layers...), "test-image", WithSpoolDir(t.TempDir()))
			if tc.wantErr != "" {
				// Every error names the image and the layer.
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "reading test-image: layer sha256:") {
					t.Fatalf("NewImage: %v, want an error naming the image and the layer, containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer im.Close()
			if diff := cmp.Diff(tc.want, listing(t, im)); diff != "" {
				t.Errorf("listing (-want +got):\n%s", diff)
			}
		})
	}
}

// TestImageTruncatedLayer feeds layers cut short or garbled: errors, naming the layer and the entry.
func TestImageTruncatedLayer(t *testing.T) {
	whole := tarBytes(t, []tent{file("usr/bin/a", "aaaa"), file("usr/bin/x", strings.Repeat("x", 4096))})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"cut in a file", whole[:512*3+100], "reading usr/bin/x: unexpected EOF"},
		{"cut in a header", whole[:512*2+100], "reading the entry after usr/bin/a: unexpected EOF"},
		{"garbage", []byte(strings.Repeat("garbage!", 128)), "reading the first entry"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := rawLayer(t, tc.data)
			_, err := NewImage(imageOf(t, l), "test-image", WithSpoolDir(t.TempDir()))
			want := "reading test-image: layer " + digestOf(t, l) + ": " + tc.want
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("NewImage: %v, want %q", err, want)
			}
		})
	}
}

// FuzzNewImage reads arbitrary bytes as a layer: NewImage must fail or give a root that can be walked and
// read whole, never panic.
func FuzzNewImage(f *testing.F) {
	f.Add(tarBytes(f, []tent{dir("bin/"), exe("bin/sh", "sh"), symlink("bin/bash", "sh"), hardlink("bin/ash", "bin/sh")}))
	f.Add(tarBytes(f, []tent{whiteout("a"), opaque("d"), file("d/x", "x"), file(".", "")}))
	f.Add(tarBytes(f, []tent{with(exe("bin/ping", "p"), func(h *tar.Header) {
		h.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": "x"}
	})}))
	f.Add([]byte("not a tar"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Two layers with the same content: the upper one's whiteouts and hard links meet the lower one's.
		l := plainLayer(data)
		im, err := NewImage(imageOf(t, l, l), "fuzz", WithSpoolDir(t.TempDir()))
		if err != nil {
			return
		}
		defer im.Close()
		err = fs.WalkDir(im, ".", func(p string, de fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if _, err := im.Lstat(p); err != nil {
				return err
			}
			if de.Type().IsRegular() {
				_, err = fs.ReadFile(im, p)
			}
			return err
		})
		if err != nil {
			t.Errorf("walking a root NewImage accepted: %v", err)
		}
	})
}

// plainLayer is an uncompressed layer over data, cheap to build (no gzip) for the fuzzer.
type plainLayer []byte

func (l plainLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(l))
	return h, err
}
func (l plainLayer) DiffID() (v1.Hash, error)           { return l.Digest() }
func (l plainLayer) Compressed() (io.ReadCloser, error) { return l.Uncompressed() }
func (l plainLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l)), nil
}
func (l plainLayer) Size() (int64, error)                { return int64(len(l)), nil }
func (l plainLayer) MediaType() (types.MediaType, error) { return types.OCIUncompressedLayer, nil }
