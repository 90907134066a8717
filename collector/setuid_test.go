package collector

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSetuidStripped: a user's setuid/setgid file loses those bits in the image (and says so in --explain)
// unless they are kept on purpose; /tmp keeps its 1777; written as root, the directory output has no setuid
// file.
func TestSetuidStripped(t *testing.T) {
	dir := t.TempDir()
	suid := filepath.Join(dir, "tool")
	if err := os.WriteFile(suid, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, 0o755|fs.ModeSetuid|fs.ModeSetgid); err != nil {
		t.Fatal(err)
	}
	for _, keep := range []bool{false, true} {
		p, err := NewPlanner(hostRoot(t), WithKeepSetuid(keep))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.AddHostPath(dir, "/opt", Origin{Kind: OriginAdded, Reason: "--add"}); err != nil {
			t.Fatal(err)
		}
		if _, err := p.ApplyRules(RuleOptions{Base: BaseFiles{Certs: "never"}}); err != nil {
			t.Fatal(err)
		}
		e := p.Tree().Get("/opt/tool")
		wantMode, wantStripped := fs.FileMode(0o755), fs.ModeSetuid|fs.ModeSetgid
		if keep {
			wantMode, wantStripped = 0o755|fs.ModeSetuid|fs.ModeSetgid, 0
		}
		if e.Mode != wantMode || e.Stripped != wantStripped {
			t.Errorf("keep %v: mode %v stripped %v, want %v and %v", keep, e.Mode, e.Stripped, wantMode, wantStripped)
		}
		if m := p.Tree().Get("/tmp").Mode; m != 0o777|fs.ModeSticky {
			t.Errorf("/tmp is %v, want 1777", m)
		}
		var buf bytes.Buffer
		if err := p.Tree().Explain(&buf); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(buf.String(), "setuid+setgid removed"); got == keep {
			t.Errorf("keep %v: --explain says the bits were removed: %v\n%s", keep, got, buf.String())
		}
		if keep || os.Geteuid() != 0 {
			continue
		}
		out := filepath.Join(t.TempDir(), "root")
		if err := WriteDir(context.Background(), p.Tree(), out, time.Unix(0, 0), false); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(filepath.Join(out, "opt/tool")); err != nil || st.Mode()&(fs.ModeSetuid|fs.ModeSetgid) != 0 {
			t.Errorf("the written file: %v, %v; want no setuid or setgid", st.Mode(), err)
		}
	}
}
