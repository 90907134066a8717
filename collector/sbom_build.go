package collector

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/scratchpack/scratchpack/collector/dpkg"
	"github.com/scratchpack/scratchpack/collector/sbom"
)

// SBOMSpec says which software bill of materials a build writes.
type SBOMSpec struct {
	// Format is "spdx" (SPDX 2.3 JSON) or "cyclonedx" (CycloneDX 1.5 JSON); "" writes none.
	Format string
	// InImage puts it into the image at SBOMPath(Format).
	InImage bool
	// File, if set, is where it is written beside the image (replaced only with Force).
	File  string
	Force bool
	// Tool names the writer ("scratchpack VERSION").
	Tool string
}

// SBOMPath is where an image carries its SBOM of the given format.
func SBOMPath(format string) string {
	if format == "cyclonedx" {
		return "/var/lib/scratchpack/sbom.cdx.json"
	}
	return "/var/lib/scratchpack/sbom.spdx.json"
}

// CheckSBOMFormat validates a format name.
func CheckSBOMFormat(f string) error {
	switch f {
	case "", "spdx", "cyclonedx":
		return nil
	}
	return fmt.Errorf("SBOM format %q: want spdx or cyclonedx", f)
}

// writeSBOM makes the SBOM of the finished tree (the SBOM itself left out) and puts it where s says.
func (p *Planner) writeSBOM(s Spec, name string) (string, []byte, error) {
	if s.SBOM.Format == "" {
		return "", nil, nil
	}
	in, err := p.sbomInput(s, name)
	if err != nil {
		return "", nil, err
	}
	var data []byte
	if s.SBOM.Format == "cyclonedx" {
		data, err = sbom.CycloneDX(in)
	} else {
		data, err = sbom.SPDX(in)
	}
	if err != nil {
		return "", nil, err
	}
	if s.SBOM.File != "" {
		if err := writeFileAtomically(s.SBOM.File, s.SBOM.Force, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
			return "", nil, fmt.Errorf("writing the SBOM to %s: %w", s.SBOM.File, err)
		}
	}
	note := fmt.Sprintf("SBOM (%s): %d packages, %d files", s.SBOM.Format, len(in.Packages), len(in.Files))
	if s.SBOM.InImage {
		at := SBOMPath(s.SBOM.Format)
		if _, err := p.AddData(at, data, 0o644, Origin{Kind: OriginConfig, Reason: "the image's software bill of materials"}); err != nil {
			return "", nil, err
		}
		note += ", in the image at " + at
	}
	if s.SBOM.File != "" {
		note += ", written to " + s.SBOM.File
	}
	return note, data, nil
}

// sbomInput lists the tree's files with their digests and owning packages.
func (p *Planner) sbomInput(s Spec, name string) (sbom.Input, error) {
	in := sbom.Input{Name: name, Created: imageTime(s.Image.Created), Tool: s.SBOM.Tool}
	if in.Tool == "" {
		in.Tool = "scratchpack"
	}
	db, err := p.Packages()
	if err != nil && !errors.Is(err, dpkg.ErrNoDatabase) {
		return in, err
	}
	self := SBOMPath(s.SBOM.Format)
	pkgs := map[string]sbom.Package{}
	for _, e := range p.tree.Entries() {
		if e.Kind != KindFile || e.Path == self {
			continue
		}
		rc, err := e.Open()
		if err != nil {
			return in, err
		}
		h := sha256.New()
		_, err = io.Copy(h, rc)
		rc.Close()
		if err != nil {
			return in, fmt.Errorf("reading %s for the SBOM: %w", e.Path, err)
		}
		f := sbom.File{Path: e.Path, SHA256: hex.EncodeToString(h.Sum(nil))}
		if rp := e.RootPath(); rp != "" && db != nil {
			if owners := db.Owners(rp); len(owners) > 0 {
				o := owners[0]
				f.Package = o.ID()
				pkgs[o.ID()] = sbom.Package{ID: o.ID(), Name: o.Name, Version: o.Version, Arch: o.Arch, Source: o.Source}
			}
		}
		in.Files = append(in.Files, f)
	}
	for _, pk := range pkgs {
		in.Packages = append(in.Packages, pk)
	}
	if data, err := p.ReadEntry("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			v = strings.Trim(v, `"`)
			switch k {
			case "ID":
				in.OS.ID = v
			case "VERSION_ID":
				in.OS.VersionID = v
			case "PRETTY_NAME":
				in.OS.Name = v
			}
		}
	}
	if in.Name == "" {
		in.Name = "image"
	}
	return in, nil
}
