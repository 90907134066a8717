package dpkg

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// hostDB reads this machine's database, resolving directories as the kernel does.
func hostDB(t *testing.T) *DB {
	t.Helper()
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		t.Skip("not a dpkg system")
	}
	db, err := Read(os.DirFS("/"), WithResolver(filepath.EvalSymlinks))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestOwnersMatchDpkgQuery asks dpkg-query -S, the real tool, about paths of several kinds.
func TestOwnersMatchDpkgQuery(t *testing.T) {
	db := hostDB(t)
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("no dpkg-query")
	}
	for _, p := range []string{"/usr/bin/git", "/bin/sh", "/usr/bin/dpkg", "/etc/services", "/usr/share/misc/magic.mgc"} {
		out, err := exec.Command("dpkg-query", "-S", p).Output()
		if err != nil {
			continue // not installed here
		}
		// The last line names the owner ("diversion by ..." lines come first).
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		want, _, _ := strings.Cut(lines[len(lines)-1], ": ")
		want = strings.Split(want, ",")[0]
		o := db.Owner(p)
		if o == nil {
			t.Errorf("%s: no owner, dpkg-query says %s", p, want)
			continue
		}
		if o.Name != want && o.ID() != want {
			t.Errorf("%s: owner %s, dpkg-query says %s", p, o.ID(), want)
		}
	}
	// Merged /usr: dpkg registered /lib/x86_64-linux-gnu/libc.so.6; the file is reached as /usr/lib/...
	if real, err := filepath.EvalSymlinks("/lib/x86_64-linux-gnu/libc.so.6"); err == nil {
		if o := db.Owner(real); o == nil || o.Name != "libc6" {
			t.Errorf("%s: owner %v, want libc6", real, o)
		}
	}
	if ps := db.Named("libc6"); len(ps) == 0 || ps[0].ID() != "libc6:"+ps[0].Arch || ps[0].MultiArch != "same" {
		t.Errorf("libc6: %+v", ps)
	}
}

func BenchmarkReadHost(b *testing.B) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		b.Skip("not a dpkg system")
	}
	for b.Loop() {
		if _, err := Read(os.DirFS("/"), WithResolver(filepath.EvalSymlinks)); err != nil {
			b.Fatal(err)
		}
	}
}
