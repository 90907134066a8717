package sbom

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func testInput() Input {
	return Input{
		Name: "curl", Created: time.Unix(1700000000, 0), Tool: "scratchpack test",
		OS: OS{ID: "debian", VersionID: "12", Name: "Debian GNU/Linux 12 (bookworm)"},
		Packages: []Package{
			{ID: "libssl3:amd64", Name: "libssl3", Version: "3.0.19-1~deb12u2", Arch: "amd64", Source: "openssl"},
			{ID: "curl", Name: "curl", Version: "7.88.1-10+deb12u14", Arch: "amd64", Source: "curl"},
			{ID: "tzdata", Name: "tzdata", Version: "2025b-0+deb12u2", Arch: "all", License: "PD"},
		},
		Files: []File{
			{Path: "/usr/lib/x86_64-linux-gnu/libssl.so.3", SHA256: "aa", Package: "libssl3:amd64"},
			{Path: "/usr/bin/curl", SHA256: "bb", Package: "curl"},
			{Path: "/etc/passwd", SHA256: "cc"},
		},
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata/golden", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./collector/sbom -update to accept):\n%s", name, got)
	}
}

func TestSPDXGolden(t *testing.T) {
	got, err := SPDX(testInput())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "sbom.spdx.json", got)
	var doc struct {
		SPDXVersion string
		Packages    []struct {
			Name         string
			ExternalRefs []struct{ ReferenceLocator string } `json:"externalRefs"`
		}
		Files []struct{ FileName string }
	}
	if err := json.Unmarshal(got, &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" || len(doc.Packages) != 4 || len(doc.Files) != 3 {
		t.Errorf("SPDX document: %+v (%v)", doc, err)
	}
	// The order of the input does not matter.
	in := testInput()
	in.Packages[0], in.Packages[2] = in.Packages[2], in.Packages[0]
	again, _ := SPDX(in)
	if !bytes.Equal(got, again) {
		t.Error("the SPDX document depends on the input's order")
	}
}

func TestCycloneDXGolden(t *testing.T) {
	got, err := CycloneDX(testInput())
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "sbom.cdx.json", got)
	var bom struct {
		SpecVersion string
		Components  []struct {
			Type, Name, Purl string
		}
	}
	if err := json.Unmarshal(got, &bom); err != nil || bom.SpecVersion != "1.5" || bom.Components[0].Type != "operating-system" {
		t.Errorf("CycloneDX BOM: %+v (%v)", bom, err)
	}
}

func TestPurl(t *testing.T) {
	os := OS{ID: "debian", VersionID: "12"}
	for _, tc := range []struct {
		p    Package
		want string
	}{
		{Package{Name: "libssl3", Version: "3.0.19-1~deb12u2", Arch: "amd64", Source: "openssl"}, "pkg:deb/debian/libssl3@3.0.19-1~deb12u2?arch=amd64&distro=debian-12&upstream=openssl"},
		{Package{Name: "curl", Version: "7.88.1-10", Arch: "amd64", Source: "curl"}, "pkg:deb/debian/curl@7.88.1-10?arch=amd64&distro=debian-12"},
		{Package{Name: "libc6", Version: "1:2.36", Arch: "amd64"}, "pkg:deb/debian/libc6@1:2.36?arch=amd64&distro=debian-12"},
	} {
		if got := Purl(tc.p, os); got != tc.want {
			t.Errorf("Purl(%s) = %s, want %s", tc.p.Name, got, tc.want)
		}
	}
}
