package collector

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// uploads follows how far each layer's upload got, so that a failed push can say which blob was being
// sent and how much of it.
type uploads struct {
	mu     sync.Mutex
	active map[string]*upload // digest -> its upload, while the layer's bytes are being read
}

type upload struct {
	size, sent int64
	done       bool
}

// trackedImage is img with layers that report their reads to u; a layer mountable from the base's
// repository stays mountable.
type trackedImage struct {
	v1.Image
	u *uploads
}

func (ti trackedImage) Layers() ([]v1.Layer, error) {
	ls, err := ti.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		if ml, ok := l.(*remote.MountableLayer); ok {
			out[i] = &remote.MountableLayer{Layer: trackedLayer{ml.Layer, ti.u}, Reference: ml.Reference}
			continue
		}
		out[i] = trackedLayer{l, ti.u}
	}
	return out, nil
}

type trackedLayer struct {
	v1.Layer
	u *uploads
}

func (tl trackedLayer) Compressed() (io.ReadCloser, error) {
	rc, err := tl.Layer.Compressed()
	if err != nil {
		return nil, err
	}
	d, err := tl.Layer.Digest()
	if err != nil {
		return rc, nil
	}
	size, _ := tl.Layer.Size()
	up := &upload{size: size}
	tl.u.mu.Lock()
	if tl.u.active == nil {
		tl.u.active = map[string]*upload{}
	}
	tl.u.active[d.String()] = up
	tl.u.mu.Unlock()
	return &trackedReader{ReadCloser: rc, u: tl.u, up: up}, nil
}

type trackedReader struct {
	io.ReadCloser
	u  *uploads
	up *upload
}

func (r *trackedReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	r.u.mu.Lock()
	r.up.sent += int64(n)
	if err == io.EOF {
		r.up.done = true
	}
	r.u.mu.Unlock()
	return n, err
}

// inFlight describes the uploads that had started and not finished: "layer sha256:... (12.0 MiB of 74.1
// MiB sent)".
func (u *uploads) inFlight() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for d, up := range u.active {
		if !up.done {
			out = append(out, fmt.Sprintf("layer %s (%s of %s sent)", d, HumanSize(up.sent), HumanSize(up.size)))
		}
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}
