package collector

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Artifact is what a sink writes: the tree, and the image made of it when the sink wants one.
type Artifact struct {
	Tree  *Tree
	Image v1.Image  // set when the sink's WantsImage is true
	MTime time.Time // every entry's time in a tree output
	// SBOM, when set, is attached to an OCI layout or a registry image as a referrer (subject = the image).
	SBOM       []byte
	SBOMFormat string
}

// A Sink writes a built root somewhere: a directory, a tarball, an initramfs, an OCI layout, a docker-load
// archive or a registry. Every output is one Sink (ko's publish.Interface is the model); a new output is a
// new file, not a new case in a switch.
type Sink interface {
	// Check fails, before any work is done, when the output cannot be written (its parent is missing, or it
	// exists and may not be replaced).
	Check() error
	// WantsImage reports whether Publish needs Artifact.Image.
	WantsImage() bool
	// Publish writes the artifact and returns what names the result: the path written, or the image's
	// digest (for a docker archive, the config digest: the image ID docker load prints).
	Publish(ctx context.Context, a Artifact) (string, error)
	// String names the output for messages.
	String() string
}

// SinkOptions are what outputs share.
type SinkOptions struct {
	Force    bool             // replace an existing output
	Insecure bool             // allow a plain-HTTP registry (loopback ones always are)
	Progress chan<- v1.Update // push progress, closed when the push ends; nil for none
	Timeout  time.Duration    // bound on each registry request (0: the default)
	// CredentialHelpers lets the Docker config's credential helpers run (see RegistrySink).
	CredentialHelpers bool
	// LayerCache, if set, is where a push records where its layers went (see RegistrySink.Cache).
	LayerCache *LayerCache
}

// NewSink returns the sink for a parsed output.
func NewSink(d Dest, o SinkOptions) (Sink, error) {
	switch d.Transport {
	case "dir":
		return &DirSink{Path: d.Path, Force: o.Force}, nil
	case "tar":
		return &TarSink{Path: d.Path, Force: o.Force}, nil
	case "cpio":
		return &CPIOSink{Path: d.Path, Force: o.Force}, nil
	case "oci":
		return &LayoutSink{Path: d.Path, Tag: d.Ref, Force: o.Force}, nil
	case "docker-archive":
		return &ArchiveSink{Path: d.Path, Ref: d.Ref, Force: o.Force}, nil
	case "docker":
		return &RegistrySink{Ref: d.Ref, Insecure: o.Insecure, Progress: o.Progress, Timeout: o.Timeout, CredentialHelpers: o.CredentialHelpers, Cache: o.LayerCache}, nil
	}
	return nil, fmt.Errorf("output %q: unknown transport %q: want one of %s", d.Path, d.Transport, transportForms())
}

// Multi is one sink that writes to each of sinks in turn (ko's MultiPublisher is the model): it checks
// them all before any work, builds the image once for those that want one, and returns their results one
// per line, in order.
func Multi(sinks ...Sink) Sink { return multiSink(sinks) }

type multiSink []Sink

func (m multiSink) Check() error {
	for _, s := range m {
		if err := s.Check(); err != nil {
			return err
		}
	}
	return nil
}

func (m multiSink) WantsImage() bool {
	return slices.ContainsFunc(m, func(s Sink) bool { return s.WantsImage() })
}

func (m multiSink) Publish(ctx context.Context, a Artifact) (string, error) {
	var out []string
	for _, s := range m {
		r, err := s.Publish(ctx, a)
		if err != nil {
			return "", fmt.Errorf("%s: %w", s, err)
		}
		out = append(out, r)
	}
	return strings.Join(out, "\n"), nil
}

func (m multiSink) String() string {
	var names []string
	for _, s := range m {
		names = append(names, s.String())
	}
	return strings.Join(names, ", ")
}
