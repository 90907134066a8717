package collector

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Dest is a parsed output, named like skopeo's transports.
type Dest struct {
	Transport string // dir, tar, cpio, oci, docker-archive, docker
	Path      string // the file or directory (not for docker)
	Ref       string // oci: the tag; docker-archive: the image reference; docker: the registry reference
}

// Transports lists the output transports and what each writes.
var Transports = []struct{ Name, Form, What string }{
	{"dir", "dir:PATH", "the root filesystem as a directory"},
	{"tar", "tar:PATH", "the root filesystem as one tarball (docker import, ADD)"},
	{"oci", "oci:PATH[:TAG]", "an OCI image layout"},
	{"docker-archive", "docker-archive:PATH[:REF]", "a tarball for docker load"},
	{"docker", "docker://REF", "a push to a registry"},
	{"cpio", "cpio:PATH", "a newc initramfs archive"},
}

// ParseDest parses "TRANSPORT:..." as listed in Transports.
func ParseDest(s string) (Dest, error) {
	if ref, ok := strings.CutPrefix(s, "docker://"); ok {
		if ref == "" {
			return Dest{}, fmt.Errorf("output %q: no image reference after docker://", s)
		}
		if err := checkReference(ref); err != nil {
			return Dest{}, fmt.Errorf("output %q: %w", s, err)
		}
		return Dest{Transport: "docker", Ref: ref}, nil
	}
	transport, rest, ok := strings.Cut(s, ":")
	if !ok {
		return Dest{}, fmt.Errorf("output %q has no transport: want one of %s", s, transportForms())
	}
	d := Dest{Transport: transport, Path: rest}
	switch transport {
	case "dir", "tar", "cpio":
	case "oci", "docker-archive":
		// The path ends at the first ':' (as in skopeo); what follows is the tag or reference.
		d.Path, d.Ref, _ = strings.Cut(rest, ":")
	default:
		return Dest{}, fmt.Errorf("output %q: unknown transport %q: want one of %s", s, transport, transportForms())
	}
	if d.Path == "" {
		return Dest{}, fmt.Errorf("output %q: no path", s)
	}
	if d.Transport == "docker-archive" && d.Ref != "" {
		if _, err := name.NewTag(d.Ref); err != nil {
			return Dest{}, fmt.Errorf("output %q: image name %q: %w (docker load needs a name:tag)", s, d.Ref, err)
		}
	}
	return d, nil
}

// checkReference checks a registry reference before any work: its syntax, and a port that exists.
func checkReference(ref string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", ref, err)
	}
	if _, port, err := net.SplitHostPort(r.Context().RegistryStr()); err == nil {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("image reference %q: port %q is not 1 to 65535", ref, port)
		}
	}
	return nil
}

func transportForms() string {
	var forms []string
	for _, t := range Transports {
		forms = append(forms, t.Form)
	}
	return strings.Join(forms, ", ")
}

// IsImage reports whether the output is an image (so stdout carries its digest) rather than a file tree.
func (d Dest) IsImage() bool {
	return d.Transport == "oci" || d.Transport == "docker-archive" || d.Transport == "docker"
}

// String is the output as it is written on a command line.
func (d Dest) String() string {
	switch {
	case d.Transport == "docker":
		return "docker://" + d.Ref
	case d.Ref != "":
		return d.Transport + ":" + d.Path + ":" + d.Ref
	}
	return d.Transport + ":" + d.Path
}
