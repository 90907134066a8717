package collector

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/u-root/u-root/pkg/cpio"
)

// cpioRecord is what a newc record holds, as u-root's reader gives it.
type cpioRecord struct {
	Name     string
	Mode     uint64 // type and permission bits, as in st_mode
	UID, GID uint64
	NLink    uint64
	MTime    uint64
	Content  string // file content or symlink target
}

// wantCPIO is testTree's newc form, in order.
func wantCPIO(mtime uint64) []cpioRecord {
	return []cpioRecord{
		{Name: "bin", Mode: 0o040755, NLink: 2, MTime: mtime},
		{Name: "bin/hello", Mode: 0o100755, NLink: 1, MTime: mtime, Content: "#!/hello\n"},
		{Name: "bin/sh", Mode: 0o120777, NLink: 1, MTime: mtime, Content: "hello"},
		{Name: "bin/su", Mode: 0o104755, NLink: 1, MTime: mtime, Content: "su"},
		{Name: "etc", Mode: 0o040755, NLink: 2, MTime: mtime},
		{Name: "etc/hostname", Mode: 0o100644, NLink: 1, MTime: mtime, Content: hostContent},
		{Name: "tmp", Mode: 0o041777, NLink: 2, MTime: mtime},
		{Name: "usr", Mode: 0o040755, NLink: 2, MTime: mtime},
		{Name: "usr/lib", Mode: 0o040755, NLink: 2, MTime: mtime},
		{Name: "usr/lib/libempty.so", Mode: 0o100644, NLink: 1, MTime: mtime},
	}
}

func mustCPIO(t *testing.T, tr *Tree, mtime time.Time) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := WriteCPIO(context.Background(), tr, &buf, mtime); err != nil {
		t.Fatalf("WriteCPIO: %v", err)
	}
	return buf.Bytes()
}

func TestWriteCPIO(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	archive := mustCPIO(t, testTree(t, t.TempDir()), mtime)

	recs, err := cpio.ReadAllRecords(cpio.Newc.Reader(bytes.NewReader(archive)))
	if err != nil {
		t.Fatalf("reading the archive with u-root's cpio: %v", err)
	}
	var got []cpioRecord
	inos := map[uint64]string{}
	for _, r := range recs {
		b, err := io.ReadAll(io.NewSectionReader(r.ReaderAt, 0, int64(r.FileSize)))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, cpioRecord{Name: r.Name, Mode: r.Mode, UID: r.UID, GID: r.GID, NLink: r.NLink, MTime: r.MTime, Content: string(b)})
		if other, ok := inos[r.Ino]; ok || r.Ino == 0 {
			t.Errorf("%s: inode %d (also %q): want unique non-zero inodes", r.Name, r.Ino, other)
		}
		inos[r.Ino] = r.Name
	}
	if diff := cmp.Diff(wantCPIO(uint64(mtime.Unix())), got); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}

	// The archive ends with the trailer record (the reader above stops at it without saying).
	trailer := []byte(cpio.Trailer + "\x00")
	if i := bytes.LastIndex(archive, trailer); i < 0 || len(archive)-i-len(trailer) > 3 {
		t.Errorf("the archive does not end with a %s record", cpio.Trailer)
	}
}

func TestWriteCPIOReproducible(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	a := mustCPIO(t, testTree(t, t.TempDir()), mtime)
	for _, tc := range []struct {
		name  string
		mtime time.Time
		same  bool
	}{
		{"same tree, another host directory", mtime, true},
		{"same instant in another zone", mtime.In(time.FixedZone("X", -5*3600)), true},
		{"another mtime", mtime.Add(time.Second), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := mustCPIO(t, testTree(t, t.TempDir()), tc.mtime)
			if bytes.Equal(a, b) != tc.same {
				t.Errorf("archives equal = %v, want %v", bytes.Equal(a, b), tc.same)
			}
		})
	}
}

func TestWriteCPIOErrors(t *testing.T) {
	changed := filepath.Join(t.TempDir(), "changed")
	if err := os.WriteFile(changed, []byte("longer than planned"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		entry *Entry
		mtime time.Time
		want  string
	}{
		{"mtime before 1970", nil, time.Unix(-1, 0), "32-bit mtime"},
		{"mtime after 2106", nil, time.Unix(1<<32, 0), "32-bit mtime"},
		{"missing host file", &Entry{Path: "/f", Kind: KindFile, Mode: 0o644, Source: goneSource(t, t.TempDir(), "gone")}, time.Unix(0, 0), "gone"},
		{"host file changed", &Entry{Path: "/f", Kind: KindFile, Mode: 0o644, Source: changedSource(t, changed, "abc", "longer than planned")}, time.Unix(0, 0), "no longer the file that was planned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTree()
			if tc.entry != nil {
				if err := tr.Add(*tc.entry); err != nil {
					t.Fatal(err)
				}
			}
			err := WriteCPIO(context.Background(), tr, io.Discard, tc.mtime)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("WriteCPIO: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestWriteCPIOGNU lists and extracts the archive with GNU cpio and compares what it made with the tree.
func TestWriteCPIOGNU(t *testing.T) {
	gnu, err := exec.LookPath("cpio")
	if err != nil {
		t.Skip("cpio is not installed")
	}
	mtime := time.Unix(1700000000, 0)
	archive := filepath.Join(t.TempDir(), "initramfs.cpio")
	if err := os.WriteFile(archive, mustCPIO(t, testTree(t, t.TempDir()), mtime), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(dir string, args ...string) string {
		t.Helper()
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command(gnu, args...)
		cmd.Dir, cmd.Stdin = dir, f
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("cpio %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}

	var wantNames []string
	for _, r := range wantCPIO(0) {
		wantNames = append(wantNames, r.Name)
	}
	if diff := cmp.Diff(wantNames, strings.Fields(run(t.TempDir(), "-it"))); diff != "" {
		t.Errorf("cpio -it (-want +got):\n%s", diff)
	}

	dir := t.TempDir()
	run(dir, "-idm", "--no-absolute-filenames", "--quiet")
	type file struct {
		Mode    fs.FileMode
		Content string
		MTime   time.Time
	}
	got := map[string]file{}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		f := file{Mode: st.Mode()}
		switch {
		case st.Mode()&fs.ModeSymlink != 0:
			f.Content, err = os.Readlink(p)
		case st.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(p)
			f.Content, f.MTime = string(b), st.ModTime().UTC()
		}
		got[rel] = f
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	at := mtime.UTC()
	want := map[string]file{
		"bin":                 {Mode: fs.ModeDir | 0o755},
		"bin/hello":           {Mode: 0o755, Content: "#!/hello\n", MTime: at},
		"bin/sh":              {Mode: fs.ModeSymlink | 0o777, Content: "hello"},
		"bin/su":              {Mode: fs.ModeSetuid | 0o755, Content: "su", MTime: at},
		"etc":                 {Mode: fs.ModeDir | 0o755},
		"etc/hostname":        {Mode: 0o644, Content: hostContent, MTime: at},
		"tmp":                 {Mode: fs.ModeDir | fs.ModeSticky | 0o777},
		"usr":                 {Mode: fs.ModeDir | 0o755},
		"usr/lib":             {Mode: fs.ModeDir | 0o755},
		"usr/lib/libempty.so": {Mode: 0o644, MTime: at},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("tree extracted by cpio -idm (-want +got):\n%s", diff)
	}
}

func TestWriteCPIOFile(t *testing.T) {
	mtime := time.Unix(1700000000, 0)
	tr := testTree(t, t.TempDir())
	parent := t.TempDir()
	dest := filepath.Join(parent, "initramfs.cpio")
	if err := WriteCPIOFile(context.Background(), tr, dest, mtime, false); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dest)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, mustCPIO(t, tr, mtime)) {
		t.Error("the file differs from WriteCPIO's stream")
	}
	if err := WriteCPIOFile(context.Background(), tr, dest, mtime, false); !errors.Is(err, ErrExists) {
		t.Errorf("writing over it without force: %v, want ErrExists", err)
	}
	if err := WriteCPIOFile(context.Background(), tr, dest, mtime.Add(time.Second), true); err != nil {
		t.Errorf("writing over it with force: %v", err)
	}
	// A failure (a host file gone) leaves the old archive and nothing else.
	if err := tr.Add(Entry{Path: "/gone", Kind: KindFile, Mode: 0o644, Source: goneSource(t, parent, "gone")}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(dest)
	if err := WriteCPIOFile(context.Background(), tr, dest, mtime, true); err == nil {
		t.Error("writing a tree with a missing host file: no error")
	}
	if after, _ := os.ReadFile(dest); !bytes.Equal(before, after) {
		t.Error("a failed write changed the old archive")
	}
	checkNoLeftovers(t, parent, "initramfs.cpio")
}
