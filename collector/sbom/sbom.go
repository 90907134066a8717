// Package sbom writes software bills of materials of an image: SPDX 2.3 JSON (github.com/spdx/tools-golang)
// and CycloneDX 1.5 JSON (github.com/CycloneDX/cyclonedx-go), one package per Debian package owning files of
// the image, with a purl, every file with its SHA-256 and its package, files no package owns as their own
// entries, and the operating system. The output is deterministic: the same input gives the same bytes
// (the creation time is given, the document namespace and serial number derive from the content).
package sbom

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

// Package is a Debian package owning files of the image.
type Package struct {
	ID      string // dpkg's name for it: "libc6:amd64" or "curl"
	Name    string
	Version string
	Arch    string
	Source  string // the source package, "" or Name when the same
	License string // an SPDX expression when known, else ""
}

// File is a regular file of the image.
type File struct {
	Path    string // absolute in the image
	SHA256  string // hex
	Package string // the owning Package's ID, "" when no package owns it
}

// OS is the image's operating system, from its os-release.
type OS struct {
	ID, VersionID, Name string // "debian", "12", "Debian GNU/Linux 12 (bookworm)"
}

// Input is what an SBOM describes.
type Input struct {
	Name     string    // the image's name, for the document
	Created  time.Time // the creation time written (SOURCE_DATE_EPOCH or the epoch for reproducible builds)
	Tool     string    // "scratchpack VERSION"
	OS       OS
	Packages []Package
	Files    []File
}

// Purl is the package URL of p: pkg:deb/ID/NAME@VERSION?arch=ARCH&distro=ID-VERSION_ID[&upstream=SOURCE].
func Purl(p Package, os OS) string {
	ns := os.ID
	if ns == "" {
		ns = "debian"
	}
	q := packageurl.Qualifiers{{Key: "arch", Value: p.Arch}}
	if os.VersionID != "" {
		q = append(q, packageurl.Qualifier{Key: "distro", Value: ns + "-" + os.VersionID})
	}
	if p.Source != "" && p.Source != p.Name {
		q = append(q, packageurl.Qualifier{Key: "upstream", Value: p.Source})
	}
	return packageurl.NewPackageURL("deb", ns, p.Name, p.Version, q, "").ToString()
}

// digest is a stable identity of the input, for the namespace and the serial number.
func (in Input) digest() string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s %s\n", in.Name, in.Created.UTC().Format(time.RFC3339), in.OS.ID, in.OS.VersionID)
	for _, p := range in.Packages {
		fmt.Fprintf(h, "p %s %s %s %s\n", p.ID, p.Version, p.Arch, p.Source)
	}
	for _, f := range in.Files {
		fmt.Fprintf(h, "f %s %s %s\n", f.Path, f.SHA256, f.Package)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (in Input) sorted() Input {
	in.Packages = slices.Clone(in.Packages)
	in.Files = slices.Clone(in.Files)
	slices.SortFunc(in.Packages, func(a, b Package) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(in.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return in
}

// spdxID makes an SPDX identifier (letters, digits, '.', '-') of s.
func spdxID(prefix, s string) common.ElementID {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	return common.ElementID(prefix + "-" + b.String())
}

// SPDX writes the input as an SPDX 2.3 JSON document.
func SPDX(in Input) ([]byte, error) {
	in = in.sorted()
	d := in.digest()
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      in.Name,
		DocumentNamespace: "https://scratchpack.invalid/spdx/" + d,
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: in.Tool}},
			Created:  in.Created.UTC().Format(time.RFC3339),
		},
	}
	osPkg := &spdx.Package{PackageName: in.OS.ID, PackageSPDXIdentifier: "OperatingSystem", PackageVersion: in.OS.VersionID,
		PackageDownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "OPERATING-SYSTEM", PackageComment: in.OS.Name}
	if in.OS.ID != "" {
		doc.Packages = append(doc.Packages, osPkg)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", "OperatingSystem"), Relationship: "DESCRIBES"})
	}
	ids := map[string]common.ElementID{}
	for _, p := range in.Packages {
		id := spdxID("Package", p.ID)
		ids[p.ID] = id
		lic := p.License
		if lic == "" {
			lic = "NOASSERTION"
		}
		sp := &spdx.Package{PackageName: p.Name, PackageSPDXIdentifier: id, PackageVersion: p.Version,
			PackageDownloadLocation: "NOASSERTION", PackageLicenseConcluded: "NOASSERTION", PackageLicenseDeclared: lic,
			PackageCopyrightText: "NOASSERTION", PrimaryPackagePurpose: "LIBRARY",
			PackageExternalReferences: []*spdx.PackageExternalReference{{Category: "PACKAGE-MANAGER", RefType: "purl", Locator: Purl(p, in.OS)}}}
		if p.Source != "" && p.Source != p.Name {
			sp.PackageSourceInfo = "built from the Debian source package " + p.Source
		}
		doc.Packages = append(doc.Packages, sp)
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(id)), Relationship: "DESCRIBES"})
	}
	for _, f := range in.Files {
		id := spdxID("File", f.Path)
		doc.Files = append(doc.Files, &spdx.File{FileName: f.Path, FileSPDXIdentifier: id, FileCopyrightText: "NOASSERTION",
			LicenseConcluded: "NOASSERTION", Checksums: []common.Checksum{{Algorithm: common.SHA256, Value: f.SHA256}}})
		if pid, ok := ids[f.Package]; ok {
			doc.Relationships = append(doc.Relationships, &spdx.Relationship{
				RefA: common.MakeDocElementID("", string(pid)), RefB: common.MakeDocElementID("", string(id)), Relationship: "CONTAINS"})
		} else {
			doc.Relationships = append(doc.Relationships, &spdx.Relationship{
				RefA: common.MakeDocElementID("", "DOCUMENT"), RefB: common.MakeDocElementID("", string(id)), Relationship: "DESCRIBES"})
		}
	}
	var b bytes.Buffer
	if err := spdxjson.Write(doc, &b, spdxjson.Indent("  ")); err != nil {
		return nil, fmt.Errorf("writing the SPDX document: %w", err)
	}
	return b.Bytes(), nil
}

// CycloneDX writes the input as a CycloneDX 1.5 JSON BOM.
func CycloneDX(in Input) ([]byte, error) {
	in = in.sorted()
	d := in.digest()
	serial := fmt.Sprintf("urn:uuid:%s-%s-5%s-a%s-%s", d[0:8], d[8:12], d[13:16], d[17:20], d[20:32])
	bom := cdx.NewBOM()
	bom.SerialNumber = serial
	bom.Metadata = &cdx.Metadata{
		Timestamp: in.Created.UTC().Format(time.RFC3339),
		Tools:     &cdx.ToolsChoice{Components: &[]cdx.Component{{Type: cdx.ComponentTypeApplication, Name: in.Tool}}},
		Component: &cdx.Component{BOMRef: "image", Type: cdx.ComponentTypeContainer, Name: in.Name},
	}
	var comps []cdx.Component
	if in.OS.ID != "" {
		comps = append(comps, cdx.Component{BOMRef: "os", Type: cdx.ComponentTypeOS, Name: in.OS.ID, Version: in.OS.VersionID,
			Description: in.OS.Name})
	}
	byPkg := map[string][]File{}
	var loose []File
	for _, f := range in.Files {
		if f.Package == "" {
			loose = append(loose, f)
		} else {
			byPkg[f.Package] = append(byPkg[f.Package], f)
		}
	}
	fileComp := func(f File) cdx.Component {
		return cdx.Component{BOMRef: "file:" + f.Path, Type: cdx.ComponentTypeFile, Name: f.Path,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.SHA256}}}
	}
	for _, p := range in.Packages {
		purl := Purl(p, in.OS)
		c := cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: purl}
		if p.License != "" {
			c.Licenses = &cdx.Licenses{{Expression: p.License}}
		}
		if files := byPkg[p.ID]; len(files) > 0 {
			var sub []cdx.Component
			for _, f := range files {
				sub = append(sub, fileComp(f))
			}
			c.Components = &sub
		}
		comps = append(comps, c)
	}
	for _, f := range loose {
		comps = append(comps, fileComp(f))
	}
	bom.Components = &comps
	var b bytes.Buffer
	enc := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.EncodeVersion(bom, cdx.SpecVersion1_5); err != nil {
		return nil, fmt.Errorf("writing the CycloneDX BOM: %w", err)
	}
	return b.Bytes(), nil
}
