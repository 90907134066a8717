package dpkg

import (
	"errors"
	"path"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const status = `Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Version: 2.36-9+deb12u14
Source: glibc

Package: dash
Status: install ok installed
Architecture: amd64
Version: 0.5.12-2
Depends: libc6 (>= 2.34)

Package: app
Status: install ok installed
Architecture: amd64
Version: 1.0
Depends: libc6, mail-transport-agent | exim4
Recommends: app-data
Suggests: not-installed

Package: postfix
Status: install ok installed
Architecture: amd64
Version: 3.7
Provides: mail-transport-agent

Package: app-data
Status: install ok installed
Architecture: all
Version: 1.0
Source: app (1.0-1)

Package: removed
Status: deinstall ok config-files
Architecture: amd64
Version: 0.1
`

func testRoot() fstest.MapFS {
	return fstest.MapFS{
		"var/lib/dpkg/status":                   {Data: []byte(status)},
		"var/lib/dpkg/info/libc6:amd64.list":    {Data: []byte("/.\n/lib\n/lib/x86_64-linux-gnu\n/lib/x86_64-linux-gnu/libc.so.6\n")},
		"var/lib/dpkg/info/libc6:amd64.md5sums": {Data: []byte("0123456789abcdef0123456789abcdef  lib/x86_64-linux-gnu/libc.so.6\n")},
		"var/lib/dpkg/info/dash.list":           {Data: []byte("/.\n/bin\n/bin/dash\n/bin/sh\n")},
		"var/lib/dpkg/info/app.list":            {Data: []byte("/usr/bin/app\n/usr/bin/sh\n")},
		"var/lib/dpkg/info/app-data.list":       {Data: []byte("/usr/share/app/data\n")},
		"var/lib/dpkg/info/removed.list":        {Data: []byte("/usr/bin/removed\n")},
		"var/lib/dpkg/diversions":               {Data: []byte("/usr/bin/sh\n/usr/bin/sh.app\ndash\n")},
	}
}

// mergedUsr resolves /bin and /lib as links to usr/bin and usr/lib.
func mergedUsr(dir string) (string, error) {
	for _, d := range []string{"/bin", "/lib"} {
		if dir == d || strings.HasPrefix(dir, d+"/") {
			return path.Join("/usr", dir), nil
		}
	}
	return dir, nil
}

func TestRead(t *testing.T) {
	db, err := Read(testRoot(), WithResolver(mergedUsr))
	if err != nil {
		t.Fatal(err)
	}
	owner := func(p string) string {
		if o := db.Owner(p); o != nil {
			return o.ID()
		}
		return ""
	}
	for p, want := range map[string]string{
		"/usr/lib/x86_64-linux-gnu/libc.so.6": "libc6:amd64", // registered through /lib, found through /usr/lib
		"/lib/x86_64-linux-gnu/libc.so.6":     "libc6:amd64",
		"/usr/bin/dash":                       "dash",
		"/usr/bin/sh.app":                     "app", // app's /usr/bin/sh is diverted there by dash
		"/usr/bin/removed":                    "",    // config-files only: not installed
		"/usr/share/app/data":                 "app-data",
		"/usr/bin/none":                       "",
	} {
		if got := owner(p); got != want {
			t.Errorf("Owner(%s) = %q, want %q", p, got, want)
		}
	}
	if got := len(db.Owners("/.")); got != 2 {
		t.Errorf("Owners(/.) = %d packages, want 2", got)
	}
	app := db.Named("app")[0]
	var rel []string
	for _, p := range db.Relations(app, "Depends", "Pre-Depends", "Recommends", "Suggests") {
		rel = append(rel, p.ID())
	}
	if diff := cmp.Diff([]string{"app", "libc6:amd64", "postfix", "app-data"}, rel); diff != "" {
		t.Errorf("Relations (-want +got):\n%s", diff)
	}
	if d := db.Named("app-data")[0]; d.Source != "app" {
		t.Errorf("app-data Source = %q, want app", d.Source)
	}
	sums, err := db.MD5Sums(db.Named("libc6")[0])
	if err != nil || sums["lib/x86_64-linux-gnu/libc.so.6"] != "0123456789abcdef0123456789abcdef" {
		t.Errorf("MD5Sums: %v, %v", sums, err)
	}
}

func TestReadStatusD(t *testing.T) {
	root := fstest.MapFS{
		"var/lib/dpkg/status.d/libc6":         {Data: []byte("Package: libc6\nArchitecture: amd64\nVersion: 2.36\n")},
		"var/lib/dpkg/status.d/libc6.md5sums": {Data: []byte("x  lib/libc.so.6\n")},
	}
	db, err := Read(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Packages) != 1 || db.Packages[0].Name != "libc6" {
		t.Errorf("packages from status.d: %+v", db.Packages)
	}
}

func TestReadErrors(t *testing.T) {
	if _, err := Read(fstest.MapFS{}); !errors.Is(err, ErrNoDatabase) {
		t.Errorf("empty root: %v, want ErrNoDatabase", err)
	}
	bad := fstest.MapFS{"var/lib/dpkg/status": {Data: []byte("Package: a\n continuation without a field\n:\n")}}
	if _, err := Read(bad); err != nil && !strings.Contains(err.Error(), "/var/lib/dpkg/status") {
		t.Errorf("a malformed status: error %v does not name the file", err)
	}
}

// FuzzRead: a hostile status file, list or diversions file never makes Read panic, and an error names the file.
func FuzzRead(f *testing.F) {
	f.Add([]byte(status), []byte("/usr/bin/app\n"), []byte("/usr/bin/sh\n/usr/bin/sh.app\ndash\n"))
	f.Add([]byte("Package: a\nStatus: install ok installed\n\n\n"), []byte{}, []byte("x\n"))
	f.Fuzz(func(t *testing.T, st, list, div []byte) {
		root := fstest.MapFS{
			"var/lib/dpkg/status":         {Data: st},
			"var/lib/dpkg/info/app.list":  {Data: list},
			"var/lib/dpkg/info/a.list":    {Data: list},
			"var/lib/dpkg/diversions":     {Data: div},
			"var/lib/dpkg/info/a.md5sums": {Data: list},
		}
		db, err := Read(root, WithResolver(mergedUsr))
		if err != nil {
			if !strings.Contains(err.Error(), "/var/lib/dpkg/") {
				t.Fatalf("error %v does not name a file", err)
			}
			return
		}
		for _, p := range db.Packages {
			db.Relations(p, "Depends", "Recommends")
			_, _ = db.MD5Sums(p)
		}
		db.Owners("/usr/bin/app")
	})
}
