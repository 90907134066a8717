package collector

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// seedLines returns the lines of a committed seed file under testdata/fuzz-seeds.
func seedLines(f *testing.F, name string) []string {
	data, err := os.ReadFile("testdata/fuzz-seeds/" + name)
	if err != nil {
		f.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// FuzzNSSwitch: whatever nsswitch.conf says, the modules named are plain names (never a path: the module is
// dlopened as libnss_NAME.so.2).
func FuzzNSSwitch(f *testing.F) {
	data, err := os.ReadFile("testdata/fuzz-seeds/nsswitch.conf")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("passwd: ../../tmp/evil [x y] /abs\nhosts:files\x00dns\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range nssSources(data) {
			if !validModuleName(s.source) || strings.Contains(s.source, "/") {
				t.Errorf("module name %q from %q", s.source, data)
			}
		}
	})
}

// FuzzParseDest: a parsed output prints back as itself, and parses again to the same.
func FuzzParseDest(f *testing.F) {
	for _, l := range seedLines(f, "dests") {
		f.Add(l)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDest(s)
		if err != nil {
			return
		}
		again, err := ParseDest(d.String())
		if err != nil || again != d {
			t.Errorf("ParseDest(%q) = %+v, but its String %q parses to %+v, %v", s, d, d.String(), again, err)
		}
	})
}

// FuzzAccounts: for any valid user and any root passwd, the account files written have well-formed lines:
// seven fields in passwd, four in group, no newline inside a field, numeric ids.
func FuzzAccounts(f *testing.F) {
	passwd, err := os.ReadFile("testdata/fuzz-seeds/passwd")
	if err != nil {
		f.Fatal(err)
	}
	for _, u := range []string{"app", "daemon", "1234:1234", "app:staff", "root"} {
		f.Add(u, passwd)
	}
	f.Fuzz(func(t *testing.T, user string, rootPasswd []byte) {
		if CheckUser(user) != nil {
			return
		}
		v := &fakeView{files: map[string][]byte{"/etc/passwd": rootPasswd, "/etc/group": rootPasswd}}
		pw, gr := accounts(v, user)
		for _, c := range []struct {
			text   string
			fields int
		}{{pw, 7}, {gr, 4}} {
			for _, line := range strings.Split(strings.TrimSuffix(c.text, "\n"), "\n") {
				f := strings.Split(line, ":")
				if len(f) != c.fields || !isNumber(f[2]) || c.fields == 7 && !isNumber(f[3]) {
					t.Errorf("malformed line %q for user %q", line, user)
				}
			}
		}
	})
}

// FuzzTreeWriters adds fuzzed paths, links and files to a tree and writes it as tar and cpio: no panic, and
// every tar name stays inside the root.
func FuzzTreeWriters(f *testing.F) {
	f.Add("/etc/hosts\x00/bin\x00usr/bin\x00/usr/bin/x", []byte("content"))
	f.Add("/a/../../b\x00/../c\x00/d/e\x00..", []byte{})
	f.Fuzz(func(t *testing.T, spec string, data []byte) {
		tr := NewTree()
		parts := strings.Split(spec, "\x00")
		for i := 0; i+1 < len(parts); i += 2 {
			tr.Add(Entry{Path: parts[i], Kind: KindFile, Mode: 0o644, Data: data})
			tr.Add(Entry{Path: parts[i] + "/l", Kind: KindSymlink, Target: parts[i+1]})
		}
		var buf bytes.Buffer
		if err := WriteTar(context.Background(), tr, &buf, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
		r := tar.NewReader(&buf)
		for {
			h, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(h.Name, "/") || h.Name == ".." || strings.HasPrefix(h.Name, "../") || strings.Contains(h.Name, "/../") {
				t.Errorf("tar name %q leaves the root", h.Name)
			}
		}
		if err := WriteCPIO(context.Background(), tr, io.Discard, time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	})
}
