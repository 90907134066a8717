package elfdeps

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
)

func TestHostDir(t *testing.T) {
	dir := t.TempDir()
	data := []byte("\x7fELF and then some bytes")
	if err := os.MkdirAll(filepath.Join(dir, "lib/sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "lib/libx.so.1"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "lib/libx.so.1"), 0o755|fs.ModeSetuid); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("libx.so.1", filepath.Join(dir, "lib/libx.so")); err != nil {
		t.Fatal(err)
	}
	fsys := hostDir(dir)
	if err := fstest.TestFS(fsys, "lib/libx.so.1", "lib/sub", "lib/libx.so"); err != nil {
		t.Error(err)
	}
	f, err := fsys.Open("lib/libx.so.1")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.Size() != int64(len(data)) || st.Mode() != fs.ModeSetuid|0o755 {
		t.Errorf("Stat = %v, %v", fs.FormatFileInfo(st), err)
	}
	ra := f.(io.ReaderAt)
	buf := make([]byte, 4)
	if n, err := ra.ReadAt(buf, 5); n != 4 || err != nil || string(buf) != "and " {
		t.Errorf("ReadAt(5) = %d, %v, %q", n, err, buf)
	}
	if n, err := ra.ReadAt(buf, int64(len(data))-2); n != 2 || err != io.EOF {
		t.Errorf("ReadAt at the end = %d, %v; want 2, EOF", n, err)
	}
	if _, err := fsys.Open("../escape"); err == nil {
		t.Error("an invalid name was opened")
	}
	if l, err := fsys.ReadLink("lib/libx.so"); err != nil || l != "libx.so.1" {
		t.Errorf("ReadLink = %q, %v", l, err)
	}
}
