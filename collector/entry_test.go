package collector

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestEntryModel: an entry keeps where it goes apart from where its bytes come from, with owners and
// structured origins; adding a path again merges origins and refuses different content or owners.
func TestEntryModel(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "prog")
	if err := os.WriteFile(src, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	prog := hostSource(t, src)
	input := Origin{Kind: OriginInput, RootPath: src, Reason: "input"}
	needed := Origin{Kind: OriginNeeded, RootPath: "/lib/libc.so.6", By: "/opt/prog", Reason: "libc.so.6 needed by /opt/prog"}
	for _, tc := range []struct {
		name    string
		adds    []Entry
		wantErr string
		check   func(t *testing.T, tr *Tree)
	}{
		{
			name: "image path apart from source",
			adds: []Entry{{Path: "/opt/prog", Kind: KindFile, Mode: 0o755, Source: prog, Origins: []Origin{input}}},
			check: func(t *testing.T, tr *Tree) {
				e := tr.Get("/opt/prog")
				if e.Size != int64(len("#!/bin/sh\n")) || e.Source.String() != src {
					t.Errorf("entry %+v: want the size and source of %s", e, src)
				}
				rc, err := e.Open()
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				if b, _ := io.ReadAll(rc); string(b) != "#!/bin/sh\n" {
					t.Errorf("content %q", b)
				}
			},
		},
		{
			name: "origins merge once each, in order",
			adds: []Entry{
				{Path: "/opt/prog", Kind: KindFile, Mode: 0o755, Source: prog, Origins: []Origin{input}},
				{Path: "/opt/prog", Kind: KindFile, Mode: 0o755, Source: hostSource(t, src), Origins: []Origin{needed, input}},
			},
			check: func(t *testing.T, tr *Tree) {
				if diff := cmp.Diff([]Origin{input, needed}, tr.Get("/opt/prog").Origins); diff != "" {
					t.Errorf("origins (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff([]string{"input", "libc.so.6 needed by /opt/prog"}, tr.Get("/opt/prog").Why()); diff != "" {
					t.Errorf("Why (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "owners kept",
			adds: []Entry{{Path: "/var/lib/pg/data", Kind: KindDir, Mode: 0o700, UID: 105, GID: 107}, {Path: "/var/lib/pg/data/f", Kind: KindFile, Mode: 0o600, UID: 105, GID: 107, Data: []byte("x")}},
			check: func(t *testing.T, tr *Tree) {
				for _, p := range []string{"/var/lib/pg/data", "/var/lib/pg/data/f"} {
					if e := tr.Get(p); e.UID != 105 || e.GID != 107 {
						t.Errorf("%s: owners %d:%d, want 105:107", p, e.UID, e.GID)
					}
				}
				if e := tr.Get("/var/lib/pg"); e.UID != 0 || e.Mode != 0o755 {
					t.Errorf("an implied parent: %+v, want 0755 root's", e)
				}
			},
		},
		{
			name: "an explicit directory wins over an implied parent",
			adds: []Entry{{Path: "/home/app/x", Kind: KindFile, Data: []byte("x")}, {Path: "/home/app", Kind: KindDir, Mode: 0o750, UID: 1000, GID: 1000}},
			check: func(t *testing.T, tr *Tree) {
				if e := tr.Get("/home/app"); e.UID != 1000 || e.Mode != 0o750 {
					t.Errorf("/home/app: %+v, want 0750 owned by 1000", e)
				}
			},
		},
		{
			name:    "other owners conflict",
			adds:    []Entry{{Path: "/f", Kind: KindFile, Data: []byte("x"), UID: 1}, {Path: "/f", Kind: KindFile, Data: []byte("x"), UID: 2}},
			wantErr: "added as",
		},
		{
			name:    "another source conflicts",
			adds:    []Entry{{Path: "/f", Kind: KindFile, Source: prog}, {Path: "/f", Kind: KindFile, Data: []byte("#!/bin/sh\n")}},
			wantErr: "a copy of " + src,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTree()
			var err error
			for _, e := range tc.adds {
				if err = tr.Add(e); err != nil {
					break
				}
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("Add: %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, tr)
		})
	}
}
