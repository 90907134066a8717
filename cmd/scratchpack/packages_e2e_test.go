package main

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// dpkgOwners asks dpkg-query -S, the real tool, once, which packages own each of the paths (or their
// merged-/usr twins): the union.
func dpkgOwners(t *testing.T, paths []string) map[string]bool {
	t.Helper()
	var queries []string
	for _, p := range paths {
		queries = append(queries, p)
		switch {
		case strings.HasPrefix(p, "/usr/lib/") || strings.HasPrefix(p, "/usr/bin/") || strings.HasPrefix(p, "/usr/sbin/"):
			queries = append(queries, strings.TrimPrefix(p, "/usr"))
		case strings.HasPrefix(p, "/lib/") || strings.HasPrefix(p, "/bin/") || strings.HasPrefix(p, "/sbin/"):
			queries = append(queries, "/usr"+p)
		}
	}
	b, _ := exec.Command("dpkg-query", append([]string{"-S"}, queries...)...).Output() // exit 1: some path has no owner
	out := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		pkgs, path, ok := strings.Cut(line, ": ")
		if !ok || !slices.Contains(queries, path) || strings.HasPrefix(line, "diversion ") {
			continue
		}
		for _, pkg := range strings.Split(pkgs, ", ") {
			out[strings.Split(pkg, ":")[0]] = true
		}
	}
	return out
}

// TestPackageMetadata builds curl's image and checks its Debian package metadata against the root's dpkg
// database: one status.d stanza per package owning a file of the image (dpkg-query -S), md5sums listing
// exactly those files with dpkg's own sums, Source fields, os-release and debian_version.
func TestPackageMetadata(t *testing.T) {
	needTools(t, "dpkg-query", "curl")
	root := filepath.Join(t.TempDir(), "root")
	buildOK(t, "/usr/bin/curl", "-o", "dir:"+root)
	status := filepath.Join(root, "var/lib/dpkg/status.d")

	var files []string // image paths of regular files (and links to files) outside status.d
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ip := strings.TrimPrefix(p, root)
		if strings.HasPrefix(ip, "/var/lib/dpkg/status.d/") {
			return nil
		}
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return nil // a link to a directory or to nothing
		}
		files = append(files, ip)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := dpkgOwners(t, files)
	ents, err := os.ReadDir(status)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".md5sums") {
			got[e.Name()] = true
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status.d packages against dpkg-query -S of every file (-dpkg +image):\n%s", diff)
	}

	// md5sums: each line a file of the image, with dpkg's sum, and every dpkg-summed file of the image listed.
	for pkg := range got {
		data, err := os.ReadFile(filepath.Join(status, pkg+".md5sums"))
		if err != nil {
			t.Errorf("%s: %v", pkg, err)
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			sum, file, ok := strings.Cut(sc.Text(), "  ")
			if !ok {
				t.Errorf("%s.md5sums: bad line %q", pkg, sc.Text())
				continue
			}
			content, err := os.ReadFile(filepath.Join(root, file))
			if err != nil {
				t.Errorf("%s.md5sums lists %s, which is not in the image: %v", pkg, file, err)
				continue
			}
			h := md5.Sum(content)
			if hex.EncodeToString(h[:]) != sum {
				t.Errorf("%s.md5sums: %s has another sum in the image", pkg, file)
			}
		}
	}
	stanza, err := os.ReadFile(filepath.Join(status, "libssl3"))
	if err != nil || !strings.Contains(string(stanza), "\nSource: openssl\n") || strings.Contains(string(stanza), "Status:") {
		t.Errorf("libssl3's stanza (Source: openssl, no Status):\n%s (%v)", stanza, err)
	}
	for _, f := range []string{"etc/os-release", "etc/debian_version", "usr/share/doc/libssl3/copyright"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}

	t.Run("SBOMs", func(t *testing.T) {
		var first []byte
		for i := range 2 {
			dir := filepath.Join(t.TempDir(), "root")
			beside := filepath.Join(t.TempDir(), "curl.cdx.json")
			buildOK(t, "/usr/bin/curl", "--sbom", "cyclonedx", "--sbom-file", beside, "-o", "dir:"+dir)
			in, err := os.ReadFile(filepath.Join(dir, "var/lib/scratchpack/sbom.cdx.json"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := os.ReadFile(beside)
			if err != nil || !bytes.Equal(in, out) {
				t.Fatalf("the SBOM beside the image differs from the one in it (%v)", err)
			}
			if i == 0 {
				first = in
				var bom struct {
					Components []struct {
						Name, Purl string
						Type       string
					}
				}
				if err := json.Unmarshal(in, &bom); err != nil {
					t.Fatal(err)
				}
				names := map[string]bool{}
				for _, c := range bom.Components {
					if c.Purl != "" {
						names[c.Name] = true
						if !strings.Contains(c.Purl, "distro=debian-") {
							t.Errorf("purl %s has no distro", c.Purl)
						}
					}
				}
				if diff := cmp.Diff(got, names); diff != "" {
					t.Errorf("the SBOM's packages against status.d (-status.d +sbom):\n%s", diff)
				}
			} else if !bytes.Equal(first, in) {
				t.Error("two builds wrote different SBOMs")
			}
		}
	})

	t.Run("switched off", func(t *testing.T) {
		off := filepath.Join(t.TempDir(), "root")
		buildOK(t, "/usr/bin/curl", "--package-metadata=false", "-o", "dir:"+off)
		if _, err := os.Stat(filepath.Join(off, "var/lib/dpkg/status.d")); err == nil {
			t.Error("status.d written with --package-metadata=false")
		}
	})
}
